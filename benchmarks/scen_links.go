package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

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
