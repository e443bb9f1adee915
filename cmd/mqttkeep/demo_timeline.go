package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

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
	d.trace.faultStart("link blackholed")
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
	d.update(func() {
		d.gateOpen, d.gateReason = false, "sub has resumed its session"
		d.heldBack = append(d.heldBack, "pub held back new messages while sub resumed its session (mochi 2.7.9 loses messages published to a client ID during a session takeover)")
	})
	d.pubMu.Unlock()
	d.out.event("publisher_held", "pub holds back new messages while sub resumes its session (mochi 2.7.9 can lose a message published during the session hand-over)",
		"reason", "session hand-over")
	d.proxy.Pass()
	d.trace.faultEnd()
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
	d.update(func() {
		d.gateOpen, d.gateReason = false, "sub's subscription is back"
		d.heldBack = append(d.heldBack, "the broker was stopped with no publish in flight (a broker without persistence loses a message it acknowledged but had not forwarded yet)",
			"pub held back new messages until sub had re-subscribed (the restarted broker drops messages nobody is subscribed to)")
	})
	d.out.event("broker_stopping", "stopping the broker, as in a crash: connections dropped without DISCONNECT")
	d.startFault("broker restart", 0, "sub", "pub")
	d.trace.faultStart("broker restart")
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
	d.trace.faultEnd()
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

// phase announces a phase of the timeline.
func (d *demo) phase(name, text string) {
	d.trace.phase(name)
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
