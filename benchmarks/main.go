// Command benchmarks compares mqttkeep with other Go MQTT clients on an
// embedded mochi-mqtt broker on 127.0.0.1.
//
//	go run . -scenario all            # every scenario, 5 interleaved runs
//	go run . -scenario inbound -runs 3
//
// Progress goes to stderr; stdout gets a header with the settings and one
// markdown table (median [min–max] per scenario and contestant).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

func main() {
	var (
		scenarioFlag = flag.String("scenario", "all", "scenario to run: all, or a comma-separated list of names (see -list)")
		runs         = flag.Int("runs", 5, "runs per scenario and contestant (interleaved)")
		keepAlive    = flag.Duration("keepalive", 2*time.Second, "keep alive K for every client (whole seconds)")
		only         = flag.String("only", "", "comma-separated contestant names to run (default: all)")
		scale        = flag.Float64("scale", 1, "multiply message and client counts (for quick checks)")
		seed         = flag.Uint64("seed", 0, "seed for the dead-link phases (0: from the clock)")
		list         = flag.Bool("list", false, "list scenarios and contestants, then exit")
		cpuProfile   = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		memProfile   = flag.String("memprofile", "", "write an allocation profile (allocs) at the end to this file")
		heapProfile  = flag.String("heapprofile", "", "idle-footprint: write a heap profile (in use, 500 idle clients) to FILE-CONTESTANT")
		broker       = flag.String("broker", "embedded", "broker of the throughput and idle scenarios: embedded (in this process; idle: in a child), mosquitto or mqttkeep-broker (in a process of their own)")
		idleK        = flag.Duration("idle-k", 30*time.Second, "keep alive of idle-10k (whole seconds), which holds its clients 2 × this")
		repo         = flag.String("repo", "..", "the repository root, where cmd/mqttkeep is built for -broker mqttkeep-broker and the storm scenarios")
	)
	if os.Getenv(childBrokerEnv) == "1" {
		childBrokerMain()
	}
	if spec := os.Getenv(durableChildEnv); spec != "" {
		durableChildMain(spec)
	}
	if spec := os.Getenv(idleChildEnv); spec != "" {
		idleChildMain(spec)
	}
	flag.Parse()
	repoRoot = *repo
	if *broker != "embedded" && !slices.Contains(brokerKinds, *broker) {
		fmt.Fprintf(os.Stderr, "benchmarks: -broker %q: want embedded, %s\n", *broker, strings.Join(brokerKinds, " or "))
		os.Exit(2)
	}
	if *heapProfile != "" {
		runtime.MemProfileRate = 1 // every allocation, for an exact attribution
	}
	if *list {
		for _, s := range scenarios() {
			fmt.Println(s.name)
		}
		fmt.Println()
		for _, c := range contestants() {
			fmt.Println(c.Name())
		}
		return
	}
	if err := run(*scenarioFlag, *only, *runs, *keepAlive, *scale, *seed, *cpuProfile, *memProfile, *heapProfile, *broker, *idleK); err != nil {
		fmt.Fprintln(os.Stderr, "benchmarks:", err)
		os.Exit(1)
	}
}

func run(scenarioFlag, only string, runs int, keepAlive time.Duration, scale float64, seed uint64, cpuProfile, memProfile, heapProfile, broker string, idleK time.Duration) error {
	switch {
	case runs < 1 || runs > 100:
		return fmt.Errorf("-runs %d: want 1 to 100", runs)
	case keepAlive < 2*time.Second || keepAlive%time.Second != 0 || keepAlive > time.Hour:
		// mochi drops a client after 1.5 × K rounded down to whole
		// seconds: with K = 1 s that is 1 s, which races a ping every K.
		return fmt.Errorf("-keepalive %v: want whole seconds, 2s to 1h", keepAlive)
	case idleK < 2*time.Second || idleK%time.Second != 0 || idleK > time.Hour:
		return fmt.Errorf("-idle-k %v: want whole seconds, 2s to 1h", idleK)
	case !(scale > 0 && scale <= 10):
		return fmt.Errorf("-scale %v: want (0, 10]", scale)
	}
	all := scenarios()
	var sel []scenario
	if scenarioFlag == "all" {
		sel = all
	} else {
		for name := range strings.SplitSeq(scenarioFlag, ",") {
			i := slices.IndexFunc(all, func(s scenario) bool { return s.name == strings.TrimSpace(name) })
			if i < 0 {
				return fmt.Errorf("unknown scenario %q (see -list)", name)
			}
			sel = append(sel, all[i])
		}
	}
	cs := contestants()
	if only != "" {
		var keep []Contestant
		for name := range strings.SplitSeq(only, ",") {
			i := slices.IndexFunc(cs, func(c Contestant) bool { return strings.EqualFold(c.Name(), strings.TrimSpace(name)) })
			if i < 0 {
				return fmt.Errorf("unknown contestant %q (see -list)", name)
			}
			keep = append(keep, cs[i])
		}
		cs = keep
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 0x6d71747400))
	e := &env{keepAlive: keepAlive, runs: runs, scale: scale, exe: exe, heapProfile: heapProfile, broker: broker, idleK: idleK}
	// Dead-link phases: one per run, uniform in [K, 2K), stratified so
	// that N runs cover the interval evenly (run i draws from one of N
	// equal slices, the slices in shuffled order). Every contestant gets
	// the same phase in the same run.
	slice := keepAlive / time.Duration(runs)
	for _, i := range rng.Perm(runs) {
		e.phases = append(e.phases, keepAlive+time.Duration(i)*slice+time.Duration(rng.Int64N(int64(slice))))
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	start := time.Now()
	res := newResults(sel, cs)
	for si, s := range sel {
		for i := range runs {
			for ci, c := range cs {
				if !s.applies(c.Caps()) {
					continue
				}
				gc()
				ctx, cancel := context.WithTimeout(context.Background(), s.timeout(e))
				t0 := time.Now()
				vals, err := s.run(ctx, e, c, i)
				cancel()
				res.add(si, ci, vals, err)
				fmt.Fprintf(os.Stderr, "[%s] run %d/%d %-16s %s (%.1fs)\n", s.name, i+1, runs, c.Name(), progress(s, vals, err, e), time.Since(t0).Seconds())
			}
		}
	}
	fmt.Fprintf(os.Stderr, "total %.0fs\n", time.Since(start).Seconds())
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	printHeader(os.Stdout, e, seed, cs)
	res.print(os.Stdout, e)
	return nil
}

func progress(s scenario, vals []float64, err error, e *env) string {
	var parts []string
	for i, v := range vals {
		parts = append(parts, formatValue(s.metrics[i].unit, v, e))
	}
	out := strings.Join(parts, ", ")
	if err != nil {
		if out != "" {
			out += " "
		}
		out += "ERROR: " + err.Error()
	}
	return out
}

func printHeader(w io.Writer, e *env, seed uint64, cs []Contestant) {
	deps := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			deps[d.Path] = d.Version
		}
	}
	fmt.Fprintf(w, "## mqttkeep comparison benchmarks\n\n")
	fmt.Fprintf(w, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "- GOMAXPROCS %d, NumCPU %d, %s %s/%s\n", runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if e.broker == "embedded" {
		fmt.Fprintf(w, "- broker (-broker embedded): mochi-mqtt v2.7.9 with the four patches of internal/mochi (two deadlocks, messages lost on a failed acknowledgement write, the send-quota leak) (mqttkeeptest, recording off), in-process on 127.0.0.1, sharing the cores with the client (a fresh broker per run; idle scenarios: in a child process, the clients in another child)\n")
	} else {
		fmt.Fprintf(w, "- broker (-broker %s): in its own process on 127.0.0.1, a fresh one per run; broker-side subscriber and publisher are raw TCP clients in this process\n", e.broker)
	}
	fmt.Fprintf(w, "- routing: mochi in-process and internal/feeder; durable: mochi in-process, stores under %s; storm: Mosquitto and `mqttkeep broker` in their own processes\n", os.TempDir())
	fmt.Fprintf(w, "- keep alive K = %v for every client; %d interleaved runs (run i of every contestant, then run i+1)\n", e.keepAlive, e.runs)
	fmt.Fprintf(w, "- dead-link phases (idle time before the blackhole, the same for every contestant in a run, stratified over [K, 2K); -seed %d):", seed)
	for _, p := range e.phases {
		fmt.Fprintf(w, " %.2fs", p.Seconds())
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- contestants: mqttkeep (this working tree, via replace ../); paho.golang %s (raw paho.Client, one connection); autopaho %s; paho.mqtt.golang %s (MQTT 3.1.1); raw TCP (pre-encoded MQTT v5 packets, the limit)\n",
		deps["github.com/eclipse/paho.golang"], deps["github.com/eclipse/paho.golang"], deps["github.com/eclipse/paho.mqtt.golang"])
	fmt.Fprintf(w, "- settings: library defaults except K (and CleanStart on the first connection for autopaho); 3b: mqttkeep WithReconnect{DialRetry: 100ms, Backoff: {100ms, 100ms, ×1}}, autopaho ReconnectBackoff constant 100 ms, paho.mqtt.golang MaxReconnectInterval 100 ms; peers re-subscribe in their on-connect callback, mqttkeep restores subscriptions itself\n")
	fmt.Fprintf(w, "- cells: median [min–max]; – = does not apply; ratio column = mqttkeep median / peer median (times: below 1 is better for mqttkeep; rates: above 1)\n")
	if e.scale != 1 {
		fmt.Fprintf(w, "- message and client counts scaled by %v\n", e.scale)
	}
	fmt.Fprintln(w)
}

// --- the broker ---

// startBroker starts the test kit's embedded broker on 127.0.0.1 with a
// free port. It records nothing: the kit would otherwise keep a copy of
// every payload, which would weigh on the figures.
func startBroker(opts ...mqttkeeptest.BrokerOption) (*mqttkeeptest.Broker, error) {
	return mqttkeeptest.StartBroker(append(opts, mqttkeeptest.WithoutRecording())...)
}

// --- child broker for idle-footprint ---

// childBrokerEnv set to 1 makes this program (or its test binary) serve a
// broker instead: see startChildBroker.
const childBrokerEnv = "MQTTKEEP_BENCH_CHILD_BROKER"

// childBrokerMain serves a broker on 127.0.0.1, prints its address and
// exits when stdin closes.
func childBrokerMain() {
	b, err := startBroker()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child broker:", err)
		os.Exit(1)
	}
	fmt.Println(b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	b.Close()
	os.Exit(0)
}

// startChildBroker runs this program again as a broker and returns the
// broker's address and a function that stops it.
func startChildBroker(ctx context.Context, exe string) (string, func(), error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childBrokerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill() // our own child, by its PID
			<-done
		}
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case addr, ok := <-line:
		if !ok || !strings.HasPrefix(addr, "127.0.0.1:") {
			stop()
			return "", nil, errors.New("child broker did not start")
		}
		return addr, stop, nil
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	}
}
