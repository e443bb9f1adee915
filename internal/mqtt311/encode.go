package mqtt311

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrInvalid is matched by every error about a packet that cannot be
// encoded: a string over 65,535 bytes, a QoS over 2, a packet identifier
// of 0 where one is needed, a packet over 268,435,455 bytes.
var ErrInvalid = errors.New("mqtt311: cannot encode")

// maxRemaining is the largest remaining length MQTT can express.
const maxRemaining = 268_435_455

// Connect is the content of a CONNECT packet (MQTT 3.1.1, section 3.1).
// The zero value asks for a session kept by the broker (Clean Session 0)
// with an empty client identifier, which a 3.1.1 broker refuses with
// return code 2: set ClientID, or CleanSession.
type Connect struct {
	ClientID     string
	CleanSession bool
	KeepAlive    uint16 // seconds; 0: no keep alive

	// Username is sent when non-empty, Password when non-nil (3.1.1
	// allows a password only with a user name).
	Username string
	Password []byte

	// The Will is sent when WillTopic is non-empty.
	WillTopic   string
	WillPayload []byte
	WillQoS     byte
	WillRetain  bool
}

// Bytes returns the CONNECT packet: protocol name "MQTT", level 4.
func (c Connect) Bytes() ([]byte, error) {
	if c.Password != nil && c.Username == "" {
		return nil, fmt.Errorf("%w: CONNECT with a password but no user name", ErrInvalid)
	}
	if c.WillQoS > 2 {
		return nil, fmt.Errorf("%w: Will QoS %d", ErrInvalid, c.WillQoS)
	}
	var flags byte
	if c.CleanSession {
		flags |= 0x02
	}
	var e encoder
	e.str("MQTT")
	e.byte(4)
	flagsAt := len(e.b)
	e.byte(0)
	e.u16(c.KeepAlive)
	e.str(c.ClientID)
	if c.WillTopic != "" {
		flags |= 0x04 | c.WillQoS<<3
		if c.WillRetain {
			flags |= 0x20
		}
		e.str(c.WillTopic)
		e.bin(c.WillPayload)
	}
	if c.Username != "" {
		flags |= 0x80
		e.str(c.Username)
	}
	if c.Password != nil {
		flags |= 0x40
		e.bin(c.Password)
	}
	e.b[flagsAt] = flags
	return e.packet(byte(CONNECT)<<4, "CONNECT")
}

// Publish returns a PUBLISH packet. packetID must be non-zero for QoS 1
// and 2 and is not sent for QoS 0.
func Publish(topic string, payload []byte, qos byte, packetID uint16, retain, dup bool) ([]byte, error) {
	if qos > 2 {
		return nil, fmt.Errorf("%w: PUBLISH with QoS %d", ErrInvalid, qos)
	}
	if qos > 0 && packetID == 0 {
		return nil, fmt.Errorf("%w: QoS %d PUBLISH with packet identifier 0", ErrInvalid, qos)
	}
	first := byte(PUBLISH)<<4 | qos<<1
	if retain {
		first |= 1
	}
	if dup {
		first |= 8
	}
	var e encoder
	e.str(topic)
	if qos > 0 {
		e.u16(packetID)
	}
	e.b = append(e.b, payload...)
	return e.packet(first, "PUBLISH")
}

// Filter is one topic filter of a SUBSCRIBE with its requested QoS.
type Filter struct {
	Topic string
	QoS   byte
}

// Subscribe returns a SUBSCRIBE packet with one or more filters.
func Subscribe(packetID uint16, filters ...Filter) ([]byte, error) {
	if packetID == 0 || len(filters) == 0 {
		return nil, fmt.Errorf("%w: SUBSCRIBE needs a packet identifier and a filter", ErrInvalid)
	}
	var e encoder
	e.u16(packetID)
	for _, f := range filters {
		if f.QoS > 2 {
			return nil, fmt.Errorf("%w: SUBSCRIBE %q with QoS %d", ErrInvalid, f.Topic, f.QoS)
		}
		e.str(f.Topic)
		e.byte(f.QoS)
	}
	return e.packet(byte(SUBSCRIBE)<<4|0x02, "SUBSCRIBE")
}

// Unsubscribe returns an UNSUBSCRIBE packet.
func Unsubscribe(packetID uint16, topics ...string) ([]byte, error) {
	if packetID == 0 || len(topics) == 0 {
		return nil, fmt.Errorf("%w: UNSUBSCRIBE needs a packet identifier and a filter", ErrInvalid)
	}
	var e encoder
	e.u16(packetID)
	for _, t := range topics {
		e.str(t)
	}
	return e.packet(byte(UNSUBSCRIBE)<<4|0x02, "UNSUBSCRIBE")
}

// Ack returns a PUBACK, PUBREC, PUBREL or PUBCOMP for packetID.
func Ack(t Type, packetID uint16) ([]byte, error) {
	first := byte(t) << 4
	switch t {
	case PUBACK, PUBREC, PUBCOMP:
	case PUBREL:
		first |= 0x02
	default:
		return nil, fmt.Errorf("%w: %v is not an acknowledgement", ErrInvalid, t)
	}
	return []byte{first, 2, byte(packetID >> 8), byte(packetID)}, nil
}

// Pingreq returns a PINGREQ packet.
func Pingreq() []byte { return []byte{byte(PINGREQ) << 4, 0} }

// Disconnect returns a DISCONNECT packet.
func Disconnect() []byte { return []byte{byte(DISCONNECT) << 4, 0} }

// encoder builds a packet's variable header and payload; bad describes
// the first field that could not be encoded.
type encoder struct {
	b   []byte
	bad string
}

func (e *encoder) byte(v byte)  { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) str(s string) { e.bin([]byte(s)) }

func (e *encoder) bin(v []byte) {
	if len(v) > 0xFFFF {
		if e.bad == "" {
			e.bad = fmt.Sprintf("a field of %d bytes (the limit is 65,535)", len(v))
		}
		return
	}
	e.u16(uint16(len(v)))
	e.b = append(e.b, v...)
}

// packet returns the fixed header (first byte, remaining length) and
// the encoded bytes.
func (e *encoder) packet(first byte, name string) ([]byte, error) {
	if e.bad != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, name, e.bad)
	}
	n := len(e.b)
	if n > maxRemaining {
		return nil, fmt.Errorf("%w: %s of %d bytes", ErrInvalid, name, n)
	}
	out := make([]byte, 0, n+5)
	out = append(out, first)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, e.b...), nil
}
