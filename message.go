package mqttkeep

import (
	"fmt"
	"math"
	"time"

	"github.com/eclipse/paho.golang/packets"
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

	ContentType     string        // MIME type of the payload
	ResponseTopic   string        // topic for a response (request/response)
	CorrelationData []byte        // ties a response to its request
	MessageExpiry   time.Duration // whole seconds; 0: never expires
	PayloadUTF8     bool          // Payload Format Indicator: payload is UTF-8 text
	UserProperties  []UserProperty
}

// UserProperty is an MQTT v5 user property: a name/value pair that may
// appear more than once.
type UserProperty struct {
	Key, Value string
}

// MessageHandler receives the messages of one subscription. Handlers run on
// the client's single message goroutine, one message at a time, in the
// order received, never while a lock is held. Keep them short: while a
// handler runs, later messages wait (QoS 0 messages beyond the buffer are
// dropped and counted in [Stats.MessagesDropped]). The handler must not
// keep or modify m after it returns.
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

// validate checks what can be checked before anything is sent.
func (m *Message) validate() error {
	if err := validateTopicName(m.Topic); err != nil {
		return err
	}
	if m.QoS > 2 {
		return fmt.Errorf("%w: %d, want 0, 1 or 2", ErrInvalidQoS, m.QoS)
	}
	if m.MessageExpiry < 0 || m.MessageExpiry%time.Second != 0 || m.MessageExpiry > math.MaxUint32*time.Second {
		return fmt.Errorf("mqttkeep: message expiry %v: want whole seconds from 0 to 4294967295s", m.MessageExpiry)
	}
	if m.ResponseTopic != "" {
		if err := validateTopicName(m.ResponseTopic); err != nil {
			return fmt.Errorf("response topic: %w", err)
		}
	}
	return nil
}

// packet converts to paho's wire packet; properties are only allocated
// when some are set.
func (m *Message) packet() *packets.Publish {
	p := &packets.Publish{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain}
	if m.ContentType == "" && m.ResponseTopic == "" && m.CorrelationData == nil &&
		m.MessageExpiry == 0 && !m.PayloadUTF8 && len(m.UserProperties) == 0 {
		return p
	}
	props := &packets.Properties{
		ContentType:     m.ContentType,
		ResponseTopic:   m.ResponseTopic,
		CorrelationData: m.CorrelationData,
	}
	if m.MessageExpiry > 0 {
		e := uint32(m.MessageExpiry / time.Second)
		props.MessageExpiry = &e
	}
	if m.PayloadUTF8 {
		one := byte(1)
		props.PayloadFormat = &one
	}
	for _, u := range m.UserProperties {
		props.User = append(props.User, packets.User{Key: u.Key, Value: u.Value})
	}
	p.Properties = props
	return p
}

// publishSize is the size of pb on the wire (Buffers counts the packet
// identifier of a QoS 1/2 PUBLISH whether or not it is assigned yet).
func publishSize(pb *packets.Publish) int {
	n := 0
	for _, b := range pb.Buffers() {
		n += len(b)
	}
	vbi := 1
	for r := n; r > 127; r /= 128 {
		vbi++
	}
	return 1 + vbi + n
}

// messageFromPacket converts a received PUBLISH.
func messageFromPacket(p *packets.Publish) *Message {
	m := &Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain, Duplicate: p.Duplicate}
	if pr := p.Properties; pr != nil {
		m.ContentType = pr.ContentType
		m.ResponseTopic = pr.ResponseTopic
		m.CorrelationData = pr.CorrelationData
		if pr.MessageExpiry != nil {
			m.MessageExpiry = time.Duration(*pr.MessageExpiry) * time.Second
		}
		m.PayloadUTF8 = pr.PayloadFormat != nil && *pr.PayloadFormat == 1
		for _, u := range pr.User {
			m.UserProperties = append(m.UserProperties, UserProperty{u.Key, u.Value})
		}
	}
	return m
}
