package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// target is the broker a throughput scenario's client talks to, with the
// broker-side helpers the scenario needs: a fresh one per run.
//
//   - embedded (-broker embedded, the default): the test kit's mochi broker
//     in this process; count and inject are its inline subscriber and
//     publisher (no network), so client and broker share the 2 cores.
//   - external (-broker mosquitto or mqttkeep-broker): that broker in its
//     own process; count is a raw TCP subscriber and inject a raw TCP
//     publisher (pre-encoded packets; QoS 1 from 64 goroutines), both in
//     this process.
type target struct {
	addr string
	// count calls fn for every message the broker delivers on topic (at
	// QoS 0).
	count func(ctx context.Context, topic string, fn func()) error
	// inject publishes n × 64 B to topic with qos as fast as the broker
	// takes them. handled counts what the client under test handled so
	// far. The embedded broker's QoS 1 injection keeps fewer than
	// embeddedAhead messages ahead of it: mochi v2.7.9 drops a QoS 1
	// message (counted in its InflightDropped, not in Dropped) when a
	// client already has MaximumInflight (8,192) unacknowledged. Beware
	// mochi with QoS 1 towards a client that announces a Receive Maximum
	// (mqttkeep does, 128; the peers announce none and get no flow
	// control): once its send quota reads 0 it parks further messages in
	// the client's inflight map (Expiry −1, internal/mochi server.go). It
	// sends a parked one after a later packet from the client, but deletes
	// it from the map as it does, so that message's PUBACK finds nothing
	// and gives no quota back: after Receive Maximum such sends the quota
	// stays 0, everything later stays parked until a reconnect, and the
	// injection reports the stall (embeddedStall without progress).
	inject  func(ctx context.Context, topic string, qos byte, n int, handled *handledCount) error
	dropped func() int64 // messages the broker dropped (embedded only)
	closers []func()
}

func (t *target) Close() {
	for i := len(t.closers) - 1; i >= 0; i-- {
		t.closers[i]()
	}
}

// embeddedAhead bounds how far the embedded broker's QoS 1 injection runs
// ahead of the handler (below mochi's MaximumInflight, 8,192);
// embeddedStall is how long it waits for the handler to make progress.
const (
	embeddedAhead = 4096
	embeddedStall = 10 * time.Second
)

// startTarget starts the broker of e.broker. queue is the embedded
// broker's outbound queue per client (0: its default).
func startTarget(ctx context.Context, e *env, queue int) (*target, error) {
	if e.broker == "embedded" {
		var opts []mqttkeeptest.BrokerOption
		if queue > 0 {
			opts = append(opts, mqttkeeptest.WithOutboundQueue(queue))
		}
		b, err := startBroker(opts...)
		if err != nil {
			return nil, err
		}
		return &target{
			addr: b.Addr(),
			count: func(_ context.Context, topic string, fn func()) error {
				return b.Subscribe(topic, func(string, []byte) { fn() })
			},
			inject: func(ctx context.Context, topic string, qos byte, n int, handled *handledCount) error {
				for i := range n {
					if qos > 0 {
						if err := handled.waitBelow(ctx, int64(i), embeddedAhead, embeddedStall); err != nil {
							return fmt.Errorf("broker publish %d: %w", i, err)
						}
					}
					if err := b.Publish(topic, payload64, qos); err != nil {
						return fmt.Errorf("broker publish %d: %w", i, err)
					}
					if i%1024 == 0 && ctx.Err() != nil {
						return ctx.Err()
					}
				}
				return nil
			},
			dropped: b.Dropped,
			closers: []func(){b.Close},
		}, nil
	}
	b, err := startBrokerProc(ctx, e.broker, false)
	if err != nil {
		return nil, err
	}
	t := &target{addr: b.Addr(), dropped: func() int64 { return 0 }, closers: []func(){b.Close}}
	var mu sync.Mutex
	helper := func(ctx context.Context, sub *Subscription) (Client, error) {
		cl, err := rawContestant{}.Connect(ctx, ClientConfig{Addr: b.Addr(), ClientID: e.clientID(rawContestant{}), Sub: sub})
		if err != nil {
			return nil, fmt.Errorf("helper client: %w", err)
		}
		mu.Lock()
		t.closers = append(t.closers, cl.Close)
		mu.Unlock()
		return cl, nil
	}
	t.count = func(ctx context.Context, topic string, fn func()) error {
		_, err := helper(ctx, &Subscription{Topic: topic, Handler: func([]byte) { fn() }})
		return err
	}
	t.inject = func(ctx context.Context, topic string, qos byte, n int, _ *handledCount) error {
		cl, err := helper(ctx, nil)
		if err != nil {
			return err
		}
		workers := 1
		if qos > 0 {
			workers = concurrency
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		errc := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= int64(n); i = next.Add(1) {
					if err := cl.Publish(ctx, topic, payload64, qos); err != nil {
						errc <- fmt.Errorf("helper publish %d: %w", i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errc:
			return err
		default:
			return nil
		}
	}
	return t, nil
}
