package main

import (
	"context"
	"crypto/tls"
	"net/url"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// pahoMQTTContestant is paho.mqtt.golang v1.5.1 (MQTT 3.1.1) with its
// defaults (auto-reconnect on, ping timeout 10 s, ordered handlers) except
// the keep alive. FastRetry sets MaxReconnectInterval to 100 ms: the
// library's first reconnect delay (1 s, fixed) is capped by it, so every
// retry waits 100 ms. The subscription is made in the OnConnect handler,
// the library's documented way to have it after every reconnect.
type pahoMQTTContestant struct{}

func (pahoMQTTContestant) Name() string { return "paho.mqtt.golang" }

func (pahoMQTTContestant) Caps() Caps {
	return Caps{DeadLink: true, Reconnect: true, FastRetry: true, QoS1: true, Acks: true, Footprint: true, Durable: true, Async: true, Routing: true}
}

type pahoMQTTClient struct{ c mqtt.Client }

func (pahoMQTTContestant) Connect(ctx context.Context, cfg ClientConfig) (Client, error) {
	subscribed := make(chan error, 1)
	o := mqtt.NewClientOptions().
		AddBroker("tcp://" + cfg.Addr).
		SetClientID(cfg.ClientID).
		SetProtocolVersion(4).
		SetKeepAlive(cfg.KeepAlive)
	if cfg.FastRetry {
		o.SetMaxReconnectInterval(100 * time.Millisecond)
	}
	if cfg.OnLost != nil {
		o.SetConnectionLostHandler(func(_ mqtt.Client, err error) { cfg.OnLost(err) })
	}
	var attempts atomic.Int64
	if cfg.OnFailedAttempt != nil {
		o.SetConnectionAttemptHandler(func(_ *url.URL, tc *tls.Config) *tls.Config {
			attempts.Add(1)
			return tc
		})
	}
	o.SetOnConnectHandler(func(c mqtt.Client) {
		if cfg.OnFailedAttempt != nil {
			for range attempts.Swap(0) - 1 {
				cfg.OnFailedAttempt()
			}
		}
		if s := cfg.Sub; s != nil {
			// Application code: with CleanSession the subscription is
			// gone after a reconnect, so make it again.
			h := s.Handler
			t := c.Subscribe(s.Topic, s.QoS, func(_ mqtt.Client, m mqtt.Message) { h(m.Payload()) })
			t.WaitTimeout(10 * time.Second)
			select {
			case subscribed <- t.Error():
			default:
			}
		}
		if cfg.OnUp != nil {
			cfg.OnUp()
		}
	})
	c := mqtt.NewClient(o)
	for _, s := range cfg.Subs {
		// A route per filter with its own handler; SubscribeMultiple
		// below, with a nil callback, then adds none of its own.
		h := s.Handler
		c.AddRoute(s.Topic, func(_ mqtt.Client, m mqtt.Message) { h(m.Payload()) })
	}
	p := &pahoMQTTClient{c: c}
	if err := wait(ctx, c.Connect()); err != nil {
		p.Close()
		return nil, err
	}
	if cfg.Sub != nil {
		select {
		case err := <-subscribed:
			if err != nil {
				p.Close()
				return nil, err
			}
		case <-ctx.Done():
			p.Close()
			return nil, ctx.Err()
		}
	}
	for i := 0; i < len(cfg.Subs); i += subscribeBatch {
		batch := map[string]byte{}
		for _, s := range cfg.Subs[i:min(i+subscribeBatch, len(cfg.Subs))] {
			batch[s.Topic] = s.QoS
		}
		if err := wait(ctx, c.SubscribeMultiple(batch, nil)); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// wait waits for a token (QoS 0: written; QoS 1: PUBACK) or ctx.
func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pahoMQTTClient) Publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	return wait(ctx, p.c.Publish(topic, qos, false, payload))
}

// PublishAsync hands the message to the library and returns its token:
// Publish writes to an internal channel and returns at once.
func (p *pahoMQTTClient) PublishAsync(_ context.Context, topic string, payload []byte, qos byte) (func(context.Context) error, error) {
	t := p.c.Publish(topic, qos, false, payload)
	return func(ctx context.Context) error { return wait(ctx, t) }, nil
}

func (p *pahoMQTTClient) Close() {
	p.c.Disconnect(10)
}
