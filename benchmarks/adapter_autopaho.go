package main

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// autopahoContestant is paho.golang's autopaho v0.23.0 with its defaults
// (constant 10 s reconnect backoff, DefaultPinger) except the keep alive;
// FastRetry sets ReconnectBackoff to a constant 100 ms. The subscription is
// made in OnConnectionUp, as autopaho's own examples do, so that it is
// made again after every reconnect.
type autopahoContestant struct{}

func (autopahoContestant) Name() string { return "autopaho" }

func (autopahoContestant) Caps() Caps {
	return Caps{DeadLink: true, Reconnect: true, FastRetry: true, QoS1: true, Acks: true, Footprint: true, Durable: true}
}

type autopahoClient struct{ cm *autopaho.ConnectionManager }

func (autopahoContestant) Connect(ctx context.Context, cfg ClientConfig) (Client, error) {
	u, err := url.Parse("mqtt://" + cfg.Addr)
	if err != nil {
		return nil, err
	}
	subscribed := make(chan error, 1)
	ac := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     uint16(cfg.KeepAlive.Seconds()),
		CleanStartOnInitialConnection: true,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			if s := cfg.Sub; s != nil {
				// Application code: autopaho does not restore subscriptions.
				_, err := cm.Subscribe(context.Background(), &paho.Subscribe{
					Subscriptions: []paho.SubscribeOptions{{Topic: s.Topic, QoS: s.QoS}},
				})
				select {
				case subscribed <- err:
				default:
				}
			}
			if cfg.OnUp != nil {
				cfg.OnUp()
			}
		},
		ClientConfig: paho.ClientConfig{ClientID: cfg.ClientID},
	}
	if cfg.OnFailedAttempt != nil {
		ac.OnConnectError = func(error) { cfg.OnFailedAttempt() }
	}
	if cfg.FastRetry {
		ac.ReconnectBackoff = autopaho.NewConstantBackoff(100 * time.Millisecond)
	}
	if cfg.OnLost != nil {
		// Whichever of the two comes first reports the loss.
		ac.OnConnectionDown = func() bool { cfg.OnLost(errors.New("OnConnectionDown")); return true }
		ac.ClientConfig.OnClientError = cfg.OnLost
		ac.ClientConfig.OnServerDisconnect = func(*paho.Disconnect) { cfg.OnLost(errors.New("server DISCONNECT")) }
	}
	if s := cfg.Sub; s != nil {
		topic, h := s.Topic, s.Handler
		ac.ClientConfig.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				if pr.Packet.Topic == topic {
					h(pr.Packet.Payload)
				}
				return true, nil
			},
		}
	}
	cm, err := autopaho.NewConnection(context.Background(), ac)
	if err != nil {
		return nil, err
	}
	c := &autopahoClient{cm: cm}
	if err := cm.AwaitConnection(ctx); err != nil {
		c.Close()
		return nil, err
	}
	if cfg.Sub != nil {
		select {
		case err := <-subscribed:
			if err != nil {
				c.Close()
				return nil, err
			}
		case <-ctx.Done():
			c.Close()
			return nil, ctx.Err()
		}
	}
	return c, nil
}

func (a *autopahoClient) Publish(ctx context.Context, topic string, payload []byte, qos byte) error {
	_, err := a.cm.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: payload})
	return err
}

func (a *autopahoClient) Close() { closeWithTimeout(a.cm.Disconnect) }
