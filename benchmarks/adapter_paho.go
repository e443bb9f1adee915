package main

import (
	"context"
	"errors"
	"net"

	"github.com/eclipse/paho.golang/paho"
)

// pahoContestant is raw paho.golang v0.23.0: one paho.Client on one TCP
// connection (NewClient + Connect), its DefaultPinger, no reconnect.
type pahoContestant struct{}

func (pahoContestant) Name() string { return "paho.golang" }

func (pahoContestant) Caps() Caps {
	return Caps{DeadLink: true, QoS1: true, Acks: true, Footprint: true, Routing: true}
}

type pahoClient struct{ c *paho.Client }

func (pahoContestant) Connect(ctx context.Context, cfg ClientConfig) (Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	pc := paho.ClientConfig{
		ClientID: cfg.ClientID,
		// A *net.TCPConn is safe for concurrent writes, and paho writes
		// each packet with one net.Buffers.WriteTo (writev).
		Conn: conn,
	}
	if cfg.OnLost != nil {
		pc.OnClientError = cfg.OnLost
		pc.OnServerDisconnect = func(d *paho.Disconnect) { cfg.OnLost(errors.New("server DISCONNECT")) }
	}
	if len(cfg.Subs) > 0 {
		// paho's own router: a handler per filter, matched by topic.
		router := paho.NewStandardRouter()
		for _, s := range cfg.Subs {
			h := s.Handler
			router.RegisterHandler(s.Topic, func(p *paho.Publish) { h(p.Payload) })
		}
		pc.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				router.Route(pr.Packet.Packet())
				return true, nil
			},
		}
	}
	if s := cfg.Sub; s != nil {
		topic, h := s.Topic, s.Handler
		pc.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				if pr.Packet.Topic == topic {
					h(pr.Packet.Payload)
				}
				return true, nil
			},
		}
	}
	c := paho.NewClient(pc)
	if _, err := c.Connect(ctx, &paho.Connect{
		ClientID:   cfg.ClientID,
		KeepAlive:  uint16(cfg.KeepAlive.Seconds()),
		CleanStart: true,
	}); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if cfg.OnUp != nil {
		cfg.OnUp()
	}
	if s := cfg.Sub; s != nil {
		if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: s.Topic, QoS: s.QoS}}}); err != nil {
			_ = c.Disconnect(&paho.Disconnect{})
			return nil, err
		}
	}
	for i := 0; i < len(cfg.Subs); i += subscribeBatch {
		var opts []paho.SubscribeOptions
		for _, s := range cfg.Subs[i:min(i+subscribeBatch, len(cfg.Subs))] {
			opts = append(opts, paho.SubscribeOptions{Topic: s.Topic, QoS: s.QoS})
		}
		if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts}); err != nil {
			_ = c.Disconnect(&paho.Disconnect{})
			return nil, err
		}
	}
	return &pahoClient{c: c}, nil
}

// subscribeBatch is how many filters the peers put in one SUBSCRIBE.
const subscribeBatch = 100

func (p *pahoClient) Publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	_, err := p.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: payload})
	return err
}

func (p *pahoClient) Close() {
	_ = p.c.Disconnect(&paho.Disconnect{ReasonCode: 0}) // closes and waits for paho's goroutines
}
