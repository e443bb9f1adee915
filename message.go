package mqttkeep

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// Message is an application message: what [Client.PublishMessage] sends
// and what a [MessageHandler] receives. The MQTT v5 publish properties are
// plain fields; zero values mean "not set".
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte // 0, 1 or 2
	Retain  bool

	// Duplicate is set on received messages that the broker re-sent
	// (QoS 1/2 after a reconnect). Ignored when publishing.
	Duplicate bool
	// PacketID is, on a received QoS 1/2 message, the packet identifier
	// the broker gave it (mosquitto_sub's %m); 0 for QoS 0. Ignored when
	// publishing: the client picks its own.
	PacketID uint16

	ContentType     string        // MIME type of the payload
	ResponseTopic   string        // topic for a response (request/response)
	CorrelationData []byte        // ties a response to its request
	MessageExpiry   time.Duration // whole seconds; 0: never expires
	PayloadUTF8     bool          // Payload Format Indicator: payload is UTF-8 text
	UserProperties  []UserProperty

	// SubscriptionFilter is, on a received message, the filter of the
	// subscription whose handler got it (empty for the fallback handler).
	// Ignored when publishing.
	SubscriptionFilter string
	// SubscriptionIDs are, on a received message, the Subscription
	// Identifiers the broker sent with it: the client's own, which it
	// uses to route the message. Ignored when publishing.
	SubscriptionIDs []int

	delivery *delivery // the handler call that got it, for Ack
}

// UserProperty is an MQTT v5 user property: a name/value pair that may
// appear more than once.
type UserProperty struct {
	Key, Value string
}

// MessageHandler receives the messages of one subscription. Each
// subscription has its own delivery lane: its handler runs on a goroutine
// of its own, one message at a time in the order received (or up to n at
// once with [WithConcurrency]), never while a lock is held, and a slow
// handler delays only its own subscription. A QoS 1/2 message is
// acknowledged when its handler returns (or when [Message.Ack] is called,
// with [WithManualAck]); while handlers are behind, the broker holds back
// further QoS 1/2 messages (see [WithReceiveMaximum]) and QoS 0 messages
// beyond [WithMessageBuffer] are dropped and counted in
// [Stats.MessagesDropped]. A handler that panics is recovered, logged and
// counted in [Stats.HandlerPanics], and its message acknowledged.
//
// m and its slices stay valid after the handler returns: the client never
// reuses them, so a handler may keep m (and [Message.Ack] it later, with
// WithManualAck) without copying. m's Payload and CorrelationData are one
// buffer shared by every subscription the message was delivered to: use
// [Message.Clone] before modifying them.
type MessageHandler func(m *Message)

// PublishOption sets a field of the message sent by [Client.Publish].
type PublishOption func(*Message)

// WithQoS sets the QoS of a published message: 0 (the default), 1 or 2.
func WithQoS(qos byte) PublishOption { return func(m *Message) { m.QoS = qos } }

// WithRetain asks the broker to retain the message for future subscribers.
func WithRetain() PublishOption { return func(m *Message) { m.Retain = true } }

// WithContentType sets the Content Type property.
func WithContentType(contentType string) PublishOption {
	return func(m *Message) { m.ContentType = contentType }
}

// WithResponseTopic sets the Response Topic property.
func WithResponseTopic(topic string) PublishOption {
	return func(m *Message) { m.ResponseTopic = topic }
}

// WithCorrelationData sets the Correlation Data property.
func WithCorrelationData(data []byte) PublishOption {
	return func(m *Message) { m.CorrelationData = data }
}

// WithMessageExpiry sets the Message Expiry Interval (whole seconds).
func WithMessageExpiry(d time.Duration) PublishOption {
	return func(m *Message) { m.MessageExpiry = d }
}

// WithUserProperty adds a user property; it may be given more than once.
func WithUserProperty(key, value string) PublishOption {
	return func(m *Message) { m.UserProperties = append(m.UserProperties, UserProperty{key, value}) }
}

// WithPayloadUTF8 marks the payload as UTF-8 text (Payload Format
// Indicator 1).
func WithPayloadUTF8() PublishOption { return func(m *Message) { m.PayloadUTF8 = true } }

// validate checks what can be checked before anything is sent, and
// returns the message as a PUBLISH with its size on the wire.
func (m *Message) toPublish() (wire.Publish, int, error) {
	p := wire.Publish{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain}
	if err := validateTopicName(m.Topic); err != nil {
		return p, 0, err
	}
	if m.QoS > 2 {
		return p, 0, fmt.Errorf("%w: %d, want 0, 1 or 2", ErrInvalidQoS, m.QoS)
	}
	if m.MessageExpiry < 0 || m.MessageExpiry%time.Second != 0 || m.MessageExpiry > math.MaxUint32*time.Second {
		return p, 0, fmt.Errorf("%w: message expiry %v: want whole seconds from 0 to 4294967295s", ErrInvalidArgument, m.MessageExpiry)
	}
	if m.ResponseTopic != "" {
		if err := validateTopicName(m.ResponseTopic); err != nil {
			return p, 0, fmt.Errorf("response topic: %w", err)
		}
	}
	setPublishProps(&p.Props, m)
	size, err := wire.PublishSize(wire.V5, &p)
	switch {
	case errors.Is(err, wire.ErrTooLarge):
		return p, 0, fmt.Errorf("%w: %w", ErrPacketTooLarge, err)
	case err != nil:
		return p, 0, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return p, size, nil
}

// setPublishProps sets the PUBLISH properties of m that are not zero.
func setPublishProps(p *wire.Props, m *Message) {
	if m.PayloadUTF8 {
		p.Mark(wire.PropPayloadFormat)
		p.PayloadFormat = 1
	}
	if m.MessageExpiry > 0 {
		p.Mark(wire.PropMessageExpiry)
		p.MessageExpiry = uint32(m.MessageExpiry / time.Second)
	}
	if m.ContentType != "" {
		p.Mark(wire.PropContentType)
		p.ContentType = m.ContentType
	}
	if m.ResponseTopic != "" {
		p.Mark(wire.PropResponseTopic)
		p.ResponseTopic = m.ResponseTopic
	}
	if m.CorrelationData != nil {
		p.Mark(wire.PropCorrelationData)
		p.CorrelationData = m.CorrelationData
	}
	if len(m.UserProperties) > 0 {
		p.Mark(wire.PropUser)
		p.User = make([]wire.UserProperty, len(m.UserProperties))
		for i, u := range m.UserProperties {
			p.User[i] = wire.UserProperty(u)
		}
	}
}

// messageFromPublish fills m from a received PUBLISH. Payload and
// CorrelationData alias the packet's buffer, which nothing reuses.
func messageFromPublish(m *Message, p *wire.Publish) {
	m.Topic, m.Payload, m.QoS, m.Retain, m.Duplicate = p.Topic, p.Payload, p.QoS, p.Retain, p.Dup
	if p.QoS > 0 {
		m.PacketID = p.PacketID
	}
	pr := &p.Props
	m.ContentType = pr.ContentType
	m.ResponseTopic = pr.ResponseTopic
	m.CorrelationData = pr.CorrelationData
	if pr.Has(wire.PropMessageExpiry) {
		m.MessageExpiry = time.Duration(pr.MessageExpiry) * time.Second
	}
	m.PayloadUTF8 = pr.PayloadFormat == 1
	if len(pr.User) > 0 {
		m.UserProperties = make([]UserProperty, len(pr.User))
		for i, u := range pr.User {
			m.UserProperties[i] = UserProperty(u)
		}
	}
	m.SubscriptionIDs = pr.SubscriptionIDs
}

// messageSize is what a message counts against the queue's byte limit:
// its topic, payload and properties.
func messageSize(p *wire.Publish) int {
	return len(p.Topic) + len(p.Payload) + p.Props.Len()
}

// Ack acknowledges a received QoS 1/2 message when the client runs with
// [WithManualAck]: the broker gets its PUBACK (or PUBREC) once every
// message received before it was acknowledged too, as MQTT requires. Ack
// may be called from any goroutine, more than once (later calls do
// nothing), and after the handler returned. A message not yet
// acknowledged holds one slot of the client's Receive Maximum; after a
// reconnect the broker sends it again. Without WithManualAck, and for QoS
// 0, Ack does nothing: the message is acknowledged when its handler
// returns.
func (m *Message) Ack() {
	if m.delivery != nil {
		m.delivery.ack()
	}
}

// Clone returns a deep copy of m that shares no buffer with it, for a
// handler that modifies the message. The copy's Ack acknowledges the same
// delivery.
func (m *Message) Clone() *Message {
	c := *m
	c.Payload = slices.Clone(m.Payload)
	c.CorrelationData = slices.Clone(m.CorrelationData)
	c.UserProperties = slices.Clone(m.UserProperties)
	c.SubscriptionIDs = slices.Clone(m.SubscriptionIDs)
	return &c
}
