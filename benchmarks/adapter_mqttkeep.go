package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// mqttkeepContestant is the library under test, with its defaults except
// the keep alive (and, for FastRetry, a 100 ms retry grid and backoff).
type mqttkeepContestant struct{}

func (mqttkeepContestant) Name() string { return "mqttkeep" }

func (mqttkeepContestant) Caps() Caps {
	return Caps{DeadLink: true, Reconnect: true, FastRetry: true, QoS1: true, Acks: true, Footprint: true, Durable: true, Async: true, Routing: true, SubIDs: true, StorePublish: true}
}

type mqttkeepClient struct {
	c    *mqttkeep.Client
	qos1 []mqttkeep.PublishOption
}

func (mqttkeepContestant) Connect(ctx context.Context, cfg ClientConfig) (Client, error) {
	opts := []mqttkeep.Option{
		mqttkeep.WithServer("mqtt://" + cfg.Addr),
		mqttkeep.WithClientID(cfg.ClientID),
		mqttkeep.WithKeepAlive(cfg.KeepAlive),
	}
	if cfg.FastRetry {
		// A refused dial (the broker is down) retries on the dial grid,
		// every 100 ms; an attempt the broker refused waits the backoff,
		// full jitter over [0, 100 ms].
		opts = append(opts, mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{
			DialRetry: 100 * time.Millisecond,
			Backoff:   mqttkeep.Backoff{Initial: 100 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 1},
		}))
	}
	c, err := mqttkeep.New(opts...)
	if err != nil {
		return nil, err
	}
	if cfg.OnLost != nil {
		c.OnDisconnect(func(e mqttkeep.DisconnectEvent) {
			if e.Err != nil { // nil: our own Close
				cfg.OnLost(e.Err)
			}
		})
	}
	if cfg.OnUp != nil {
		c.OnConnect(func(mqttkeep.ConnectEvent) { cfg.OnUp() })
	}
	if cfg.OnFailedAttempt != nil {
		c.OnConnect(func(e mqttkeep.ConnectEvent) {
			for range e.Attempt - 1 { // attempts since the client was last connected
				cfg.OnFailedAttempt()
			}
		})
	}
	if err := c.Connect(ctx); err != nil {
		closeWithTimeout(c.Close)
		return nil, err
	}
	if s := cfg.Sub; s != nil {
		// Remembered and restored by the library after a reconnect.
		h := s.Handler
		if err := c.Subscribe(ctx, s.Topic, mqttkeep.QoS(s.QoS), func(m *mqttkeep.Message) { h(m.Payload) }); err != nil {
			closeWithTimeout(c.Close)
			return nil, err
		}
	}
	if err := subscribeAll(ctx, c, cfg.Subs); err != nil {
		closeWithTimeout(c.Close)
		return nil, err
	}
	return &mqttkeepClient{c: c, qos1: []mqttkeep.PublishOption{mqttkeep.WithQoS(1)}}, nil
}

// subscribeAll makes every subscription with Subscribe, from up to 64
// goroutines at once: the API has no call for several filters, and each
// Subscribe waits for its SUBACK (with Subscription Identifiers, one
// SUBSCRIBE packet per filter anyway).
func subscribeAll(ctx context.Context, c *mqttkeep.Client, subs []Subscription) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(subs), 64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(subs) && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				h := subs[i].Handler
				if err := c.Subscribe(ctx, subs[i].Topic, mqttkeep.QoS(subs[i].QoS), func(m *mqttkeep.Message) { h(m.Payload) }); err != nil {
					cancel(fmt.Errorf("subscribe %q: %w", subs[i].Topic, err))
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

func (m *mqttkeepClient) Publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	if qos == 0 {
		return m.c.Publish(ctx, topic, payload)
	}
	return m.c.Publish(ctx, topic, payload, m.qos1...)
}

// PublishAsync accepts the message and returns; wait reports its outcome
// (QoS 1: the PUBACK).
func (m *mqttkeepClient) PublishAsync(ctx context.Context, topic string, payload []byte, qos byte) (func(context.Context) error, error) {
	opts := m.qos1
	if qos == 0 {
		opts = nil
	}
	r, err := m.c.PublishAsync(ctx, topic, payload, opts...)
	if err != nil {
		return nil, err
	}
	return r.Wait, nil
}

// Dropped is Stats.InDroppedQoS0: QoS 0 messages dropped because
// WithMessageBuffer messages already waited for their handlers.
func (m *mqttkeepClient) Dropped() int64 { return int64(m.c.Stats().InDroppedQoS0) }

func (m *mqttkeepClient) Close() { closeWithTimeout(m.c.Close) }

// closeWithTimeout calls a Close(ctx) with closeTimeout.
func closeWithTimeout(close func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = close(ctx)
}
