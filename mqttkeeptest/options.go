package mqttkeeptest

import (
	"crypto/tls"
	"fmt"

	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
)

// A BrokerOption configures a [Broker]; the With… functions make them. An
// option prints as the call that made it.
type BrokerOption interface {
	fmt.Stringer
	apply(*brokerConfig)
}

type brokerConfig struct {
	core        []embedbroker.Option
	noRecording bool
}

type brokerOption struct {
	name string
	fn   func(*brokerConfig)
}

// coreOption is an option of the broker core.
func coreOption(name string, o embedbroker.Option) *brokerOption {
	return &brokerOption{name, func(c *brokerConfig) { c.core = append(c.core, o) }}
}

func (o *brokerOption) String() string        { return o.name }
func (o *brokerOption) apply(c *brokerConfig) { o.fn(c) }

// WithTLS makes the broker's TCP listener speak TLS with cfg (which needs
// at least a certificate); [Broker.URL] then starts with mqtts://, or
// wss:// with [WithWebSocket].
func WithTLS(cfg *tls.Config) BrokerOption {
	return coreOption("WithTLS(…)", embedbroker.WithTLS(cfg))
}

// WithWebSocket makes the broker's TCP listener carry MQTT over WebSocket
// (subprotocol "mqtt", any path); [Broker.URL] then is ws://127.0.0.1:PORT/mqtt,
// or wss://… with [WithTLS].
func WithWebSocket() BrokerOption {
	return coreOption("WithWebSocket()", embedbroker.WithWebSocket())
}

// WithServerKeepAlive makes the broker override the client's keep alive:
// every successful CONNACK carries Server Keep Alive = seconds, and the
// broker enforces it, closing (without DISCONNECT) a connection that stays
// silent for 1.5 times that long. Zero is valid and turns keep alive off.
// Without this option the client's own keep alive is enforced the same way.
func WithServerKeepAlive(seconds uint16) BrokerOption {
	return coreOption(fmt.Sprintf("WithServerKeepAlive(%d)", seconds), embedbroker.WithServerKeepAlive(seconds))
}

// WithMaximumPacketSize makes every successful CONNACK announce Maximum
// Packet Size = n bytes, and the broker closes (without DISCONNECT) any
// connection that sends a larger packet. Zero, the default, means no limit;
// none is announced then.
func WithMaximumPacketSize(n uint32) BrokerOption {
	return coreOption(fmt.Sprintf("WithMaximumPacketSize(%d)", n), embedbroker.WithMaximumPacketSize(n))
}

// WithOutboundQueue sets how many packets the broker queues for writing to
// one client (8192 by default). A message for a client whose queue is full
// is dropped, whatever its QoS, and counted by [Broker.Dropped]; a small
// queue makes a slow subscriber lose messages quickly. Zero or less keeps
// the default.
func WithOutboundQueue(n int) BrokerOption {
	q := int32(min(max(n, 0), 1<<30))
	return coreOption(fmt.Sprintf("WithOutboundQueue(%d)", n), embedbroker.WithOutboundQueue(q))
}

// WithoutRecording makes the broker record nothing: [Broker.Connects],
// [Broker.ConnectTimes], [Broker.PingTimes], [Broker.Packets],
// [Broker.Payloads] and [Broker.SentTo] stay empty. Recording costs a lock
// and a copy of every payload, kept until the broker is garbage collected;
// load tests and benchmarks that move many messages go without.
func WithoutRecording() BrokerOption {
	return &brokerOption{"WithoutRecording()", func(c *brokerConfig) { c.noRecording = true }}
}

// WithDataDir makes the broker keep its state in the directory dir
// (created if missing) instead of in memory only, so that [Broker.Stop]
// and [Broker.Restart] behave like a broker with persistence, and a
// broker started on dir later (in this process or another) carries on:
// the sessions that outlive their connection (MQTT 5 Session Expiry
// Interval above 0), their subscriptions and the QoS 1/2 messages in
// flight to them or queued for them, and retained messages. What the
// broker acknowledged (a PUBACK or PUBREC, a SUBACK or UNSUBACK) is
// written and synced before the acknowledgement goes out, so it survives
// a kill of the process too. One broker at a time may use a directory;
// another one fails to start. Default: memory only.
func WithDataDir(dir string) BrokerOption {
	return coreOption(fmt.Sprintf("WithDataDir(%q)", dir), embedbroker.WithDataDir(dir))
}
