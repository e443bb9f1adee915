package mqttkeeptest

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
	mqtt "github.com/mqttkeep/mqttkeep/internal/mochi"
)

// ErrStopped is returned by Broker methods that need a running broker,
// after [Broker.Stop].
var ErrStopped = errors.New("mqttkeeptest: broker is stopped")

// ErrClosed is returned by Broker methods after [Broker.Close].
var ErrClosed = errors.New("mqttkeeptest: broker is closed")

// Broker is an embedded MQTT v5 broker (mochi-mqtt v2.7.9): sessions in
// memory (or in a directory, [WithDataDir]), every client allowed, every
// publish and subscription allowed,
// QoS 0, 1 and 2, retained messages, wills, shared subscriptions. See the
// package documentation for its known limits. Its methods are safe for
// concurrent use.
type Broker struct {
	b   *embedbroker.Broker
	rec *recorder
}

// StartBroker starts a broker listening on 127.0.0.1 with a free port (see
// [Broker.Addr] and [Broker.URL]). The caller must call [Broker.Close]; in
// a test, [NewBroker] does that.
func StartBroker(opts ...BrokerOption) (*Broker, error) {
	b, err := StartPipeBroker(opts...)
	if err != nil {
		return nil, err
	}
	if err := b.b.ListenTCP(); err != nil {
		b.Close()
		return nil, kitErr(err)
	}
	return b, nil
}

// StartPipeBroker starts a broker that opens no socket: clients connect
// through [Broker.Pipe]. It starts no goroutine that outlives
// [Broker.Close], so it can live inside a testing/synctest bubble; it must
// then be created and closed inside that bubble. The caller must call
// [Broker.Close]; in a test, [NewPipeBroker] does that.
func StartPipeBroker(opts ...BrokerOption) (*Broker, error) {
	var cfg brokerConfig
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	rec := newRecorder()
	if !cfg.noRecording {
		cfg.core = append(cfg.core, embedbroker.WithHooks(func() []mqtt.Hook { return []mqtt.Hook{rec.hook()} }))
	}
	eb, err := embedbroker.New(cfg.core...)
	if err != nil {
		return nil, kitErr(err)
	}
	return &Broker{b: eb, rec: rec}, nil
}

// Addr returns the broker's TCP address, "127.0.0.1:PORT", or "" for a
// pipe broker. It stays the same across Stop, Restart and Bounce.
func (b *Broker) Addr() string { return b.b.Addr() }

// URL returns the URL a client dials: mqtt://127.0.0.1:PORT, or with
// [WithTLS] mqtts://…, with [WithWebSocket] ws://127.0.0.1:PORT/mqtt, with
// both wss://…/mqtt; "" for a pipe broker.
func (b *Broker) URL() string { return b.b.URL() }

// Pipe returns the client end of a new in-memory connection to the broker
// (a [net.Pipe]: synchronous and unbuffered). Any
// broker serves pipes, a TCP one too. If the broker is stopped or closed,
// the connection comes back already closed by the broker: reads return
// io.EOF and writes fail.
//
// With mqttkeep, dial it with
//
//	mqttkeep.WithDialer(func(context.Context, *url.URL) (net.Conn, error) { return b.Pipe(), nil })
func (b *Broker) Pipe() net.Conn { return b.b.Pipe() }

// Stop simulates a broker crash: it closes the TCP listener and abruptly
// closes every connection, TCP and pipe (no DISCONNECT is sent; clients
// see EOF or a reset), then shuts the broker down. Dialling the port is
// refused until [Broker.Restart]. Stop does nothing if the broker is
// already stopped.
func (b *Broker) Stop() { b.b.Stop() }

// Restart simulates a broker restart without persistence: it stops the
// broker if it is running (as [Broker.Stop]) and starts a fresh one on the
// same port (retrying for up to 5 s while the port is busy). Every session,
// subscription (including [Broker.Subscribe]'s), retained message and
// in-flight message is lost, unless the broker has a [WithDataDir]: then
// the restarted broker has them back (but [Broker.Subscribe]'s). Options,
// the [Broker.Refuse] setting and everything recorded are kept.
func (b *Broker) Restart() error { return kitErr(b.b.Restart()) }

// Bounce simulates a broker restart with persistence: it closes the TCP
// listener and every connection at once (no DISCONNECT), stays
// unreachable for down (dials are refused), then listens again on the
// same port. Unlike Stop and Restart, the broker's state survives:
// sessions, subscriptions, retained messages and the QoS 1/2 messages
// queued for disconnected clients whose session has not expired. Bounce returns
// once the broker listens again; it is an error for a pipe broker.
func (b *Broker) Bounce(down time.Duration) error { return kitErr(b.b.Bounce(down)) }

// Close stops the broker for good (as [Broker.Stop]) and returns once all
// its goroutines have exited. It is idempotent. Every method but the
// recorded observations then fails with [ErrClosed].
func (b *Broker) Close() { b.b.Close() }

// Refuse makes the broker answer every following CONNECT with a CONNACK
// carrying the MQTT v5 reason code code and then close the connection, for
// example 0x86 bad user name or password, 0x87 not authorized, 0x88 server
// unavailable, 0x89 server busy, 0x8A banned, 0x9F connection rate
// exceeded. Refuse(0) accepts connections again. Established connections
// are not affected. Refuse panics if code is between 0x01 and 0x7F, which
// are not failure codes.
func (b *Broker) Refuse(code byte) {
	if code != 0 && code < 0x80 {
		panic(fmt.Sprintf("mqttkeeptest: Refuse(%#x): not a CONNACK failure code", code))
	}
	b.b.Refuse(code)
}

// Redirect makes the broker refuse every following CONNECT with a CONNACK
// carrying code (0x9C use another server, 0x9D server moved) and the
// Server Reference property set to serverReference (for example
// "127.0.0.1:1884"), as a broker sends a client elsewhere. Refuse(0)
// accepts connections again. Redirect panics if code is below 0x80.
func (b *Broker) Redirect(code byte, serverReference string) {
	if code < 0x80 {
		panic(fmt.Sprintf("mqttkeeptest: Redirect(%#x): not a CONNACK failure code", code))
	}
	b.b.Redirect(code, serverReference)
}

// Publish sends a message from the broker itself to every client
// subscribed to topic, as if a client had published it. The message is not
// retained; qos caps the QoS of the deliveries (each subscriber gets the
// lower of qos and its subscription's QoS).
func (b *Broker) Publish(topic string, payload []byte, qos byte) error {
	return kitErr(b.b.Publish(topic, payload, qos))
}

// Subscribe calls handler with the topic and payload of every message
// published to a topic that matches filter (wildcards allowed), by clients
// or by [Broker.Publish]. handler runs synchronously on the broker's
// goroutine that delivers the message, before the message reaches the
// subscribed clients' queues: it must not block. The payload is the
// broker's: copy it to keep it, never modify it. The subscription lasts
// until the broker is stopped or restarted.
func (b *Broker) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	if handler == nil {
		return errors.New("mqttkeeptest: Subscribe: nil handler")
	}
	return kitErr(b.b.Subscribe(filter, handler))
}

// DisconnectClient sends the connected client clientID a DISCONNECT with
// reasonCode (for example 0x8B server shutting down, 0x98 administrative
// action, 0x8E session taken over) and then closes its connection. It is
// an error if no such client is connected.
func (b *Broker) DisconnectClient(clientID string, reasonCode byte) error {
	return kitErr(b.b.DisconnectClient(clientID, reasonCode))
}

// DisconnectClientTo is [Broker.DisconnectClient] with a Server Reference
// property (for 0x9C use another server, 0x9D server moved); an empty
// serverReference is left out.
func (b *Broker) DisconnectClientTo(clientID string, reasonCode byte, serverReference string) error {
	return kitErr(b.b.DisconnectClientTo(clientID, reasonCode, serverReference))
}

// Dropped returns how many messages the broker dropped because a client's
// outbound queue was full (see [WithOutboundQueue]), across restarts.
func (b *Broker) Dropped() int64 { return b.b.Dropped() }

// kitErr gives the core's errors this package's sentinels and prefix.
func kitErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, embedbroker.ErrClosed):
		return ErrClosed
	case errors.Is(err, embedbroker.ErrStopped):
		return ErrStopped
	}
	return fmt.Errorf("mqttkeeptest: %w", err)
}
