package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
	"github.com/mqttkeep/mqttkeep/internal/faultproxy"
)

// Demo settings that are not flags.
const (
	demoTopic = "demo/counter"
	// demoPollInterval is how often the sub's Stats are read to show pings.
	demoPollInterval = 50 * time.Millisecond
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
	fs.Var(&duration, "duration", "planned length of the run")
	for _, n := range []string{"k", "keepalive"} {
		fs.Var(&keepAlive, n, "keep alive of both clients")
	}
	fs.Var(&interval, "interval", "publish interval")
	fs.BoolVar(&jsonOut, "json", false, "JSON lines on stdout")
	if code, done := parseArgs(fs, "demo", args, s, nil); done {
		return code
	}
	d := &demo{
		duration:    duration.d,
		keepAlive:   keepAlive.d,
		interval:    interval.d,
		pingTimeout: keepAlive.d / 2, // the library's default: K/2
		out:         &emitter{w: s.out, json: jsonOut, start: time.Now()},
		errw:        s.err,
		changed:     make(chan struct{}),
		clients:     map[string]*clientCounts{"sub": {}, "pub": {}},
		received:    make(map[uint64]int),
		acked:       make(map[uint64]bool),
		gateOpen:    true,
	}
	d.bound = d.keepAlive/2 + d.pingTimeout
	d.connectTimeout = max(time.Second, d.keepAlive/2)
	d.publishTimeout = 2 * d.keepAlive
	return d.run(ctx)
}

// demo is one run of "mqttkeep demo". The timeline runs on run's
// goroutine; client hooks, the sub's message handler, the publisher and
// the ping poller report through the emitter and update the fields under
// mu.
type demo struct {
	duration, keepAlive, interval        time.Duration
	pingTimeout, bound                   time.Duration
	connectTimeout, publishTimeout       time.Duration
	out                                  *emitter
	errw                                 io.Writer
	broker                               *embedbroker.Broker
	proxy                                *faultproxy.Proxy
	sub, pub                             *mqttkeep.Client
	pubStop, pubDone, pollStop, pollDone chan struct{}
	pubCancel                            context.CancelFunc

	// pubMu is held around each Publish call together with the recording
	// of its acknowledgement, so that the timeline can pick a moment when
	// no publish is in flight (see restartBroker).
	pubMu sync.Mutex

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every update
	clients    map[string]*clientCounts
	received   map[uint64]int // sequence number -> deliveries to sub
	deliveries int
	acked      map[uint64]bool // sequence numbers the broker acknowledged to pub
	gotFirst   bool
	lastRecvAt time.Time // when sub last received a message or PINGRESP (as seen by the demo)
	gateOpen   bool      // pub may publish
	gateReason string    // why it was closed: what reopens it once sub reconnects
	recoveries []*recovery
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
			mqttkeep.WithBackoff(backoff),
			mqttkeep.WithOnConnect(d.onConnect(name)),
			mqttkeep.WithOnDisconnect(d.onDisconnect(name)),
			mqttkeep.WithOnReconnecting(d.onReconnecting(name)),
		}
	}
	if d.sub, err = mqttkeep.New(common("sub", d.proxy.URL())...); err != nil {
		return err
	}
	if d.pub, err = mqttkeep.New(common("pub", d.broker.URL())...); err != nil {
		return err
	}
	d.out.event("clients", fmt.Sprintf("clients sub (through the proxy) and pub (direct): connect timeout %v, reconnect backoff %v doubling up to %v, publish timeout %v",
		d.connectTimeout, backoff.Initial, backoff.Max, d.publishTimeout),
		"connect_timeout_s", secs(d.connectTimeout), "backoff_initial_s", secs(backoff.Initial), "backoff_max_s", secs(backoff.Max),
		"publish_timeout_s", secs(d.publishTimeout))

	cctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := d.sub.Connect(cctx); err != nil {
		return fmt.Errorf("sub: connect: %w", err)
	}
	// Let the connect hook report first, so that events come in order.
	d.waitFor(cctx, stepTimeout, func() bool { return d.clients["sub"].connects > 0 })
	if err := d.sub.Subscribe(cctx, demoTopic, 1, d.onMessage); err != nil {
		return fmt.Errorf("sub: subscribe: %w", err)
	}
	d.out.event("subscribed", fmt.Sprintf("sub subscribed to %s (QoS 1)", demoTopic), "client", "sub", "filter", demoTopic, "qos", 1)
	if err := d.pub.Connect(cctx); err != nil {
		return fmt.Errorf("pub: connect: %w", err)
	}
	d.waitFor(cctx, stepTimeout, func() bool { return d.clients["pub"].connects > 0 })
	d.pollStop, d.pollDone = make(chan struct{}), make(chan struct{})
	go d.pollPings()
	return nil
}

// timeline runs phases a to d; it reports false if it was cut short.
func (d *demo) timeline(ctx context.Context) bool {
	D, K := d.duration, d.keepAlive

	// (a) Idle: only keepalive traffic.
	start := time.Now()
	d.phase("idle", fmt.Sprintf("phase a: idle link: no messages, so sub sends PINGREQ every K/2 = %v", K/2))
	if !d.pauseUntil(ctx, start.Add(max(pct(D, 15), K/2+300*time.Millisecond))) {
		return false
	}

	// Messages flowing.
	start = time.Now()
	d.phase("publishing", fmt.Sprintf("messages: pub publishes a sequence number to %s every %v (QoS 1); traffic replaces the pings", demoTopic, d.interval))
	d.startPublisher()
	if !d.waitFor(ctx, stepTimeout, func() bool { return d.gotFirst }) {
		return d.stepFailed(ctx, "no message arrived")
	}
	if !d.pauseUntil(ctx, start.Add(max(pct(D, 15), 500*time.Millisecond))) {
		return false
	}

	// (b) Silent link death.
	d.phase("blackhole", "phase b: silent link death: the proxy now drops every byte between sub and the broker (no FIN, no RST)")
	d.startFault("link blackholed", d.bound, "sub")
	d.proxy.Blackhole()
	if !d.waitFor(ctx, 3*K+stepTimeout, func() bool { return d.recoveryFor("sub").detected >= 0 }) {
		return d.stepFailed(ctx, "sub did not notice the dead link")
	}
	if !d.pause(ctx, max(pct(D, 10), 500*time.Millisecond)) {
		return false
	}

	// (c) Link restored.
	start = time.Now()
	d.phase("restored", "phase c: link restored: the proxy forwards again")
	// Held back while sub resumes its session, because of a broker bug:
	// mochi 2.7.9 hands a session over to the new connection
	// (inheritClientSession: copy the in-flight messages, clear the old
	// client's, and only then register the new client), and a message
	// routed to the client ID in between lands with the old client and is
	// cleared. What pub published during the blackhole is queued in the
	// session and must still arrive.
	d.pubMu.Lock() // no publish in flight
	d.update(func() { d.gateOpen, d.gateReason = false, "sub has resumed its session" })
	d.pubMu.Unlock()
	d.out.event("publisher_held", "pub holds back new messages while sub resumes its session (mochi 2.7.9 can lose a message published during the session hand-over)",
		"reason", "session hand-over")
	d.proxy.Pass()
	if !d.waitFor(ctx, stepTimeout, func() bool { return d.recoveryFor("sub").flowing >= 0 }) {
		return d.stepFailed(ctx, "messages did not flow again")
	}
	if !d.pauseUntil(ctx, maxTime(start.Add(pct(D, 20)), time.Now().Add(500*time.Millisecond))) {
		return false
	}

	// (d) Broker restart.
	start = time.Now()
	if !d.restartBroker(ctx) {
		return false
	}
	return d.pauseUntil(ctx, maxTime(start.Add(pct(D, 25)), time.Now().Add(500*time.Millisecond)))
}

// restartBroker stops the broker, starts it again about a second later
// and waits until messages flow again.
//
// The publisher is held back around the restart, for two reasons that are
// the broker's, not the client's. A broker without persistence that stops
// between acknowledging a PUBLISH (mochi sends the PUBACK first) and
// forwarding it loses that message, so the broker is stopped at a moment
// when no publish is in flight and sub has everything pub got acknowledged
// (this waits a few milliseconds at most). And the restarted broker has no
// subscriptions: whatever pub publishes before sub has re-subscribed is
// dropped for want of a subscriber, so pub waits until sub is back. If
// pub's own connection is still down then, its Publish waits in the
// library's offline queue (or, with queueing off, fails with
// ErrNotConnected and the same sequence number is tried again).
func (d *demo) restartBroker(ctx context.Context) bool {
	const down = time.Second
	d.phase("restart", fmt.Sprintf("phase d: broker restart: stopped (sessions and subscriptions lost), started again on the same port %v later", down))
	d.out.event("publisher_held", "pub holds back new messages until sub's subscription is restored (the restarted broker would drop them)",
		"reason", "no subscription")

	deadline := time.Now().Add(2 * time.Second)
	for {
		d.pubMu.Lock()
		d.mu.Lock()
		quiet := len(d.missingLocked()) == 0
		d.mu.Unlock()
		if quiet || time.Now().After(deadline) {
			break
		}
		d.pubMu.Unlock()
		if !d.pause(ctx, 5*time.Millisecond) {
			return false
		}
	}
	d.update(func() { d.gateOpen, d.gateReason = false, "sub's subscription is back" })
	d.out.event("broker_stopping", "stopping the broker, as in a crash: connections dropped without DISCONNECT")
	d.startFault("broker restart", 0, "sub", "pub")
	d.broker.Stop()
	d.pubMu.Unlock()
	d.out.event("broker_stopped", "broker stopped")

	if !d.pause(ctx, down) {
		return false
	}
	if err := d.broker.Restart(); err != nil {
		d.out.event("error", "broker restart failed: "+err.Error(), "error", err.Error())
		return false
	}
	d.out.event("broker_restarted", "broker restarted on the same port, with no sessions")
	if !d.waitFor(ctx, stepTimeout, func() bool {
		return d.recoveryFor("sub").flowing >= 0 && d.recoveryFor("pub").flowing >= 0
	}) {
		return d.stepFailed(ctx, "messages did not flow again after the restart")
	}
	return true
}

// stepFailed reports a timeline step that timed out.
func (d *demo) stepFailed(ctx context.Context, what string) bool {
	if ctx.Err() == nil {
		d.out.event("error", "giving up: "+what, "error", what)
	}
	return false
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
	if d.pollStop != nil {
		close(d.pollStop)
		<-d.pollDone
	}
	if d.proxy != nil {
		d.proxy.Close()
	}
	if d.broker != nil {
		d.broker.Close()
	}
}

// startFault records the start of a fault for the given clients.
func (d *demo) startFault(fault string, bound time.Duration, clients ...string) {
	d.update(func() {
		now := time.Now()
		for _, c := range clients {
			d.recoveries = append(d.recoveries, &recovery{
				fault: fault, client: c, at: now, bound: bound,
				detected: -1, reconnected: -1, flowing: -1, silent: -1,
			})
		}
	})
}

// recoveryFor returns client's latest recovery. d.mu held.
func (d *demo) recoveryFor(client string) *recovery {
	for i := len(d.recoveries) - 1; i >= 0; i-- {
		if r := d.recoveries[i]; r.client == client {
			return r
		}
	}
	return &recovery{detected: -1, reconnected: -1, flowing: -1, silent: -1}
}

// openRecovery returns client's latest recovery if field is still unset.
// d.mu held.
func (d *demo) openRecovery(client string, field func(*recovery) *time.Duration) *recovery {
	for i := len(d.recoveries) - 1; i >= 0; i-- {
		if r := d.recoveries[i]; r.client == client {
			if *field(r) < 0 {
				return r
			}
			return nil
		}
	}
	return nil
}

func (d *demo) onConnect(name string) func(mqttkeep.ConnectEvent) {
	return func(e mqttkeep.ConnectEvent) {
		now := time.Now()
		var rec *recovery
		var first bool
		var reopened string
		d.update(func() {
			cc := d.clients[name]
			cc.connects++
			first = cc.connects == 1
			if rec = d.openRecovery(name, func(r *recovery) *time.Duration { return &r.reconnected }); rec != nil {
				rec.reconnected = now.Sub(rec.at)
			}
			if name == "sub" && !d.gateOpen {
				d.gateOpen, reopened = true, d.gateReason
			}
		})
		fields := []any{"client", name, "session_present", e.SessionPresent, "attempt", e.Attempt,
			"downtime_s", secs(e.Downtime), "keepalive_s", secs(e.KeepAlive)}
		if e.ResubscribeErr != nil {
			fields = append(fields, "resubscribe_error", errText(e.ResubscribeErr))
		}
		if first {
			how := "directly to the broker"
			if name == "sub" {
				how = "through the fault proxy"
			}
			d.out.event("connected", fmt.Sprintf("%s connected %s (keep alive %v)", name, how, e.KeepAlive), fields...)
			return
		}
		text := fmt.Sprintf("%s reconnected: attempt %d, session present %t, down %s", name, e.Attempt, e.SessionPresent, fmtDur(e.Downtime))
		if rec != nil {
			text += fmt.Sprintf(", %s after the %s", fmtDur(rec.reconnected), rec.fault)
			fields = append(fields, "fault", rec.fault, "after_s", secs(rec.reconnected))
		}
		switch {
		case name != "sub" || e.SessionPresent:
		case e.ResubscribeErr == nil:
			text += "; the library re-subscribed to " + demoTopic + " by itself"
		default:
			text += "; re-subscribing FAILED: " + errText(e.ResubscribeErr)
		}
		d.out.event("reconnected", text, fields...)
		if reopened != "" {
			d.out.event("publisher_resumed", "pub may publish again: "+reopened)
		}
	}
}

func (d *demo) onDisconnect(name string) func(mqttkeep.DisconnectEvent) {
	return func(e mqttkeep.DisconnectEvent) {
		if e.Err == nil {
			d.out.event("closed", name+" closed (DISCONNECT sent)", "client", name)
			return
		}
		now := time.Now()
		var rec *recovery
		pingTimeout := errors.Is(e.Err, mqttkeep.ErrPingTimeout)
		d.update(func() {
			d.clients[name].losses++
			if rec = d.openRecovery(name, func(r *recovery) *time.Duration { return &r.detected }); rec != nil {
				rec.detected = now.Sub(rec.at)
				rec.silent = now.Sub(maxTime(rec.at, d.lastRecvAt))
				if !e.LastReceived.IsZero() { // the library knows when the last byte came
					rec.silent = now.Sub(e.LastReceived)
				}
				rec.cause = e.Err
				rec.detectedByPingTimer = pingTimeout
			}
		})
		fields := []any{"client", name, "cause", errText(e.Err), "ping_timeout", pingTimeout,
			"uptime_s", secs(e.Uptime), "will_reconnect", e.WillReconnect}
		var text string
		switch {
		case rec != nil && pingTimeout:
			text = fmt.Sprintf("link dead: %s: ping timeout detected after %s", name, fmtDur(rec.detected))
			if late := rec.detected - rec.silent; late > time.Millisecond {
				text += fmt.Sprintf(" (the last message arrived %s after the blackhole: silent for %s)", fmtDur(late), fmtDur(rec.silent))
			}
			text += fmt.Sprintf(" (bound K/2 + ping timeout = %s)", fmtDur(d.bound))
			if rec.silent > d.bound+detectSlack {
				text += " LATE"
			}
			fields = append(fields, "fault", rec.fault, "after_s", secs(rec.detected), "silent_s", secs(rec.silent), "bound_s", secs(d.bound))
		case rec != nil:
			text = fmt.Sprintf("%s lost its connection %s after the %s: %s", name, fmtDur(rec.detected), rec.fault, causeName(e.Err))
			fields = append(fields, "fault", rec.fault, "after_s", secs(rec.detected))
		default:
			text = fmt.Sprintf("%s lost its connection: %s", name, errText(e.Err))
		}
		d.out.event("disconnected", text, fields...)
	}
}

func (d *demo) onReconnecting(name string) func(mqttkeep.ReconnectingEvent) {
	return func(e mqttkeep.ReconnectingEvent) {
		d.out.event("reconnecting", fmt.Sprintf("%s reconnecting: attempt %d in %s (%s)", name, e.Attempt, fmtDur(e.Delay), causeName(e.Err)),
			"client", name, "attempt", e.Attempt, "delay_s", secs(e.Delay), "cause", errText(e.Err))
	}
}

// onMessage is sub's handler for demo/counter.
func (d *demo) onMessage(m *mqttkeep.Message) {
	seq, err := strconv.ParseUint(string(m.Payload), 10, 64)
	if err != nil {
		return
	}
	now := time.Now()
	var first bool
	var rec *recovery
	d.update(func() {
		d.received[seq]++
		d.deliveries++
		d.lastRecvAt = now
		first, d.gotFirst = !d.gotFirst, true
		// After the loss was reported the old connection is closed: this
		// message came on a new one. (Bytes already on their way when the
		// proxy started dropping may still arrive before that.)
		if r := d.openRecovery("sub", func(r *recovery) *time.Duration { return &r.flowing }); r != nil && r.detected >= 0 {
			r.flowing = now.Sub(r.at)
			rec = r
		}
	})
	switch {
	case first:
		d.out.event("first_message", fmt.Sprintf("sub received seq %d: messages are flowing", seq), "client", "sub", "seq", seq)
	case rec != nil:
		dup := ""
		if m.Duplicate {
			dup = " (a re-sent duplicate)"
		}
		d.out.event("flowing_again", fmt.Sprintf("messages flowing again: sub received seq %d%s, %s after the %s", seq, dup, fmtDur(rec.flowing), rec.fault),
			"client", "sub", "seq", seq, "duplicate", m.Duplicate, "fault", rec.fault, "after_s", secs(rec.flowing))
	}
}

// startPublisher starts pub's publishing goroutine.
func (d *demo) startPublisher() {
	var ctx context.Context
	ctx, d.pubCancel = context.WithCancel(context.Background())
	d.pubStop, d.pubDone = make(chan struct{}), make(chan struct{})
	go d.publish(ctx)
}

// publish is the publisher: one sequence number per interval, each
// published until the broker acknowledged it. A failed attempt (not
// connected, timed out, session lost) is retried with the SAME number.
func (d *demo) publish(ctx context.Context) {
	defer close(d.pubDone)
	tick := time.NewTicker(d.interval)
	defer tick.Stop()
	del := &deliverer{client: d.pub, attemptTimeout: d.publishTimeout}
	for seq := uint64(1); ; seq++ {
		select {
		case <-d.pubStop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		payload := []byte(strconv.FormatUint(seq, 10))
		failed := 0
		err := del.deliver(ctx, func(actx context.Context) error {
			if err := d.waitGate(actx); err != nil {
				return err
			}
			d.pubMu.Lock()
			defer d.pubMu.Unlock()
			if !d.isGateOpen() {
				return errGateClosed
			}
			if err := d.pub.Publish(actx, demoTopic, payload, mqttkeep.WithQoS(1)); err != nil {
				return err
			}
			d.recordAck(seq)
			return nil
		}, func(attempt int, err error) {
			if errors.Is(err, errGateClosed) || (errors.Is(err, context.DeadlineExceeded) && !d.isGateOpen()) {
				return // held back on purpose, not a failure
			}
			failed++
			if failed == 1 {
				d.out.event("publish_retry", fmt.Sprintf("pub: publishing seq %d failed (%s); retrying the same sequence number", seq, errText(err)),
					"client", "pub", "seq", seq, "error", errText(err))
			}
		})
		if err != nil {
			if ctx.Err() == nil {
				d.out.event("publish_failed", fmt.Sprintf("pub: seq %d not published: %s", seq, errText(err)), "client", "pub", "seq", seq, "error", errText(err))
			}
			return
		}
		if failed > 0 {
			d.out.event("publish_recovered", fmt.Sprintf("pub: seq %d acknowledged after %d failed attempts", seq, failed), "client", "pub", "seq", seq, "failed_attempts", failed)
		}
	}
}

// recordAck records that the broker acknowledged seq.
func (d *demo) recordAck(seq uint64) {
	now := time.Now()
	var rec *recovery
	d.update(func() {
		d.acked[seq] = true
		// No publish was in flight when the broker stopped (see
		// restartBroker): any acknowledgement now came on a new connection.
		if r := d.openRecovery("pub", func(r *recovery) *time.Duration { return &r.flowing }); r != nil {
			r.flowing = now.Sub(r.at)
			rec = r
		}
	})
	if rec != nil {
		d.out.event("publishing_again", fmt.Sprintf("pub publishing again: seq %d acknowledged, %s after the %s", seq, fmtDur(rec.flowing), rec.fault),
			"client", "pub", "seq", seq, "fault", rec.fault, "after_s", secs(rec.flowing))
	}
}

func (d *demo) isGateOpen() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gateOpen
}

// waitGate waits until pub may publish.
func (d *demo) waitGate(ctx context.Context) error {
	if d.waitFor(ctx, 24*time.Hour, func() bool { return d.gateOpen }) {
		return nil
	}
	return ctx.Err()
}

// pollPings shows sub's PINGREQ/PINGRESP exchanges, read from Stats.
func (d *demo) pollPings() {
	defer close(d.pollDone)
	t := time.NewTicker(demoPollInterval)
	defer t.Stop()
	var sent, answered uint64
	for {
		select {
		case <-d.pollStop:
			return
		case <-t.C:
		}
		st := d.sub.Stats()
		newSent, newAnswered := st.PingsSent > sent, st.PingResponses > answered
		sent, answered = max(sent, st.PingsSent), max(answered, st.PingResponses)
		fields := []any{"client", "sub", "pings_sent", st.PingsSent, "pings_answered", st.PingResponses}
		switch {
		case newAnswered:
			now := time.Now()
			d.update(func() { d.lastRecvAt = maxTime(d.lastRecvAt, now) })
		}
		switch {
		case newAnswered && newSent:
			d.out.event("ping", fmt.Sprintf("sub PINGREQ -> PINGRESP, rtt %s", fmtRTT(st.PingRTTLast)), append(fields, "rtt_ms", ms(st.PingRTTLast))...)
		case newAnswered:
			d.out.event("ping", fmt.Sprintf("sub PINGRESP, rtt %s", fmtRTT(st.PingRTTLast)), append(fields, "rtt_ms", ms(st.PingRTTLast))...)
		case newSent:
			d.out.event("ping_sent", "sub PINGREQ sent, no PINGRESP yet", fields...)
		}
	}
}

// phase announces a phase of the timeline.
func (d *demo) phase(name, text string) {
	d.out.event("phase", "== "+text, "phase", name, "description", text)
}

// update changes the demo state under mu and wakes waitFor.
func (d *demo) update(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f()
	close(d.changed)
	d.changed = make(chan struct{})
}

// waitFor waits until cond (called with mu held) is true; it reports false
// on timeout or when ctx ends.
func (d *demo) waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		d.mu.Lock()
		ok, changed := cond(), d.changed
		d.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (d *demo) pause(ctx context.Context, dur time.Duration) bool { return sleepCtx(ctx, dur) }

func (d *demo) pauseUntil(ctx context.Context, t time.Time) bool {
	return sleepCtx(ctx, time.Until(t))
}

// missingLocked returns the acknowledged sequence numbers sub has not
// received, in order. d.mu held.
func (d *demo) missingLocked() []uint64 {
	var missing []uint64
	for seq := range d.acked {
		if d.received[seq] == 0 {
			missing = append(missing, seq)
		}
	}
	slices.Sort(missing)
	return missing
}

// summary prints the final table (or JSON object) and returns the exit
// status: 0 when no acknowledged message was lost.
func (d *demo) summary(completed bool) int {
	d.mu.Lock()
	lost := d.missingLocked()
	published, received := len(d.acked), d.deliveries
	duplicated, unacked := 0, 0
	for seq, n := range d.received {
		duplicated += max(n-1, 0)
		if !d.acked[seq] {
			unacked++
		}
	}
	subLosses, pubLosses := d.clients["sub"].losses, d.clients["pub"].losses
	recs := make([]recovery, len(d.recoveries))
	for i, r := range d.recoveries {
		recs[i] = *r
	}
	d.mu.Unlock()

	// An interrupted run may stop with messages still on their way (queued
	// for a blackholed sub, say): they are "not received", not proven lost,
	// but the exit status is still 1.
	code, verdict := exitOK, "PASS"
	switch {
	case len(lost) > 0 && completed:
		code, verdict = exitFail, "FAIL"
	case len(lost) > 0:
		code, verdict = exitFail, "INCOMPLETE"
	}
	if d.out.json {
		faults := make([]map[string]any, 0, len(recs))
		for _, r := range recs {
			f := map[string]any{"fault": r.fault, "client": r.client, "cause": causeName(r.cause),
				"detected_s": secsOrNil(r.detected), "reconnected_s": secsOrNil(r.reconnected), "flowing_again_s": secsOrNil(r.flowing)}
			if r.bound > 0 {
				f["bound_s"] = secs(r.bound)
				f["silent_s"] = secsOrNil(r.silent)
				f["within_bound"] = r.silent >= 0 && r.silent <= r.bound+detectSlack
			}
			faults = append(faults, f)
		}
		d.out.event("summary", "",
			"completed", completed,
			"disconnects", map[string]int{"sub": subLosses, "pub": pubLosses},
			"faults", faults,
			"published", published, "received", received, "duplicated", duplicated,
			"received_unacknowledged", unacked,
			"lost", len(lost), "lost_seqs", append([]uint64{}, lost...),
			"verdict", strings.ToLower(verdict), "exit_code", code)
		return code
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "\nsummary (keep alive %v, ping timeout %v: a dead link must be reported within %v)\n", d.keepAlive, d.pingTimeout, d.bound)
	if len(recs) == 0 {
		fmt.Fprintln(&b, "  no fault was injected")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(recs) > 0 {
		fmt.Fprintln(tw, "  fault\tclient\tcause\tdetected\tbound\treconnected\tflowing again")
	}
	for _, r := range recs {
		bound, detected := "-", fmtDurOrDash(r.detected)
		if r.bound > 0 {
			bound = fmtDur(r.bound)
			if r.silent > r.bound+detectSlack {
				bound += " (LATE)"
			}
			if r.detected-r.silent > time.Millisecond {
				detected += fmt.Sprintf(" (silent %s)", fmtDur(r.silent))
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.fault, r.client, causeName(r.cause),
			detected, bound, fmtDurOrDash(r.reconnected), fmtDurOrDash(r.flowing))
	}
	_ = tw.Flush()
	if len(recs) > 0 {
		fmt.Fprintln(&b, "  (times from the fault; the bound counts from the last byte received, and the hook that reports")
		fmt.Fprintln(&b, "   the loss runs a millisecond or so after the timer; flowing again = first message received by")
		fmt.Fprintln(&b, "   sub, first publish acknowledged for pub)")
	}
	fmt.Fprintf(&b, "  disconnects: sub %d, pub %d (connection losses; the final Close not counted)\n", subLosses, pubLosses)
	lostWord := "lost"
	if !completed {
		lostWord = "not received"
	}
	fmt.Fprintf(&b, "  messages: published %d (acknowledged by the broker), received %d, duplicated %d, %s %d\n", published, received, duplicated, lostWord, len(lost))
	if unacked > 0 {
		fmt.Fprintf(&b, "  (%d received message(s) had not been acknowledged to pub: their publish was retried or cut short)\n", unacked)
	}
	partial := ""
	if !completed {
		partial = " (partial run: the timeline did not complete)"
	}
	switch verdict {
	case "PASS":
		fmt.Fprintf(&b, "verdict: PASS%s: every acknowledged message arrived (lost 0); exit status %d\n", partial, code)
	case "FAIL":
		fmt.Fprintf(&b, "verdict: FAIL: %d acknowledged message(s) never arrived (seq %s); exit status %d\n", len(lost), joinSeqs(lost), code)
	default:
		fmt.Fprintf(&b, "verdict: INCOMPLETE%s: %d acknowledged message(s) not received before the end (seq %s); exit status %d\n", partial, len(lost), joinSeqs(lost), code)
	}
	_, _ = d.out.w.Write(b.Bytes())
	return code
}

// emitter writes the demo's events: a line "  4.512s  text" each, or with
// --json one JSON object per line with t (seconds since the start), event
// and the event's fields.
type emitter struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	start time.Time
}

// event writes one event; kv alternates field names and values.
func (e *emitter) event(name, text string, kv ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := time.Since(e.start)
	if !e.json {
		fmt.Fprintf(e.w, "%7.3fs  %s\n", t.Seconds(), text)
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"t":%.3f,"event":%q`, t.Seconds(), name)
	for i := 0; i+1 < len(kv); i += 2 {
		v, err := json.Marshal(kv[i+1])
		if err != nil {
			v, _ = json.Marshal(fmt.Sprint(kv[i+1]))
		}
		k, _ := json.Marshal(fmt.Sprint(kv[i]))
		fmt.Fprintf(&b, ",%s:%s", k, v)
	}
	b.WriteString("}\n")
	_, _ = e.w.Write(b.Bytes())
}

// causeName is a short name for why a connection ended.
func causeName(err error) string {
	var rc *mqttkeep.ReasonCodeError
	switch {
	case err == nil:
		return "-"
	case errors.Is(err, mqttkeep.ErrPingTimeout):
		return "ping timeout"
	case errors.Is(err, mqttkeep.ErrConnectTimeout):
		return "connect timeout"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &rc):
		return fmt.Sprintf("%s 0x%02X", rc.Packet, rc.Code)
	}
	s := errText(err)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func pct(d time.Duration, p int64) time.Duration { return d * time.Duration(p) / 100 }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// secs is d in seconds, rounded to the millisecond, for JSON.
func secs(d time.Duration) float64 { return math.Round(d.Seconds()*1e3) / 1e3 }

func secsOrNil(d time.Duration) any {
	if d < 0 {
		return nil
	}
	return secs(d)
}

// ms is d in milliseconds, rounded to the microsecond, for JSON.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

func fmtDurOrDash(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmtDur(d)
}

func fmtRTT(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

func joinSeqs(seqs []uint64) string {
	parts := make([]string, 0, min(len(seqs), 20))
	for i, s := range seqs {
		if i == 20 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, strconv.FormatUint(s, 10))
	}
	return strings.Join(parts, ", ")
}
