package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// unit tells how a metric is printed.
type unit int

const (
	unitSeconds  unit = iota
	unitSecondsK      // seconds, also shown as a multiple of the keep alive
	unitRate          // messages per second
	unitBytes
	unitCount
	unitMicros // microseconds
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
	// broker is where the throughput and idle scenarios connect:
	// "embedded" or one of brokerKinds (see target).
	broker string
	// idleK is the keep alive of idle-10k, which holds its clients 2 × idleK.
	idleK time.Duration
	seq   atomic.Int64 // client ID sequence
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
			metrics: []metric{{row: "7. qos1-64-inflight: 50k from 64 goroutines, each Publish waits for its PUBACK", unit: unitRate, higherBetter: true}},
			applies: func(c Caps) bool { return c.QoS1 },
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return qos1(ctx, e, c, e.n(50_000), concurrency)
			},
		},
		{
			name:    "qos1-pipelined",
			metrics: []metric{{row: "7b. qos1-pipelined: 50k from ONE goroutine, 64 in flight (mqttkeep PublishAsync + PublishResult.Wait; paho.mqtt.golang Publish token + Wait)", unit: unitRate, higherBetter: true}},
			applies: func(c Caps) bool { return c.QoS1 && c.Async },
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return qos1Pipelined(ctx, e, c, e.n(50_000), concurrency)
			},
		},
		{
			name:    "inbound",
			metrics: []metric{{row: "8. inbound: broker → handler, 100k QoS 0", unit: unitRate, higherBetter: true}},
			applies: always,
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return inbound(ctx, e, c, 0)
			},
		},
		{
			name:    "inbound-qos1",
			metrics: []metric{{row: "8b. inbound-qos1: broker → handler, 100k QoS 1 (acknowledged by the library after the handler)", unit: unitRate, higherBetter: true}},
			applies: func(c Caps) bool { return c.Acks },
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return inbound(ctx, e, c, 1)
			},
		},
		{
			name:    "routing-mochi",
			metrics: routingMetrics("mochi (sends Subscription Identifiers to clients that set them)"),
			applies: func(c Caps) bool { return c.Routing },
			timeout: func(*env) time.Duration { return 3 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return routing(ctx, e, c, "mochi")
			},
		},
		{
			name:    "routing-feeder",
			metrics: routingMetrics("feeder without Subscription Identifiers (routed by topic)"),
			applies: func(c Caps) bool { return c.Routing },
			timeout: func(*env) time.Duration { return 3 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return routing(ctx, e, c, "feeder")
			},
		},
		{
			name:    "routing-feeder-ids",
			metrics: routingMetrics("feeder echoing Subscription Identifiers"),
			applies: func(c Caps) bool { return c.Routing && c.SubIDs },
			timeout: func(*env) time.Duration { return 3 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return routing(ctx, e, c, "feeder-ids")
			},
		},
		{
			name:    "durable",
			metrics: durableMetrics("mqttkeep PublishAsync → stored; autopaho PublishViaQueue → file written; paho.mqtt.golang Publish → FileStore written + queued"),
			applies: func(c Caps) bool { return c.Durable },
			timeout: func(*env) time.Duration { return 4 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return durable(ctx, e, c, false)
			},
		},
		{
			name:    "durable-publish",
			metrics: durableMetrics("mqttkeep Publish → stored + PUBACK"),
			applies: func(c Caps) bool { return c.StorePublish },
			timeout: func(*env) time.Duration { return 4 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return durable(ctx, e, c, true)
			},
		},
		{
			name:    "storm-mosquitto",
			metrics: stormMetrics("Mosquitto"),
			applies: func(c Caps) bool { return c.Reconnect },
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return storm(ctx, e, c, "mosquitto")
			},
		},
		{
			name:    "storm-mqttkeep-broker",
			metrics: stormMetrics("mqttkeep broker (mochi)"),
			applies: func(c Caps) bool { return c.Reconnect },
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run: func(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
				return storm(ctx, e, c, "mqttkeep-broker")
			},
		},
		{
			name: "idle-footprint",
			metrics: []metric{
				{row: "9a. idle-footprint (500 clients in a child process): HeapInuse per client", unit: unitBytes},
				{row: "9a'. idle-footprint: HeapAlloc (live objects) per client", unit: unitBytes},
				{row: "9c. idle-footprint: StackInuse per client", unit: unitBytes},
				{row: "9b. idle-footprint: goroutines per client", unit: unitCount},
			},
			applies: func(c Caps) bool { return c.Footprint },
			timeout: func(*env) time.Duration { return 2 * time.Minute },
			run:     idleFootprint,
		},
		{
			name: "idle-10k",
			metrics: []metric{
				{row: "10a. idle-10k: 10,000 clients (child process), K = -idle-k (30 s), held 2 K: connection losses", unit: unitCount},
				{row: "10b. idle-10k: HeapInuse per client", unit: unitBytes},
				{row: "10c. idle-10k: StackInuse per client", unit: unitBytes},
				{row: "10d. idle-10k: goroutines per client", unit: unitCount},
				{row: "10e. idle-10k: CPU of the client process while idle, % of one core", unit: unitCount},
				{row: "10f. idle-10k: time to connect all (32 at a time)", unit: unitSeconds},
			},
			applies: func(c Caps) bool { return c.Footprint },
			timeout: func(e *env) time.Duration { return 2*e.idleK + 4*time.Minute },
			run:     idleMany,
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

func gc() {
	runtime.GC()
	runtime.GC()
}
