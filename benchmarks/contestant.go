package main

import (
	"context"
	"time"
)

// Contestant is one MQTT client library behind a common, minimal surface.
// Each lives in its own adapter_*.go file.
type Contestant interface {
	// Name is the column title.
	Name() string
	// Caps says which scenarios apply.
	Caps() Caps
	// Connect returns a connected client. When cfg.Sub is set, the
	// subscription is in place (acknowledged) before Connect returns.
	Connect(ctx context.Context, cfg ClientConfig) (Client, error)
}

// Caps lists what a contestant can take part in.
type Caps struct {
	DeadLink  bool // reports a silently dead link by itself
	Reconnect bool // reconnects by itself
	FastRetry bool // has a setting for the delay between reconnect attempts
	QoS1      bool // publishes QoS 1
	Footprint bool // is a client whose idle footprint means something
	Async     bool // its Client is an AsyncPublisher
	Routing   bool // takes many subscriptions (ClientConfig.Subs)
	SubIDs    bool // sends Subscription Identifiers when the broker supports them
	Durable   bool // has an on-disk outbound path (see scen_durable.go)
	Acks      bool // subscribes with QoS 1 and acknowledges what it receives
	// StorePublish: its blocking Publish goes through that path too.
	StorePublish bool
}

// ClientConfig is what every adapter understands.
type ClientConfig struct {
	Addr      string        // broker "127.0.0.1:PORT"
	ClientID  string        // unique per client
	KeepAlive time.Duration // whole seconds
	// FastRetry asks for a 100 ms delay between reconnect attempts (only
	// for contestants whose Caps().FastRetry is set).
	FastRetry bool
	// OnLost is called when the library reports the connection lost (at
	// least once per loss; the scenario keeps the first call).
	OnLost func(error)
	// OnUp is called each time the library reports a (re)connection.
	OnUp func()
	// OnFailedAttempt is called once per connection attempt that did not
	// end connected, as far as the library tells: mqttkeep's
	// ConnectEvent.Attempt − 1 at each connect, autopaho's OnConnectError,
	// paho.mqtt.golang's ConnectionAttemptHandler calls before each
	// connect, less one.
	OnFailedAttempt func()
	// Sub, if set, is subscribed before Connect returns. Peers that do not
	// restore subscriptions re-subscribe in their on-connect callback
	// (application code); mqttkeep restores them itself.
	Sub *Subscription
	// Subs, if set, are subscribed (all acknowledged) before Connect
	// returns, each with its own handler, in as few SUBSCRIBE packets as
	// the library's public API allows (contestants with Caps().Routing).
	Subs []Subscription
}

// Subscription is one topic filter and its handler.
type Subscription struct {
	Topic   string
	QoS     byte
	Handler func(payload []byte)
}

// Client is a connected client.
type Client interface {
	// Publish returns when the library says it is done with the message:
	// written (QoS 0) or acknowledged (QoS 1).
	Publish(ctx context.Context, topic string, payload []byte, qos byte) error
	// Close disconnects and releases the client; it returns within
	// closeTimeout.
	Close()
}

// AsyncPublisher is a Client that can accept a message and report its
// outcome later, so that one goroutine keeps several in flight.
type AsyncPublisher interface {
	// PublishAsync returns once the library accepted the message; wait
	// returns when it is done with it (QoS 1: acknowledged).
	PublishAsync(ctx context.Context, topic string, payload []byte, qos byte) (wait func(context.Context) error, err error)
}

// dropCounter is a Client that counts the QoS 0 messages it dropped
// because its handlers were behind.
type dropCounter interface{ Dropped() int64 }

// closeTimeout bounds every Close.
const closeTimeout = 5 * time.Second

// closeBounded closes cl, waiting at most closeTimeout; it reports whether
// Close returned in time (if not, it goes on in the background).
func closeBounded(cl Client) bool {
	if cl == nil {
		return true
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl.Close()
	}()
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// contestants in column order.
func contestants() []Contestant {
	return []Contestant{mqttkeepContestant{}, pahoContestant{}, autopahoContestant{}, pahoMQTTContestant{}, rawContestant{}}
}
