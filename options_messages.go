package mqttkeep

import (
	"math"
	"time"
)

// Defaults of the message path, each named after its option.
const (
	DefaultQueueMessages       = 10000    // WithQueueLimits
	DefaultQueueBytes          = 8 << 20  // WithQueueLimits
	DefaultInflightMessages    = 65535    // WithInflightLimits
	DefaultInflightBytes       = 16 << 20 // WithInflightLimits
	DefaultInboundTopicAliases = 0        // WithInboundTopicAliases
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

// WithSubscription is [Client.Subscribe] before the first CONNACK; default
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

// WithDefaultHandler handles messages matching no subscription. Default: none.
func WithDefaultHandler(h MessageHandler) Option {
	return optionFunc(func(c *config) error {
		if h == nil {
			return optionError("WithDefaultHandler", "nil handler")
		}
		c.fallback = h
		return nil
	})
}

// WithManualAck: [Message.Ack] acknowledges QoS 1/2 messages. Default: off.
func WithManualAck() Option {
	return optionFunc(func(c *config) error {
		c.manualAck = true
		return nil
	})
}

// WithReceiveMaximum sets how many unacknowledged QoS 1/2 the broker may send,
// 1 to 65,535. Default: [DefaultReceiveMaximum] (128).
func WithReceiveMaximum(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > math.MaxUint16 {
			return optionError("WithReceiveMaximum", "%d, want 1 to 65535", n)
		}
		c.receiveMaximum = uint16(n)
		return nil
	})
}

// WithQueueLimits bounds the accepted messages not yet written, in messages and
// bytes (topic, payload, properties): both > 0, or both 0 for no queue
// ([ErrNotConnected] offline). Full: [ErrQueueFull], but a connected Publish
// waits. Default: [DefaultQueueMessages] (10,000), [DefaultQueueBytes] (8 MiB).
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

// WithInflightLimits bounds the QoS 1/2 messages written, unacknowledged: 1 to
// 65,535, and ≥ 1 byte of packets (one larger may go alone); more wait queued.
// Default: [DefaultInflightMessages], [DefaultInflightBytes] (16 MiB).
func WithInflightLimits(messages, bytes int) Option {
	return optionFunc(func(c *config) error {
		if messages < 1 || messages > math.MaxUint16 || bytes < 1 {
			return optionError("WithInflightLimits", "%d messages, %d bytes: want 1 to 65535 messages and at least 1 byte", messages, bytes)
		}
		c.inflightMessages, c.inflightBytes = messages, bytes
		return nil
	})
}

// WithMessageBuffer sets how many QoS 0 messages may wait for handlers, ≥ 1.
// Default: [DefaultMessageBuffer] (8,192).
func WithMessageBuffer(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return optionError("WithMessageBuffer", "%d, want at least 1", n)
		}
		c.messageBuffer = n
		return nil
	})
}

// WithWriteTimeout bounds a stalled socket write ([ErrWriteTimeout]). Default:
// 0, T (or the connect timeout if K = 0).
func WithWriteTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return optionError("WithWriteTimeout", "negative duration %v", d)
		}
		c.writeTimeout = d
		return nil
	})
}

// WithInboundTopicAliases sets how many topic aliases the broker may use, ≤
// 65,535. Default: 0: mochi v2.7.9 breaks them on resumed sessions.
func WithInboundTopicAliases(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 0 || n > math.MaxUint16 {
			return optionError("WithInboundTopicAliases", "%d, want 0 to 65535", n)
		}
		c.topicAliasMaximum = uint16(n)
		return nil
	})
}

// WithOutboundTopicAliases has the client send topic aliases. Default: off.
func WithOutboundTopicAliases() Option {
	return optionFunc(func(c *config) error {
		c.topicAliases = true
		return nil
	})
}

// WithStore keeps the session in s (see the package doc's Durability); close s
// after [Client.Close]. One client ID per store. Default: [NewMemoryStore].
func WithStore(s Store) Option {
	return optionFunc(func(c *config) error {
		if s == nil {
			return optionError("WithStore", "nil store")
		}
		c.store = s
		return nil
	})
}

// WithStoreQoS0 stores queued QoS 0 too (needs [WithStore]). Default: off.
func WithStoreQoS0() Option {
	return optionFunc(func(c *config) error {
		c.storeQoS0 = true
		return nil
	})
}
