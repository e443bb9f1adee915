package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
	"github.com/mqttkeep/mqttkeep/internal/faultproxy"
)

// Demo settings that are not flags.
const (
	demoTopic = "demo/counter"
	// detectSlack is what timers and goroutine scheduling may add to the
	// detection bound before the demo calls a detection late.
	detectSlack = 100 * time.Millisecond
	// stepTimeout bounds each wait of the timeline (a reconnect, the first
	// message after one) so that a misbehaving run still ends.
	stepTimeout = 15 * time.Second
)

// errGateClosed ends a publish attempt while the publisher is held back
// around the broker restart.
var errGateClosed = errors.New("held back until the subscription is restored")

// runDemo is "mqttkeep demo": a scripted tour of the library's keepalive
// and reconnect behaviour on an embedded broker and fault proxy.
func runDemo(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("demo")
	duration := durationFlag{d: 20 * time.Second, min: time.Second, max: 10 * time.Minute}
	keepAlive := durationFlag{d: 2 * time.Second, wholeSecs: true, min: time.Second, max: time.Minute}
	interval := durationFlag{d: 100 * time.Millisecond, min: time.Millisecond, max: 10 * time.Second}
	var jsonOut bool
	var svgPath string
	fs.Var(&duration, "duration", "planned length of the run")
	both(fs, &keepAlive, "keep alive of both clients", "k", "keepalive")
	fs.Var(&interval, "interval", "publish interval")
	fs.BoolVar(&jsonOut, "json", false, "JSON lines on stdout")
	fs.StringVar(&svgPath, "svg", "", "draw the run into this SVG file")
	if code, done := parseArgs(fs, "demo", args, s, nil); done {
		return code
	}
	if flagsSet(fs)["svg"] && svgPath == "" {
		return usageFail(s, "demo", "--svg: empty file name", nil)
	}
	start := time.Now()
	d := &demo{
		duration:    duration.d,
		keepAlive:   keepAlive.d,
		interval:    interval.d,
		pingTimeout: keepAlive.d / 2, // the library's default: K/2
		out:         &emitter{w: s.out, json: jsonOut, start: start},
		errw:        s.err,
		changed:     make(chan struct{}),
		clients:     map[string]*clientCounts{"sub": {}, "pub": {}},
		received:    make(map[uint64]int),
		acked:       make(map[uint64]bool),
		gateOpen:    true,
		trace:       newTrace(start),
	}
	d.bound = d.keepAlive/2 + d.pingTimeout
	d.connectTimeout = max(time.Second, d.keepAlive/2)
	d.publishTimeout = 2 * d.keepAlive
	code := d.run(ctx)
	if svgPath != "" {
		if err := os.WriteFile(svgPath, d.svg(), 0o644); err != nil {
			fmt.Fprintf(s.err, "mqttkeep demo: --svg: %v\n", err)
			return exitFail
		}
	}
	return code
}

// demo is one run of "mqttkeep demo". The timeline runs on run's
// goroutine; client hooks, the sub's message handler and the publisher
// report through the emitter and update the fields under mu.
type demo struct {
	duration, keepAlive, interval  time.Duration
	pingTimeout, bound             time.Duration
	connectTimeout, publishTimeout time.Duration
	out                            *emitter
	errw                           io.Writer
	broker                         *embedbroker.Broker
	proxy                          *faultproxy.Proxy
	sub, pub                       *mqttkeep.Client
	pubStop, pubDone               chan struct{}
	pubCancel                      context.CancelFunc
	trace                          *trace // what the SVG draws

	// pubMu is held around each Publish call together with the recording
	// of its acknowledgement, so that the timeline can pick a moment when
	// no publish is in flight (see restartBroker).
	pubMu sync.Mutex

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every update
	clients    map[string]*clientCounts
	received   map[uint64]int // sequence number -> deliveries to sub
	deliveries int
	// resent counts deliveries with the DUP flag: re-sends by the broker.
	// A re-send whose payload had not arrived before is a first delivery,
	// not a duplicate; duplicates are payloads seen more than once.
	resent      int
	resentFirst int             // of those, first deliveries
	acked       map[uint64]bool // sequence numbers the broker acknowledged to pub
	gotFirst    bool
	lastRecvAt  time.Time // when sub last received a message or PINGRESP (as seen by the demo)
	gateOpen    bool      // pub may publish
	gateReason  string    // why it was closed: what reopens it once sub reconnects
	heldBack    []string  // the conditions the publisher was held back for
	recoveries  []*recovery
}

type clientCounts struct {
	connects int // successful CONNACKs
	losses   int // connections lost (not counting Close)
}

// recovery measures one client's way through one fault. Durations are
// from the fault; -1 until seen.
type recovery struct {
	fault, client string
	at            time.Time
	bound         time.Duration // 0: no bound applies
	cause         error
	detected      time.Duration
	reconnected   time.Duration
	flowing       time.Duration // sub: first message received; pub: first publish acknowledged
	// silent is how long the link had been silent when the loss was
	// reported: from the later of the fault and the last message or
	// PINGRESP sub received (bytes already on their way still arrive after
	// the proxy starts dropping). The bound applies to it.
	silent              time.Duration
	detectedByPingTimer bool
}

// run runs the whole demo and returns the exit status.
func (d *demo) run(ctx context.Context) int {
	if err := d.setup(ctx); err != nil {
		fmt.Fprintf(d.errw, "mqttkeep demo: %s\n", errText(err))
		d.teardown(true)
		return exitFail
	}
	completed := d.timeline(ctx)
	if !completed && ctx.Err() != nil {
		d.out.event("interrupted", "interrupted: shutting down early")
	}
	d.teardown(!completed)
	return d.summary(completed)
}

// setup starts the broker, the proxy and both clients.
func (d *demo) setup(ctx context.Context) error {
	var err error
	if d.broker, err = embedbroker.New(); err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	if err := d.broker.ListenTCP(); err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	if d.proxy, err = faultproxy.New(d.broker.Addr()); err != nil {
		return fmt.Errorf("start proxy: %w", err)
	}
	d.out.event("setup", fmt.Sprintf("embedded broker on %s, fault proxy on %s in front of it", d.broker.Addr(), d.proxy.Addr()),
		"broker", d.broker.Addr(), "proxy", d.proxy.Addr())
	d.out.event("config", fmt.Sprintf("keep alive K = %v: sub pings after K/2 = %v without traffic and declares the link dead if nothing answers within the ping timeout (%v); bound K/2 + ping timeout = %v",
		d.keepAlive, d.keepAlive/2, d.pingTimeout, d.bound),
		"keepalive_s", secs(d.keepAlive), "ping_timeout_s", secs(d.pingTimeout), "bound_s", secs(d.bound),
		"duration_s", secs(d.duration), "interval_s", secs(d.interval))

	backoff := mqttkeep.Backoff{Initial: 250 * time.Millisecond, Max: time.Second, Multiplier: 2}
	common := func(name, server string) []mqttkeep.Option {
		return []mqttkeep.Option{
			mqttkeep.WithServer(server),
			mqttkeep.WithClientID(name),
			mqttkeep.WithKeepAlive(d.keepAlive),
			// Short enough that an attempt whose CONNECT vanished into the
			// blackhole does not hold up the recovery for long.
			mqttkeep.WithConnectTimeout(d.connectTimeout),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: backoff}),
		}
	}
	hooks := func(c *mqttkeep.Client, name string) *mqttkeep.Client {
		c.OnConnect(d.onConnect(name))
		c.OnDisconnect(d.onDisconnect(name))
		c.OnReconnecting(d.onReconnecting(name))
		c.OnPing(d.onPing(name))
		return c
	}
	if d.sub, err = mqttkeep.New(common("sub", d.proxy.URL())...); err != nil {
		return err
	}
	hooks(d.sub, "sub")
	if d.pub, err = mqttkeep.New(common("pub", d.broker.URL())...); err != nil {
		return err
	}
	hooks(d.pub, "pub")
	d.out.event("clients", fmt.Sprintf("clients sub (through the proxy) and pub (direct): connect timeout %v, reconnect backoff %v doubling up to %v, publish timeout %v",
		d.connectTimeout, backoff.Initial, backoff.Max, d.publishTimeout),
		"connect_timeout_s", secs(d.connectTimeout), "backoff_initial_s", secs(backoff.Initial), "backoff_max_s", secs(backoff.Max),
		"publish_timeout_s", secs(d.publishTimeout))

	cctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	d.trace.state("sub", stateReconnecting)
	if err := d.sub.Connect(cctx); err != nil {
		return fmt.Errorf("sub: connect: %w", err)
	}
	// Let the connect hook report first, so that events come in order.
	d.waitFor(cctx, stepTimeout, func() bool { return d.clients["sub"].connects > 0 })
	if err := d.sub.Subscribe(cctx, demoTopic, 1, d.onMessage); err != nil {
		return fmt.Errorf("sub: subscribe: %w", err)
	}
	d.out.event("subscribed", fmt.Sprintf("sub subscribed to %s (QoS 1)", demoTopic), "client", "sub", "filter", demoTopic, "qos", 1)
	d.trace.state("pub", stateReconnecting)
	if err := d.pub.Connect(cctx); err != nil {
		return fmt.Errorf("pub: connect: %w", err)
	}
	d.waitFor(cctx, stepTimeout, func() bool { return d.clients["pub"].connects > 0 })
	return nil
}

// teardown ends the publisher, lets sub receive what is still on its way,
// and closes everything. hurry skips the waits (interrupted or failed run).
func (d *demo) teardown(hurry bool) {
	if d.pubStop != nil {
		d.phase("shutdown", "phase e: clean shutdown: pub stops, sub receives what is still on its way, both close")
		close(d.pubStop)
		grace := d.publishTimeout
		if hurry {
			grace = 0
		}
		t := time.NewTimer(grace)
		select {
		case <-d.pubDone:
		case <-t.C:
			d.pubCancel()
			<-d.pubDone
		}
		t.Stop()
		d.pubCancel()
		if !hurry {
			d.waitFor(context.Background(), 2*d.keepAlive, func() bool { return len(d.missingLocked()) == 0 })
		}
	}
	if d.proxy != nil {
		d.proxy.Pass() // so that an interrupted run still sends its DISCONNECT
	}
	for _, c := range []*mqttkeep.Client{d.sub, d.pub} {
		if c == nil {
			continue
		}
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		if err := c.Close(cctx); err != nil {
			fmt.Fprintf(d.errw, "mqttkeep demo: close %s: %s\n", c.ClientID(), errText(err))
		}
		cancel()
	}
	if d.proxy != nil {
		d.proxy.Close()
	}
	if d.broker != nil {
		d.broker.Close()
	}
	d.trace.finish()
}
