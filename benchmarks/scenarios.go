package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// unit tells how a metric is printed.
type unit int

const (
	unitSeconds  unit = iota
	unitSecondsK      // seconds, also shown as a multiple of the keep alive
	unitRate          // messages per second
	unitBytes
	unitCount
)

// metric is one row of the table.
type metric struct {
	row          string
	unit         unit
	higherBetter bool
}

// scenario is one benchmark. run returns one value per metric.
type scenario struct {
	name    string
	metrics []metric
	applies func(Caps) bool
	timeout func(env *env) time.Duration
	run     func(ctx context.Context, env *env, c Contestant, run int) ([]float64, error)
}

// env holds the settings shared by every run.
type env struct {
	keepAlive time.Duration
	runs      int
	scale     float64
	phases    []time.Duration // dead-link idle phase of each run, the same for every contestant
	exe       string          // this program, for the child broker
	// heapProfile, if set, is where idle-footprint writes a heap profile
	// of the idle clients (suffixed with the contestant's name).
	heapProfile string
	seq         atomic.Int64 // client ID sequence
}

// clientID returns a client ID unique in this process.
func (e *env) clientID(c Contestant) string {
	return fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(c.Name(), " ", ""), e.seq.Add(1))
}

// n scales a message or client count (at least 1).
func (e *env) n(base int) int { return max(1, int(float64(base)*e.scale)) }

const (
	outage       = 2 * time.Second       // broker down time in restart scenarios
	injectEvery  = 10 * time.Millisecond // broker-side message injection after a restart
	publishEvery = 100 * time.Millisecond
	payloadSize  = 64
	idleClients  = 500
	concurrency  = 64
)

var payload64 = func() []byte {
	b := make([]byte, payloadSize)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

func scenarios() []scenario {
	always := func(Caps) bool { return true }
	return []scenario{
		{
			name:    "dead-link-idle",
			metrics: []metric{{row: "1. dead-link-idle: blackhole → loss reported", unit: unitSecondsK}},
			applies: func(c Caps) bool { return c.DeadLink },
			timeout: deadLinkTimeout,
			run: func(ctx context.Context, e *env, c Contestant, i int) ([]float64, error) {
				return deadLink(ctx, e, c, i, false)
			},
		},
		{
			name:    "dead-link-publishing",
			metrics: []metric{{row: "2. dead-link-publishing (QoS 0 every 100 ms)", unit: unitSecondsK}},
			applies: func(c Caps) bool { return c.DeadLink },
			timeout: deadLinkTimeout,
			run: func(ctx context.Context, e *env, c Contestant, i int) ([]float64, error) {
				return deadLink(ctx, e, c, i, true)
			},
		},
		{
			name:    "restart-connected",
			metrics: []metric{{row: "3. restart-connected, defaults: restart → connected", unit: unitSeconds}},
			applies: func(c Caps) bool { return c.Reconnect },
			timeout: restartTimeout,
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return restart(ctx, e, c, false, false)
			},
		},
		{
			name:    "restart-connected-100ms",
			metrics: []metric{{row: "3b. restart-connected, 100 ms retry setting", unit: unitSeconds}},
			applies: func(c Caps) bool { return c.Reconnect && c.FastRetry },
			timeout: restartTimeout,
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return restart(ctx, e, c, true, false)
			},
		},
		{
			name:    "restart-first-message",
			metrics: []metric{{row: "4. restart-first-message, defaults: restart → first message", unit: unitSeconds}},
			applies: func(c Caps) bool { return c.Reconnect },
			timeout: restartTimeout,
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return restart(ctx, e, c, false, true)
			},
		},
		{
			name: "qos0-throughput",
			metrics: []metric{
				{row: "5a. qos0-throughput: 200k × 64 B, to last publish returned", unit: unitRate, higherBetter: true},
				{row: "5b. qos0-throughput: to all delivered (broker-side subscriber)", unit: unitRate, higherBetter: true},
			},
			applies: always,
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run:     qos0Throughput,
		},
		{
			name:    "qos1-sequential",
			metrics: []metric{{row: "6. qos1-sequential: 20k", unit: unitRate, higherBetter: true}},
			applies: func(c Caps) bool { return c.QoS1 },
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return qos1(ctx, e, c, e.n(20_000), 1)
			},
		},
		{
			name:    "qos1-64-inflight",
			metrics: []metric{{row: "7. qos1-64-inflight: 50k from 64 goroutines", unit: unitRate, higherBetter: true}},
			applies: func(c Caps) bool { return c.QoS1 },
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return qos1(ctx, e, c, e.n(50_000), concurrency)
			},
		},
		{
			name:    "inbound",
			metrics: []metric{{row: "8. inbound: broker → handler, 100k QoS 0", unit: unitRate, higherBetter: true}},
			applies: always,
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run:     inbound,
		},
		{
			name: "idle-footprint",
			metrics: []metric{
				{row: "9a. idle-footprint: heap per client (500 clients)", unit: unitBytes},
				{row: "9b. idle-footprint: goroutines per client", unit: unitCount},
			},
			applies: func(c Caps) bool { return c.Footprint },
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run:     idleFootprint,
		},
	}
}

// deadLinkTimeout covers the longest phase (2K), paho.mqtt.golang's
// keep alive plus its 10 s ping timeout, and a margin.
func deadLinkTimeout(e *env) time.Duration { return 4*e.keepAlive + 25*time.Second }

func restartTimeout(*env) time.Duration { return outage + 40*time.Second }

// firstSignal keeps the time of the first call.
type firstSignal struct {
	once sync.Once
	ch   chan struct{}
	at   time.Time
	err  error
}

func newFirstSignal() *firstSignal { return &firstSignal{ch: make(chan struct{})} }

func (f *firstSignal) fire(err error) {
	f.once.Do(func() {
		f.at, f.err = time.Now(), err
		close(f.ch)
	})
}

func (f *firstSignal) fired() bool {
	select {
	case <-f.ch:
		return true
	default:
		return false
	}
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deadLink: a client connected through the proxy idles (or publishes QoS 0
// every 100 ms) for the run's phase in [K, 2K), then the proxy blackholes
// the link; the result is the time from Blackhole to the library
// reporting the loss.
func deadLink(ctx context.Context, e *env, c Contestant, run int, publishing bool) ([]float64, error) {
	b, err := startBroker()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	p, err := mqttkeeptest.StartProxy(b.Addr())
	if err != nil {
		return nil, err
	}
	defer p.Close() // on early returns; idempotent

	lost := newFirstSignal()
	cl, err := c.Connect(ctx, ClientConfig{
		Addr: p.Addr(), ClientID: e.clientID(c), KeepAlive: e.keepAlive,
		OnLost: lost.fire,
	})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	stopPub := make(chan struct{})
	var pubWG sync.WaitGroup
	defer func() {
		close(stopPub)
		pubWG.Wait()
		p.Close() // the link ends first, so no Close waits on a blackholed socket
		closeBounded(cl)
	}()
	if publishing {
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			t := time.NewTicker(publishEvery)
			defer t.Stop()
			for {
				select {
				case <-stopPub:
					return
				case <-ctx.Done():
					return
				case <-t.C:
				}
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				_ = cl.Publish(pctx, "bench/deadlink", payload64, 0) // errors after the loss are expected
				cancel()
			}
		}()
	}
	if err := sleepCtx(ctx, e.phases[run]); err != nil {
		return nil, err
	}
	if lost.fired() {
		return nil, fmt.Errorf("connection lost before the blackhole: %v", lost.err)
	}
	t0 := time.Now()
	p.Blackhole()
	select {
	case <-lost.ch:
		return []float64{lost.at.Sub(t0).Seconds()}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("loss not reported after %v: %w", time.Since(t0).Round(time.Millisecond), ctx.Err())
	}
}

// restart: the broker is stopped, stays down for 2 s and restarts on the
// same port with no session. The result is the time from the Restart call
// to the client's on-connect callback, or (firstMessage) to the first
// message received on the subscription made before the outage while the
// broker publishes one every 10 ms.
func restart(ctx context.Context, e *env, c Contestant, fast, firstMessage bool) ([]float64, error) {
	b, err := startBroker()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	const topic = "bench/restart"
	var restarted atomic.Bool
	up, msg := newFirstSignal(), newFirstSignal()
	cfg := ClientConfig{
		Addr: b.Addr(), ClientID: e.clientID(c), KeepAlive: e.keepAlive, FastRetry: fast,
		OnUp: func() {
			if restarted.Load() {
				up.fire(nil)
			}
		},
	}
	if firstMessage {
		cfg.Sub = &Subscription{Topic: topic, QoS: 1, Handler: func([]byte) {
			if restarted.Load() {
				msg.fire(nil)
			}
		}}
	}
	cl, err := c.Connect(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer closeBounded(cl)

	b.Stop()
	if err := sleepCtx(ctx, outage); err != nil {
		return nil, err
	}
	t0 := time.Now()
	restarted.Store(true)
	if err := b.Restart(); err != nil {
		return nil, err
	}
	want := up
	if firstMessage {
		want = msg
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // bounded by ctx and by stop
			defer wg.Done()
			t := time.NewTicker(injectEvery)
			defer t.Stop()
			for {
				_ = b.Publish(topic, payload64, 0)
				select {
				case <-t.C:
				case <-stop:
					return
				case <-ctx.Done():
					return
				}
			}
		}()
		defer func() { close(stop); wg.Wait() }()
	}
	select {
	case <-want.ch:
		return []float64{want.at.Sub(t0).Seconds()}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("not recovered %v after the restart: %w", time.Since(t0).Round(time.Millisecond), ctx.Err())
	}
}

// qos0Throughput publishes 200k × 64 B QoS 0 from one goroutine to a topic
// with one inline (broker-side) subscriber that counts them.
func qos0Throughput(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
	n := e.n(200_000)
	b, err := startBroker()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	const topic = "bench/qos0"
	var got atomic.Int64
	all := make(chan struct{})
	if err := b.Subscribe(topic, func(string, []byte) {
		if got.Add(1) == int64(n) {
			close(all)
		}
	}); err != nil {
		return nil, err
	}
	cl, err := c.Connect(ctx, ClientConfig{Addr: b.Addr(), ClientID: e.clientID(c), KeepAlive: e.keepAlive})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer closeBounded(cl)
	t0 := time.Now()
	for i := range n {
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("published %d of %d: %w", i, n, ctx.Err())
		}
		if err := cl.Publish(ctx, topic, payload64, 0); err != nil {
			return nil, fmt.Errorf("publish %d: %w", i, err)
		}
	}
	pub := time.Since(t0)
	select {
	case <-all:
	case <-ctx.Done():
		return nil, fmt.Errorf("delivered %d of %d: %w", got.Load(), n, ctx.Err())
	}
	return []float64{float64(n) / pub.Seconds(), float64(n) / time.Since(t0).Seconds()}, nil
}

// qos1 publishes n QoS 1 messages from workers goroutines, each waiting
// for its acknowledgement before the next.
func qos1(ctx context.Context, e *env, c Contestant, n, workers int) ([]float64, error) {
	b, err := startBroker()
	if err != nil {
		return nil, err
	}
	defer b.Close()
	cl, err := c.Connect(ctx, ClientConfig{Addr: b.Addr(), ClientID: e.clientID(c), KeepAlive: e.keepAlive})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer closeBounded(cl)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				if err := cl.Publish(ctx, "bench/qos1", payload64, 1); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return []float64{float64(n) / d.Seconds()}, nil
}

// inbound: the broker publishes 100k × 64 B QoS 0 to one subscriber as fast
// as it can (mochi may queue all of them: it never drops); the result is
// the rate at which they reach the handler. Messages the client drops are
// not counted, and the run is reported as incomplete.
func inbound(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
	n := e.n(100_000)
	b, err := startBroker(mqttkeeptest.WithOutboundQueue(n + 1024))
	if err != nil {
		return nil, err
	}
	defer b.Close()
	const topic = "bench/inbound"
	var got atomic.Int64
	var lastAt atomic.Int64 // UnixNano of the latest message, sampled every 256
	all := make(chan struct{})
	cl, err := c.Connect(ctx, ClientConfig{
		Addr: b.Addr(), ClientID: e.clientID(c), KeepAlive: e.keepAlive,
		Sub: &Subscription{Topic: topic, QoS: 0, Handler: func([]byte) {
			k := got.Add(1)
			if k%256 == 0 {
				lastAt.Store(time.Now().UnixNano())
			}
			if k == int64(n) {
				close(all)
			}
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer closeBounded(cl)
	t0 := time.Now()
	pubDone := make(chan error, 1)
	go func() {
		for i := range n {
			if err := b.Publish(topic, payload64, 0); err != nil {
				pubDone <- fmt.Errorf("broker publish %d: %w", i, err)
				return
			}
			if i%1024 == 0 && ctx.Err() != nil {
				pubDone <- ctx.Err()
				return
			}
		}
		pubDone <- nil
	}()
	if err := <-pubDone; err != nil {
		return nil, err
	}
	// Wait for all, or until nothing arrived for a second (some dropped).
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	prev, still := got.Load(), 0
	for {
		select {
		case <-all:
			return []float64{float64(n) / time.Since(t0).Seconds()}, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("delivered %d of %d: %w", got.Load(), n, ctx.Err())
		case <-tick.C:
		}
		cur := got.Load()
		if cur != prev {
			prev, still = cur, 0
			continue
		}
		if still++; still >= 10 {
			end := time.Unix(0, lastAt.Load())
			if cur == 0 || !end.After(t0) {
				return nil, fmt.Errorf("delivered %d of %d", cur, n)
			}
			return []float64{float64(cur) / end.Sub(t0).Seconds()}, &incomplete{got: cur, want: int64(n), brokerDropped: b.Dropped()}
		}
	}
}

// incomplete marks a result that is kept but did not deliver everything.
type incomplete struct{ got, want, brokerDropped int64 }

func (i *incomplete) Error() string {
	return fmt.Sprintf("delivered %d of %d (%d lost, %d of them dropped by the broker)", i.got, i.want, i.want-i.got, i.brokerDropped)
}

// idleFootprint connects 500 clients to a broker in a child process (so
// that only client memory and goroutines are in this process) and
// measures live heap after GC and goroutines, per client.
func idleFootprint(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
	n := e.n(idleClients)
	addr, stop, err := startChildBroker(ctx, e.exe)
	if err != nil {
		return nil, err
	}
	defer stop()
	var m0, m1 runtime.MemStats
	gc()
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	clients := make([]Client, 0, n)
	defer func() {
		var wg sync.WaitGroup
		for _, cl := range clients {
			wg.Add(1)
			go func() { defer wg.Done(); closeBounded(cl) }()
		}
		wg.Wait()
	}()
	for i := range n {
		cl, err := c.Connect(ctx, ClientConfig{Addr: addr, ClientID: e.clientID(c), KeepAlive: e.keepAlive})
		if err != nil {
			return nil, fmt.Errorf("connect %d: %w", i, err)
		}
		clients = append(clients, cl)
	}
	// Idle long enough for every client to have pinged at least once.
	if err := sleepCtx(ctx, e.keepAlive); err != nil {
		return nil, err
	}
	gc()
	runtime.ReadMemStats(&m1)
	g1 := runtime.NumGoroutine()
	if e.heapProfile != "" {
		if err := writeHeapProfile(e.heapProfile + "-" + strings.ReplaceAll(c.Name(), " ", "_")); err != nil {
			return nil, err
		}
	}
	heap := (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / float64(n)
	gor := float64(g1-g0) / float64(n)
	return []float64{heap, gor}, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

func gc() {
	runtime.GC()
	runtime.GC()
}
