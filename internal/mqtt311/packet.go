// Package mqtt311 writes and reads MQTT 3.1.1 packets as raw bytes, for
// the broker harnesses that start RabbitMQ and ActiveMQ (which speak 3.1.1
// only) and for their tests: a readiness check that sends a real CONNECT
// and waits for its CONNACK, and the few packets a test needs to publish,
// subscribe and acknowledge.
//
// It is deliberately independent of the library's codec (internal/wire):
// a harness must be able to tell whether a broker works without relying
// on the code under test. It covers the packets of MQTT 3.1.1 (OASIS
// standard, 29 October 2014) a client sends or receives, without
// properties or anything of MQTT 5.
package mqtt311

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Type is an MQTT control packet type (the high nibble of the first byte).
type Type byte

// The control packet types of MQTT 3.1.1, section 2.2.1.
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
)

var typeNames = [...]string{"reserved(0)", "CONNECT", "CONNACK", "PUBLISH", "PUBACK",
	"PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK",
	"PINGREQ", "PINGRESP", "DISCONNECT", "reserved(15)"}

// String returns the packet type's name, e.g. "PUBACK".
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", byte(t))
}

// DefaultMaxPacket is the largest packet (remaining length) ReadPacket
// accepts when given a limit of 0: 1 MiB, more than any harness test sends.
const DefaultMaxPacket = 1 << 20

// ErrMalformed is matched (errors.Is) by every error about bytes that are
// not a valid MQTT 3.1.1 packet, or a packet that is not what was asked
// for.
var ErrMalformed = errors.New("mqtt311: malformed packet")

// ErrTooLarge is matched by the error of ReadPacket for a packet whose
// remaining length exceeds the limit; nothing is allocated for it.
var ErrTooLarge = errors.New("mqtt311: packet larger than the limit")

// ErrRefused is matched by the error for a CONNACK whose return code is
// not 0; errors.As gives the *RefusedError with the code.
var ErrRefused = errors.New("mqtt311: connection refused")

// RefusedError is a CONNACK with a return code other than 0 (Connection
// Accepted).
type RefusedError struct {
	Code byte // the CONNACK return code, 1 to 5 in MQTT 3.1.1
}

var returnCodes = [...]string{"accepted", "unacceptable protocol version",
	"identifier rejected", "server unavailable", "bad user name or password",
	"not authorized"}

// Error names the return code, e.g. "mqtt311: connection refused: CONNACK
// return code 5 (not authorized)".
func (e *RefusedError) Error() string {
	name := "reserved"
	if int(e.Code) < len(returnCodes) {
		name = returnCodes[e.Code]
	}
	return fmt.Sprintf("%v: CONNACK return code %d (%s)", ErrRefused, e.Code, name)
}

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// Packet is one packet as read: its type, the low nibble of its first
// byte, and the bytes after the remaining length.
type Packet struct {
	Type  Type
	Flags byte
	Body  []byte
}

// String describes the packet briefly, e.g. "PUBACK (2 bytes)".
func (p Packet) String() string {
	return fmt.Sprintf("%v flags 0x%X (%d bytes)", p.Type, p.Flags, len(p.Body))
}

// ReadPacket reads one packet from r. A remaining length over max (0:
// DefaultMaxPacket) is refused with ErrTooLarge before the body is read;
// a remaining length of more than four bytes, or a stream that ends inside
// a packet, with ErrMalformed (io.ErrUnexpectedEOF is wrapped too). An
// io.EOF before the first byte is returned as io.EOF.
func ReadPacket(r io.Reader, max int) (Packet, error) {
	if max <= 0 {
		max = DefaultMaxPacket
	}
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Packet{}, err
	}
	p := Packet{Type: Type(b[0] >> 4), Flags: b[0] & 0x0F}
	length, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return Packet{}, fmt.Errorf("%w: remaining length longer than 4 bytes", ErrMalformed)
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Packet{}, fmt.Errorf("%w: %v header cut short: %w", ErrMalformed, p.Type, noEOF(err))
		}
		length += int(b[0]&0x7F) * mult
		if b[0]&0x80 == 0 {
			break
		}
		mult *= 128
	}
	if length > max {
		return Packet{}, fmt.Errorf("%w: %v of %d bytes, limit %d", ErrTooLarge, p.Type, length, max)
	}
	p.Body = make([]byte, length)
	if _, err := io.ReadFull(r, p.Body); err != nil {
		return Packet{}, fmt.Errorf("%w: %v body cut short: %w", ErrMalformed, p.Type, noEOF(err))
	}
	return p, nil
}

// noEOF turns io.EOF inside a packet into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Connack returns the Session Present flag and the return code of a
// CONNACK.
func (p Packet) Connack() (sessionPresent bool, code byte, err error) {
	if p.Type != CONNACK || len(p.Body) != 2 || p.Body[0]&^1 != 0 {
		return false, 0, fmt.Errorf("%w: want a CONNACK, got %v % X", ErrMalformed, p, p.Body)
	}
	return p.Body[0] == 1, p.Body[1], nil
}

// PacketID returns the packet identifier of a PUBACK, PUBREC, PUBREL,
// PUBCOMP, SUBACK or UNSUBACK (its first two bytes).
func (p Packet) PacketID() (uint16, error) {
	switch p.Type {
	case PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK:
		if len(p.Body) != 2 {
			return 0, fmt.Errorf("%w: %v of %d bytes, want 2", ErrMalformed, p.Type, len(p.Body))
		}
	case SUBACK:
		if len(p.Body) < 3 {
			return 0, fmt.Errorf("%w: SUBACK of %d bytes", ErrMalformed, len(p.Body))
		}
	default:
		return 0, fmt.Errorf("%w: %v has no packet identifier here", ErrMalformed, p.Type)
	}
	return binary.BigEndian.Uint16(p.Body), nil
}

// Suback returns the packet identifier and return codes of a SUBACK
// (0x00, 0x01, 0x02: the granted QoS; 0x80: failure).
func (p Packet) Suback() (packetID uint16, codes []byte, err error) {
	if p.Type != SUBACK {
		return 0, nil, fmt.Errorf("%w: want a SUBACK, got %v", ErrMalformed, p)
	}
	id, err := p.PacketID()
	if err != nil {
		return 0, nil, err
	}
	return id, append([]byte(nil), p.Body[2:]...), nil
}

// Message is a PUBLISH as received.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retain   bool
	Dup      bool
	PacketID uint16 // 0 for QoS 0
}

// Publish decodes a PUBLISH.
func (p Packet) Publish() (Message, error) {
	if p.Type != PUBLISH {
		return Message{}, fmt.Errorf("%w: want a PUBLISH, got %v", ErrMalformed, p)
	}
	m := Message{QoS: p.Flags >> 1 & 3, Retain: p.Flags&1 == 1, Dup: p.Flags&8 == 8}
	if m.QoS == 3 {
		return Message{}, fmt.Errorf("%w: PUBLISH with QoS 3", ErrMalformed)
	}
	b := p.Body
	if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
		return Message{}, fmt.Errorf("%w: PUBLISH topic cut short", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(b))
	m.Topic, b = string(b[2:2+n]), b[2+n:]
	if m.QoS > 0 {
		if len(b) < 2 {
			return Message{}, fmt.Errorf("%w: PUBLISH packet identifier cut short", ErrMalformed)
		}
		m.PacketID, b = binary.BigEndian.Uint16(b), b[2:]
	}
	m.Payload = append([]byte{}, b...)
	return m, nil
}
