package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// idleChildEnv holds the JSON of an idleSpec: this program (or its test
// binary) then connects the idle clients itself and prints an idleReport.
const idleChildEnv = "MQTTKEEP_BENCH_IDLE_CHILD"

// idleSpec is what the parent asks an idle child to do.
type idleSpec struct {
	Contestant  string
	Addr        string
	Clients     int
	KeepAlive   time.Duration
	Hold        time.Duration // idle time after the last client connected
	HeapProfile string        // if set, a heap profile is written here
}

// idleReport is what the child measured: the deltas from before the first
// client to the end of the hold, after two GCs.
type idleReport struct {
	HeapInuse, HeapAlloc, StackInuse float64 // bytes per client
	Goroutines                       float64 // per client
	Disconnects                      int64   // connection losses the library reported during the hold
	CPU                              float64 // user + system seconds of the child during the hold
	Hold                             float64 // seconds actually held
	ConnectTime                      float64 // seconds to connect every client
	NoFile                           uint64  // RLIMIT_NOFILE of the child
}

func idleChildMain(spec string) {
	var s idleSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "idle child:", err)
		os.Exit(2)
	}
	if s.HeapProfile != "" {
		runtime.MemProfileRate = 1
	}
	r, err := runIdleChild(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idle child:", err)
		os.Exit(1)
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	os.Exit(0) // the clients end with the process
}

func runIdleChild(s idleSpec) (*idleReport, error) {
	i := slices.IndexFunc(contestants(), func(c Contestant) bool { return c.Name() == s.Contestant })
	if i < 0 {
		return nil, fmt.Errorf("unknown contestant %q", s.Contestant)
	}
	c := contestants()[i]
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if lim.Cur < lim.Max { // raise the soft limit as far as allowed
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+s.Hold)
	defer cancel()
	var m0, m1 runtime.MemStats
	gc()
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	var holding atomic.Bool
	var lost atomic.Int64
	clients := make([]Client, s.Clients)
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < s.Clients && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				cl, err := c.Connect(ctx, ClientConfig{
					Addr: s.Addr, ClientID: fmt.Sprintf("idle-%d-%d", os.Getpid(), i), KeepAlive: s.KeepAlive,
					OnLost: func(error) {
						if holding.Load() {
							lost.Add(1)
						}
					},
				})
				if err != nil {
					select {
					case errc <- fmt.Errorf("connect %d: %w", i, err):
					default:
					}
					cancel()
					return
				}
				clients[i] = cl
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	connectTime := time.Since(t0)
	holding.Store(true)
	cpu0 := cpuTime()
	h0 := time.Now()
	if err := sleepCtx(ctx, s.Hold); err != nil {
		return nil, err
	}
	held := time.Since(h0)
	cpu := cpuTime() - cpu0
	gc()
	runtime.ReadMemStats(&m1)
	g1 := runtime.NumGoroutine()
	if s.HeapProfile != "" {
		if err := writeHeapProfile(s.HeapProfile); err != nil {
			return nil, err
		}
	}
	n := float64(s.Clients)
	return &idleReport{
		HeapInuse:   (float64(m1.HeapInuse) - float64(m0.HeapInuse)) / n,
		HeapAlloc:   (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / n,
		StackInuse:  (float64(m1.StackInuse) - float64(m0.StackInuse)) / n,
		Goroutines:  float64(g1-g0) / n,
		Disconnects: lost.Load(),
		CPU:         cpu.Seconds(),
		Hold:        held.Seconds(),
		ConnectTime: connectTime.Seconds(),
		NoFile:      lim.Cur,
	}, nil
}

// cpuTime returns this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runIdle starts an idle child for spec and returns its report.
func runIdle(ctx context.Context, exe string, spec idleSpec) (*idleReport, error) {
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), idleChildEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var r idleReport
	var perr error
	sc := bufio.NewScanner(out)
	found := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "{") {
			perr = json.Unmarshal([]byte(line), &r)
			found = true
		}
	}
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("idle child: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("idle child printed no report")
	}
	return &r, perr
}

// idleBroker starts the broker the idle clients connect to, in a process
// of its own: the embedded broker in a child of this program, or the
// external broker of -broker.
func idleBroker(ctx context.Context, e *env) (string, func(), error) {
	if e.broker == "embedded" {
		return startChildBroker(ctx, e.exe)
	}
	b, err := startBrokerProc(ctx, e.broker, false)
	if err != nil {
		return "", nil, err
	}
	return b.Addr(), b.Close, nil
}

// idleFootprint connects 500 clients, in a child process of their own, to
// a broker in another process, lets them idle for K (every client pings at
// least once), and reports the child's heap in use, stack in use and
// goroutines per client after GC.
func idleFootprint(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
	addr, stop, err := idleBroker(ctx, e)
	if err != nil {
		return nil, err
	}
	defer stop()
	spec := idleSpec{Contestant: c.Name(), Addr: addr, Clients: e.n(idleClients), KeepAlive: e.keepAlive, Hold: e.keepAlive}
	if e.heapProfile != "" {
		spec.HeapProfile = e.heapProfile + "-" + strings.ReplaceAll(c.Name(), " ", "_")
	}
	r, err := runIdle(ctx, e.exe, spec)
	if err != nil {
		return nil, err
	}
	return []float64{r.HeapInuse, r.HeapAlloc, r.StackInuse, r.Goroutines}, nil
}

// idleMany is the 10,000-client soak: the clients, in a child process, idle
// for 2 × K (-idle-k, 30 s) against a broker in another process. It reports the
// connection losses during the hold (target 0), memory and goroutines per
// client, and the child's CPU for keeping them alive.
func idleMany(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
	addr, stop, err := idleBroker(ctx, e)
	if err != nil {
		return nil, err
	}
	defer stop()
	r, err := runIdle(ctx, e.exe, idleSpec{Contestant: c.Name(), Addr: addr, Clients: e.n(idleManyClients), KeepAlive: e.idleK, Hold: 2 * e.idleK})
	if err != nil {
		return nil, err
	}
	return []float64{float64(r.Disconnects), r.HeapInuse, r.StackInuse, r.Goroutines, 100 * r.CPU / r.Hold, r.ConnectTime}, nil
}

// idleManyClients is how many clients idle-10k connects (scaled).
const idleManyClients = 10_000

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}
