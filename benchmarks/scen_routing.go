package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep/benchmarks/internal/feeder"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// routingLevels are the subscription counts of the routing scenarios.
var routingLevels = []int{1, 100, 1000, 10_000}

// routingCap bounds the delivery phase of one level: a client whose
// router is slow is measured on what it delivered by then.
const routingCap = 5 * time.Second

// routingAhead bounds how many messages the server sends ahead of the
// matching handler (below mqttkeep's 8,192-message QoS 0 buffer and
// paho.golang's 65,535-slot channel). Unpaced, a slow router was left at
// the cap with up to 100k messages read and queued in the client, which it
// went on routing after Close returned (or was abandoned by closeBounded),
// in the background of every later run: in a run on 2026-12-01 the
// process used 10 min 28 s of CPU in 9 min 54 s, and mqttkeep's
// 1-subscription rate fell run after run from 113.8k to 30.9k msg/s.
// routingDrain bounds the wait, after Close, for the handlers to stop.
const (
	routingAhead = 2048
	routingDrain = 30 * time.Second
)

// routingMetrics are the rows of one routing scenario (server describes
// where the messages come from).
func routingMetrics(server string) []metric {
	var m []metric
	for _, n := range routingLevels {
		m = append(m, metric{row: fmt.Sprintf("R. routing, %s: %d subscription(s), 100k QoS 0 → handler", server, n), unit: unitRate, higherBetter: true})
	}
	return append(m,
		metric{row: fmt.Sprintf("R. routing, %s: rate with 10,000 ÷ rate with 1 (same run)", server), unit: unitCount, higherBetter: true},
		metric{row: fmt.Sprintf("R. routing, %s: connect + subscribe 10,000 filters", server), unit: unitSeconds})
}

// routing: for each level, a client subscribes to that many distinct
// filters r/<i>/+ (each with its own handler) and the server sends 100k
// QoS 0 messages to r/<k>/x, which matches exactly one of them (k in the
// middle). The rate is messages handed to the right handler per second,
// from the first message sent to the last one handled; a message reaching
// another handler fails the run. source is "mochi" (the embedded broker,
// which sends Subscription Identifiers when the client asked for them),
// "feeder" (internal/feeder announcing that it supports none, so that
// every client routes by topic) or "feeder-ids" (the feeder echoing the
// client's identifiers).
func routing(ctx context.Context, e *env, c Contestant, source string) ([]float64, error) {
	n := e.n(100_000)
	var vals []float64
	var subTime float64
	var notes []string
	for _, level := range routingLevels {
		rate, st, err := routeLevel(ctx, e, c, source, level, n)
		var inc *incomplete
		switch {
		case errors.As(err, &inc):
			notes = append(notes, inc.Error())
		case err != nil:
			return nil, fmt.Errorf("%d subscriptions: %w", level, err)
		}
		vals = append(vals, rate)
		subTime = st.Seconds()
	}
	vals = append(vals, vals[len(vals)-1]/vals[0], subTime)
	if len(notes) > 0 {
		return vals, &incomplete{note: strings.Join(notes, "; ")}
	}
	return vals, nil
}

func routeLevel(ctx context.Context, e *env, c Contestant, source string, level, n int) (float64, time.Duration, error) {
	var addr string
	var feed func(ctx context.Context, filter, topic string, got *handledCount) error
	brokerDropped := func() int64 { return 0 }
	switch source {
	case "mochi":
		b, err := startBroker(mqttkeeptest.WithOutboundQueue(n + 1024))
		if err != nil {
			return 0, 0, err
		}
		defer b.Close()
		addr = b.Addr()
		brokerDropped = b.Dropped
		feed = func(ctx context.Context, _, topic string, got *handledCount) error {
			for i := range n {
				if err := got.waitBelow(ctx, int64(i), routingAhead, routingCap); err != nil {
					return err
				}
				if err := b.Publish(topic, payload64, 0); err != nil {
					return fmt.Errorf("broker publish %d: %w", i, err)
				}
				if i%1024 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
			}
			return nil
		}
	case "feeder", "feeder-ids":
		var opts []feeder.Option
		if source == "feeder" {
			opts = append(opts, feeder.WithoutSubscriptionIDs())
		}
		f, err := feeder.Start(opts...)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		addr = f.Addr()
		feed = func(ctx context.Context, filter, topic string, got *handledCount) error {
			return f.FeedPaced(ctx, filter, topic, payload64, n, func(sent int) error {
				return got.waitBelow(ctx, int64(sent), routingAhead, routingCap)
			})
		}
	default:
		return 0, 0, fmt.Errorf("unknown source %q", source)
	}

	k := level / 2
	got := newHandledCount()
	var wrong atomic.Int64
	var lastAt atomic.Int64
	all := make(chan struct{})
	subs := make([]Subscription, level)
	for i := range subs {
		subs[i] = Subscription{Topic: fmt.Sprintf("r/%d/+", i), QoS: 0, Handler: func([]byte) { wrong.Add(1) }}
	}
	subs[k].Handler = func([]byte) {
		v := got.add()
		if v%progressEvery == 0 || v == int64(n) {
			lastAt.Store(time.Now().UnixNano())
		}
		if v == int64(n) {
			close(all)
		}
	}
	t0 := time.Now()
	cl, err := c.Connect(ctx, ClientConfig{Addr: addr, ClientID: e.clientID(c), KeepAlive: e.keepAlive, Subs: subs})
	if err != nil {
		return 0, 0, fmt.Errorf("connect: %w", err)
	}
	subTime := time.Since(t0)
	// Close the client before the server (deferred earlier): a server
	// closing first would leave a reconnecting client. Then wait until its
	// handlers stop, so that no routing work spills into the next run.
	defer func() {
		closeBounded(cl)
		if err := awaitStill(ctx, func() int64 { return got.load() + wrong.Load() }, routingDrain); err != nil {
			fmt.Fprintf(os.Stderr, "routing %s, %d subscriptions: %v\n", c.Name(), level, err)
		}
	}()

	fctx, cancel := context.WithTimeout(ctx, routingCap)
	defer cancel()
	t1 := time.Now()
	fed := make(chan error, 1)
	go func() { fed <- feed(fctx, subs[k].Topic, fmt.Sprintf("r/%d/x", k), got) }()
	var feedErr error
	select {
	case <-all:
	case <-fctx.Done():
	case feedErr = <-fed:
		if feedErr == nil {
			// All written; wait for the handler, or a second of silence.
			feedErr = awaitQuiet(fctx, &got.n, int64(n), all)
		}
	}
	cur := got.load()
	if w := wrong.Load(); w > 0 {
		return 0, 0, fmt.Errorf("%d messages reached a handler whose filter does not match", w)
	}
	if feedErr != nil && !errors.Is(feedErr, context.DeadlineExceeded) {
		return 0, 0, feedErr
	}
	if ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	end := time.Unix(0, lastAt.Load())
	if cur == 0 || !end.After(t1) {
		return 0, 0, fmt.Errorf("delivered %d of %d", cur, n)
	}
	rate := float64(cur) / end.Sub(t1).Seconds()
	if cur < int64(n) {
		// Kept: the rate of what arrived within routingCap (or before
		// the client dropped the rest).
		var dropped int64
		if d, ok := cl.(dropCounter); ok {
			dropped = d.Dropped()
		}
		return rate, subTime, &incomplete{got: cur, want: int64(n), note: fmt.Sprintf("%d subs: %d of %d handled (client dropped %d, broker dropped %d, rest not handled within %v)", level, cur, n, dropped, brokerDropped(), routingCap)}
	}
	return rate, subTime, nil
}

// awaitQuiet waits until got reaches n (all closes), ctx ends, or nothing
// arrived for a second.
func awaitQuiet(ctx context.Context, got *atomic.Int64, n int64, all <-chan struct{}) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	prev, still := got.Load(), 0
	for {
		select {
		case <-all:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		cur := got.Load()
		if cur != prev {
			prev, still = cur, 0
			continue
		}
		if still++; still >= 10 {
			return nil
		}
	}
}

// awaitStill waits until count stays the same for 500 ms, or fails after
// max (or when ctx ends).
func awaitStill(ctx context.Context, count func() int64, max time.Duration) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	prev, still := count(), 0
	for still < 5 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("handlers still running %v after Close", max)
		case <-tick.C:
		}
		if cur := count(); cur != prev {
			prev, still = cur, 0
		} else {
			still++
		}
	}
	return nil
}
