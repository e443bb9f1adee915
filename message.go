package mqttkeep

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// Message is what [Client.PublishMessage] sends and a [MessageHandler]
// receives; zero properties are not sent, and (received) fields are ignored.
type Message struct {
	Topic   string
	Payload []byte
	QoS     QoS // 0, 1 or 2
	Retain  bool

	// Duplicate (received): the broker re-sent it (DUP).
	Duplicate bool
	// PacketID (received): the broker's packet identifier; 0 for QoS 0.
	PacketID uint16

	ContentType     string        // MIME type of the payload
	ResponseTopic   string        // topic for a response (request/response)
	CorrelationData []byte        // ties a response to its request
	MessageExpiry   time.Duration // whole seconds; 0: never expires
	PayloadUTF8     bool          // Payload Format Indicator: payload is UTF-8 text
	UserProperties  []UserProperty

	// SubscriptionFilter (received): the subscription's filter ("": default handler).
	SubscriptionFilter string
	// SubscriptionIDs (received): the Subscription Identifiers the broker sent.
	SubscriptionIDs []int

	delivery *delivery // the handler call that got it, for Ack
}

// UserProperty is an MQTT v5 user property (a name may repeat).
type UserProperty struct {
	Key, Value string
}

// MessageHandler gets one subscription's messages (see Delivery); m may be
// kept, but Payload and CorrelationData are shared: [Message.Clone] before
// changing them.
type MessageHandler func(m *Message)

// PublishOption sets a field of the message sent by [Client.Publish].
type PublishOption func(*Message)

// WithQoS sets the QoS of a published message: 0 (the default), 1 or 2.
func WithQoS(qos QoS) PublishOption { return func(m *Message) { m.QoS = qos } }

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

// WithPayloadUTF8 marks the payload as UTF-8 (Payload Format Indicator).
func WithPayloadUTF8() PublishOption { return func(m *Message) { m.PayloadUTF8 = true } }

// validate checks what can be checked before anything is sent, and
// returns the message as a PUBLISH with its size on the wire.
func (m *Message) toPublish() (wire.Publish, int, error) {
	p := wire.Publish{Topic: m.Topic, Payload: m.Payload, QoS: byte(m.QoS), Retain: m.Retain}
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
	m.Topic, m.Payload, m.QoS, m.Retain, m.Duplicate = p.Topic, p.Payload, QoS(p.QoS), p.Retain, p.Dup
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

// Ack acknowledges a QoS 1/2 message under [WithManualAck], once, from any
// goroutine; the PUBACK or PUBREC leaves after every earlier message's. After
// Close began or a final refusal, Ack returns [ErrClosed] ([ErrNotConnected]):
// the broker re-sends the message to a resumed session.
func (m *Message) Ack() error {
	if d := m.delivery; d != nil && d.c.cfg.manualAck {
		return d.ack()
	}
	return nil
}

// Clone returns a deep copy of m; its Ack acknowledges the same delivery.
func (m *Message) Clone() *Message {
	c := *m
	c.Payload = slices.Clone(m.Payload)
	c.CorrelationData = slices.Clone(m.CorrelationData)
	c.UserProperties = slices.Clone(m.UserProperties)
	c.SubscriptionIDs = slices.Clone(m.SubscriptionIDs)
	return &c
}
