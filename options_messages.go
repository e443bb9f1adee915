package mqttkeep

import (
	"math"
	"time"
)

// Defaults of the message path.
const (
	// DefaultQueueMessages is how many accepted messages may wait to be
	// written (while reconnecting, or behind the broker's window).
	DefaultQueueMessages = 10000
	// DefaultQueueBytes bounds the queued messages' topics, payloads and
	// properties.
	DefaultQueueBytes = 8 << 20
	// DefaultInflightMessages caps the QoS 1/2 messages written and not
	// yet acknowledged, below the broker's Receive Maximum.
	DefaultInflightMessages = 65535
	// DefaultInflightBytes caps the size of the QoS 1/2 packets written
	// and not yet acknowledged (kept for re-sending).
	DefaultInflightBytes = 16 << 20
	// DefaultInboundTopicAliases is the Topic Alias Maximum announced in
	// CONNECT: how many topic aliases the broker may use towards us. 0:
	// none, because mochi v2.7.9 breaks them on resumed sessions (see
	// WithInboundTopicAliases).
	DefaultInboundTopicAliases = 0
)

// subSpec is a subscription given in New.
type subSpec struct {
	filter  string
	qos     QoS
	handler MessageHandler
	opts    []SubscribeOption
}

// willConfig is the will message and its delay.
type willConfig struct {
	msg   Message
	delay time.Duration
}

// WithSubscription subscribes to filter from the first connection on, as
// [Client.Subscribe] would, so that its handler exists before the first
// CONNACK: a session resumed with [WithCleanStart](false) may deliver
// queued messages right after it. May be given more than once. Default:
// none.
func WithSubscription(filter string, qos QoS, handler MessageHandler, opts ...SubscribeOption) Option {
	return optionFunc(func(c *config) error {
		if _, err := newSubscription(filter, qos, handler, opts); err != nil {
			return optionError("WithSubscription", "%v", err)
		}
		c.subscriptions = append(c.subscriptions, subSpec{filter, qos, handler, append([]SubscribeOption(nil), opts...)})
		return nil
	})
}

// WithDefaultHandler sets the handler for messages that match none of the
// client's subscriptions — typically those of a session resumed from an
// earlier process, whose subscriptions the broker kept. Without it such
// messages are counted in [Stats.InUnsubscribed], logged at Warn and
// acknowledged (QoS 1/2) so that the broker does not re-send them on
// every reconnect. The handler runs on a lane of its own like a
// subscription's. Default: none.
func WithDefaultHandler(h MessageHandler) Option {
	return optionFunc(func(c *config) error {
		if h == nil {
			return optionError("WithDefaultHandler", "nil handler")
		}
		c.fallback = h
		return nil
	})
}

// WithManualAck makes the application acknowledge received QoS 1/2
// messages itself with [Message.Ack] instead of the client doing it when
// the handler returns: a message handed to a worker is then acknowledged
// when the work is done. Acknowledgements still leave in the order the
// messages arrived, as MQTT requires: one not acknowledged holds back the
// ones after it, and each holds a slot of [WithReceiveMaximum], so the
// broker stops sending once that many wait. After a reconnect the broker
// re-sends what was not acknowledged. Default: off.
func WithManualAck() Option {
	return optionFunc(func(c *config) error {
		c.manualAck = true
		return nil
	})
}

// WithReceiveMaximum sets the Receive Maximum sent in CONNECT: how many
// QoS 1 and 2 messages the broker may send before this client acknowledges
// them. It bounds the memory held by messages waiting for handlers: a
// broker that sends more is not read from until handlers free a slot
// (the one message over the window is kept and handled, and counted in
// [Stats.InOverReceiveMaximum]); if no slot frees within the write
// timeout, the connection is closed with DISCONNECT 0x93. 1 to 65,535.
// Default: [DefaultReceiveMaximum] (128).
func WithReceiveMaximum(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > math.MaxUint16 {
			return optionError("WithReceiveMaximum", "%d, want 1 to 65535", n)
		}
		c.receiveMaximum = uint16(n)
		return nil
	})
}

// WithQueueLimits bounds the queue of accepted messages not yet written:
// at most messages messages whose topics, payloads and properties add up
// to at most bytes. While reconnecting, Publish and PublishAsync return
// [ErrQueueFull] at once when a limit would be exceeded; while connected
// Publish waits for room instead (the broker's window is full) and
// PublishAsync returns ErrQueueFull. WithQueueLimits(0, 0) turns queueing
// off: Publish then returns [ErrNotConnected] while disconnected. Default:
// [DefaultQueueMessages] (10,000) and [DefaultQueueBytes] (8 MiB).
func WithQueueLimits(messages, bytes int) Option {
	return optionFunc(func(c *config) error {
		switch {
		case messages < 0 || bytes < 0:
			return optionError("WithQueueLimits", "negative limit (%d messages, %d bytes)", messages, bytes)
		case (messages == 0) != (bytes == 0):
			return optionError("WithQueueLimits", "both limits must be zero to turn queueing off, got %d messages, %d bytes", messages, bytes)
		}
		c.queueMessages, c.queueBytes = messages, bytes
		return nil
	})
}

// WithInflightLimits bounds the QoS 1/2 messages written and not yet
// acknowledged, which the client keeps to re-send after a reconnect: at
// most messages of them (the broker's Receive Maximum may allow fewer)
// whose packets add up to at most bytes (one larger message may still go
// alone). Further messages wait in the queue. A broker that stops
// acknowledging therefore holds at most this much memory. 1 to 65,535
// messages, bytes at least 1. Default: [DefaultInflightMessages] and
// [DefaultInflightBytes] (16 MiB).
func WithInflightLimits(messages, bytes int) Option {
	return optionFunc(func(c *config) error {
		if messages < 1 || messages > math.MaxUint16 || bytes < 1 {
			return optionError("WithInflightLimits", "%d messages, %d bytes: want 1 to 65535 messages and at least 1 byte", messages, bytes)
		}
		c.inflightMessages, c.inflightBytes = messages, bytes
		return nil
	})
}

// WithMessageBuffer sets how many received QoS 0 messages may wait for
// their handlers, across all subscriptions; beyond it they are dropped and
// counted in [Stats.InDroppedQoS0]. QoS 1/2 messages are never dropped:
// the broker holds them back (see [WithReceiveMaximum]). At least 1.
// Memory is used only while messages wait. Default:
// [DefaultMessageBuffer] (8,192).
func WithMessageBuffer(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return optionError("WithMessageBuffer", "%d, want at least 1", n)
		}
		c.messageBuffer = n
		return nil
	})
}

// WithWriteTimeout sets how long a write to the socket may go without
// writing a byte before the connection is declared dead
// ([ErrWriteTimeout]); every socket write has this deadline. Default: 0,
// meaning the ping timeout (see [WithPingTimeout]), or the connect timeout
// when keep alive is off.
func WithWriteTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return optionError("WithWriteTimeout", "negative duration %v", d)
		}
		c.writeTimeout = d
		return nil
	})
}

// WithInboundTopicAliases sets the Topic Alias Maximum announced in
// CONNECT: how many topic aliases the broker may use when it sends us
// messages, to save the topic's bytes on every message after the first. The client
// resolves them; an alias out of range or never set on the connection
// ends it with DISCONNECT 0x94. 0 to 65,535; 0 lets the broker use none.
// Beware mochi v2.7.9: with a resumed session it sends queued messages
// with aliases of an earlier connection (they end with their connection,
// [MQTT-3.3.2-7]); the client accepts the previous connection's aliases on
// re-sent (DUP) messages, but messages queued while it was away cannot be
// resolved and end every connection. Default: [DefaultInboundTopicAliases]
// (0).
func WithInboundTopicAliases(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 0 || n > math.MaxUint16 {
			return optionError("WithInboundTopicAliases", "%d, want 0 to 65535", n)
		}
		c.topicAliasMaximum = uint16(n)
		return nil
	})
}

// WithOutboundTopicAliases makes the client send topic aliases: within
// the broker's Topic Alias Maximum, each of the first topics published on
// a connection gets an alias, and later messages to it carry the two-byte
// alias instead of the topic. Aliases are set up again on every
// connection. Default: off.
func WithOutboundTopicAliases() Option {
	return optionFunc(func(c *config) error {
		c.topicAliases = true
		return nil
	})
}

// WithStore keeps what must survive the process in s (see [Store]): every
// accepted QoS 1/2 message until the broker completed it, its packet
// identifier and QoS 2 state, and the identifiers of inbound QoS 2
// messages handled and awaiting PUBREL. Publish and PublishAsync return
// only once the message is stored (for the file store: on disk, after
// fsync), and a later process that opens the same store, with the same
// client ID and WithCleanStart(false), sends what this one had not
// completed and resumes its QoS 2 exchanges with the broker's session:
// nothing accepted is lost when the process dies, and no QoS 2 message is
// delivered twice. The client reads the store in its first Connect and
// never closes it: close it after the client's Close returned. A store
// belongs to one client ID. Default: nothing kept beyond the process.
func WithStore(s Store) Option {
	return optionFunc(func(c *config) error {
		if s == nil {
			return optionError("WithStore", "nil store")
		}
		c.store = s
		return nil
	})
}

// WithStoreQoS0 makes queued QoS 0 messages go through the store too (see
// [WithStore]), so that those accepted while disconnected survive the
// process. A QoS 0 message is removed once written to a connection. Needs
// WithStore. Default: off (QoS 0 messages live in memory only).
func WithStoreQoS0() Option {
	return optionFunc(func(c *config) error {
		c.storeQoS0 = true
		return nil
	})
}
