package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// qos0Throughput publishes 200k × 64 B QoS 0 from one goroutine to a topic
// with one inline (broker-side) subscriber that counts them.
func qos0Throughput(ctx context.Context, e *env, c Contestant, _ int) ([]float64, error) {
	n := e.n(200_000)
	b, err := startTarget(ctx, e, 0)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	const topic = "bench/qos0"
	var got atomic.Int64
	all := make(chan struct{})
	if err := b.count(ctx, topic, func() {
		if got.Add(1) == int64(n) {
			close(all)
		}
	}); err != nil {
		return nil, err
	}
	cl, err := c.Connect(ctx, ClientConfig{Addr: b.addr, ClientID: e.clientID(c), KeepAlive: e.keepAlive})
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
	b, err := startTarget(ctx, e, 0)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	cl, err := c.Connect(ctx, ClientConfig{Addr: b.addr, ClientID: e.clientID(c), KeepAlive: e.keepAlive})
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

// qos1Pipelined publishes n QoS 1 messages from one goroutine through the
// library's asynchronous call, keeping at most window of them unacknowledged:
// before accepting message i it waits for message i − window.
func qos1Pipelined(ctx context.Context, e *env, c Contestant, n, window int) ([]float64, error) {
	b, err := startTarget(ctx, e, 0)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	cl, err := c.Connect(ctx, ClientConfig{Addr: b.addr, ClientID: e.clientID(c), KeepAlive: e.keepAlive})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer closeBounded(cl)
	ap, ok := cl.(AsyncPublisher)
	if !ok {
		return nil, fmt.Errorf("%s has no asynchronous publish", c.Name())
	}
	ring := make([]func(context.Context) error, window)
	t0 := time.Now()
	for i := range n {
		if w := ring[i%window]; w != nil {
			if err := w(ctx); err != nil {
				return nil, fmt.Errorf("message %d: %w", i-window, err)
			}
		}
		w, err := ap.PublishAsync(ctx, "bench/qos1", payload64, 1)
		if err != nil {
			return nil, fmt.Errorf("publish %d: %w", i, err)
		}
		ring[i%window] = w
	}
	for i := n; i < n+window; i++ {
		if w := ring[i%window]; w != nil {
			if err := w(ctx); err != nil {
				return nil, fmt.Errorf("message %d: %w", i-window, err)
			}
		}
	}
	return []float64{float64(n) / time.Since(t0).Seconds()}, nil
}

// inbound: the broker publishes 100k × 64 B with qos (0 or 1) to one
// subscriber (subscribed with the same QoS) as fast as it can (mochi may queue all of them: it never drops); the result is
// the rate at which they reach the handler. Messages the client drops are
// not counted, and the run is reported as incomplete.
func inbound(ctx context.Context, e *env, c Contestant, qos byte) ([]float64, error) {
	n := e.n(100_000)
	b, err := startTarget(ctx, e, n+1024)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	const topic = "bench/inbound"
	got := newHandledCount()
	var lastAt atomic.Int64 // UnixNano of the latest message, sampled every 256
	all := make(chan struct{})
	cl, err := c.Connect(ctx, ClientConfig{
		Addr: b.addr, ClientID: e.clientID(c), KeepAlive: e.keepAlive,
		Sub: &Subscription{Topic: topic, QoS: qos, Handler: func([]byte) {
			k := got.add()
			if k%progressEvery == 0 {
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
	go func() { pubDone <- b.inject(ctx, topic, qos, n, got) }()
	if err := <-pubDone; err != nil {
		return nil, err
	}
	// Wait for all, or until nothing arrived for a second (some dropped).
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	prev, still := got.load(), 0
	for {
		select {
		case <-all:
			return []float64{float64(n) / time.Since(t0).Seconds()}, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("delivered %d of %d: %w", got.load(), n, ctx.Err())
		case <-tick.C:
		}
		cur := got.load()
		if cur != prev {
			prev, still = cur, 0
			continue
		}
		if still++; still >= 10 {
			end := time.Unix(0, lastAt.Load())
			if cur == 0 || !end.After(t0) {
				return nil, fmt.Errorf("delivered %d of %d", cur, n)
			}
			return []float64{float64(cur) / end.Sub(t0).Seconds()}, &incomplete{got: cur, want: int64(n), brokerDropped: b.dropped()}
		}
	}
}

// incomplete marks a result that is kept but did not deliver everything.
type incomplete struct {
	got, want, brokerDropped int64
	note                     string // replaces the default text when set
}

func (i *incomplete) Error() string {
	if i.note != "" {
		return i.note
	}
	return fmt.Sprintf("delivered %d of %d (%d lost, %d of them dropped by the broker)", i.got, i.want, i.want-i.got, i.brokerDropped)
}

// handledCount counts the messages the client under test handled and wakes
// one waiter every progressEvery of them.
type handledCount struct {
	n    atomic.Int64
	wake chan struct{} // capacity 1: a wake-up is never lost, at most merged
}

const progressEvery = 256

func newHandledCount() *handledCount { return &handledCount{wake: make(chan struct{}, 1)} }

func (p *handledCount) add() int64 {
	k := p.n.Add(1)
	if k%progressEvery == 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return k
}

func (p *handledCount) load() int64 { return p.n.Load() }

// waitBelow waits until fewer than ahead of the first sent messages are
// unhandled. It fails when the handler made no progress for stall.
func (p *handledCount) waitBelow(ctx context.Context, sent int64, ahead int64, stall time.Duration) error {
	if sent-p.load() < ahead {
		return nil
	}
	t := time.NewTimer(stall)
	defer t.Stop()
	for last := p.load(); sent-last >= ahead; {
		select {
		case <-p.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("stalled: %d sent, %d handled, none for %v", sent, p.load(), stall)
		}
		if cur := p.load(); cur != last {
			last = cur
			t.Reset(stall)
		}
	}
	return nil
}
