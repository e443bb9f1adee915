// Package wire reads and writes the packets of an mqttkeep client, in
// MQTT 5 and MQTT 3.1.1: every packet a client sends or receives, with no
// MQTT library beneath it. Every function that encodes or decodes a
// packet takes the connection's [Version]; the [Reader], which frames
// packets by their fixed header, and [Pingreq] are the same in both.
//
// # Versions
//
// [V5], MQTT 5.0: every packet a client sends or receives, with
// properties, reason codes, subscription options and AUTH.
//
// [V311], MQTT 3.1.1: CONNECT (with will and credentials), CONNACK,
// PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK,
// UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP and the client's DISCONNECT.
// 3.1.1 has no properties, no reason codes on the acknowledgements and
// DISCONNECT, no subscription option but the QoS, and no AUTH: asked to
// encode one of these, an encoder returns an error matching [ErrInvalid]
// that names it, so that nothing of MQTT 5 reaches a 3.1.1 server. A
// 3.1.1 server never sends DISCONNECT, and AUTH does not exist: decoding
// either is refused with [ErrProtocol]. The acknowledgements and UNSUBACK
// are their packet identifier alone; a SUBACK's return codes (0, 1, 2:
// the QoS granted, 0x80: refused) read as the MQTT 5 reason codes of the
// same value.
//
// A CONNACK decodes to one [Connack] in both versions. Its Reason is an
// MQTT 5 reason code: a 3.1.1 return code is mapped to the one that says
// the same (see [ReasonForReturnCode]), 1 to 0x84 (Unsupported Protocol
// Version), 2 to 0x85 (Client Identifier not valid), 3 to 0x88 (Server
// unavailable), 4 to 0x86 (Bad User Name or Password), 5 to 0x87 (Not
// authorized), while ReturnCode keeps the 3.1.1 code as received. A
// session thus turns a refusal into one typed error whatever the version.
//
// # Allocations
//
// The packets of the message path (PUBLISH, the acknowledgements,
// PINGREQ) append to a caller's buffer without allocating, in both
// versions. A received PUBLISH decodes with one allocation for its topic
// (in MQTT 5, for its topic and string properties together), plus those
// of the lists it carries (user properties, subscription identifiers),
// its payload and correlation data aliasing the packet's body; the
// acknowledgements and PINGRESP decode without allocating.
//
// # Checks
//
// Every length is checked against what MQTT can encode before anything
// is written (paho.golang v0.23.0 silently cuts a longer string to 65,535
// bytes and panics on a packet over 256 MiB), and so are the rules MQTT
// sets for what a client sends: UTF-8 strings without U+0000, topic names
// without wildcards, topic filters with whole-level wildcards, packet
// identifiers other than 0, and in 3.1.1 a password only with a user
// name and an empty client identifier only with Clean Session. A PUBLISH
// is checked once: [PublishSize] checks it when the message is accepted,
// and [AppendCheckedPublish] writes it without checking its strings
// again.
//
// Every received packet is checked to be whole and well formed: a
// property block that runs past the end, a property a packet may not
// carry or carries twice, a property value MQTT does not allow, invalid
// UTF-8 or U+0000 in a string, a wildcard in a topic name, a packet
// identifier 0, a refusing CONNACK with Session Present set, a body
// longer than a 3.1.1 packet has and a return code 3.1.1 reserves are
// refused. A SUBACK is checked against its SUBSCRIBE by [SubAck.CheckCount].
//
// The tests decode with paho.golang (MQTT 5) and paho.mqtt.golang (MQTT
// 3.1.1) what we encode and decode what they encode, for every packet
// both can express, compare the 3.1.1 bytes with paho.mqtt.golang's, and
// fuzz the decoders.
//
// # Errors
//
// Every error of a Decode function and of [CheckPingresp] matches
// [ErrMalformed] or [ErrProtocol]; in MQTT 5 the client sends their
// reason codes (0x81, 0x82) in its DISCONNECT. [Reader.Next] returns
// [ErrTooLarge] (a packet over its limit), [ErrMalformed] (a bad fixed
// header) or the stream's error (io.ErrUnexpectedEOF for a stream cut
// inside a packet). An encoding error, and one of [CheckString],
// [CheckBinary] and [Props.Check], matches [ErrTooLarge] or [ErrInvalid].
// Given a Version other than V311 and V5, every function that returns an
// error returns one matching ErrInvalid.
package wire

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Packet types (MQTT v5 section 2.1.2, MQTT 3.1.1 section 2.2.1, where 15,
// AUTH, is reserved).
const (
	CONNECT     byte = 1
	CONNACK     byte = 2
	PUBLISH     byte = 3
	PUBACK      byte = 4
	PUBREC      byte = 5
	PUBREL      byte = 6
	PUBCOMP     byte = 7
	SUBSCRIBE   byte = 8
	SUBACK      byte = 9
	UNSUBSCRIBE byte = 10
	UNSUBACK    byte = 11
	PINGREQ     byte = 12
	PINGRESP    byte = 13
	DISCONNECT  byte = 14
	AUTH        byte = 15
)

// TypeName returns the packet type's name, e.g. "PUBACK".
func TypeName(t byte) string {
	names := [...]string{"reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
		"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("type %d", t)
}

// Limits MQTT puts on what a packet can carry, the same in both versions.
const (
	// MaxRemaining is the largest Remaining Length a fixed header can
	// encode (four variable byte integer bytes).
	MaxRemaining = 268435455
	// MaxPacket is the largest whole packet: a 5-byte fixed header plus
	// MaxRemaining.
	MaxPacket = 5 + MaxRemaining
	// MaxString is the longest UTF-8 string or binary data: a two-byte
	// length prefix.
	MaxString = 65535
	// MaxVBI is the largest variable byte integer (subscription
	// identifiers, property lengths).
	MaxVBI = MaxRemaining
)

// Errors. Decoding errors wrap ErrMalformed or ErrProtocol; encoding
// errors wrap ErrTooLarge or ErrInvalid.
var (
	// ErrMalformed: the bytes are not a valid MQTT packet (MQTT 5 reason
	// code 0x81).
	ErrMalformed = errors.New("malformed packet")
	// ErrProtocol: a valid packet that the protocol does not allow here
	// (MQTT 5 reason code 0x82).
	ErrProtocol = errors.New("protocol error")
	// ErrTooLarge: a packet larger than MQTT can encode, or than the
	// reader's limit (MQTT 5 reason code 0x95).
	ErrTooLarge = errors.New("packet too large")
	// ErrInvalid: a value the packet cannot carry (a string longer than
	// 65,535 bytes, invalid UTF-8, a subscription identifier out of
	// range, an MQTT 5 feature asked of MQTT 3.1.1, ...).
	ErrInvalid = errors.New("invalid value")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func protocolErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// AppendVBI appends n as a variable byte integer (n must be 0 to MaxVBI).
func AppendVBI(dst []byte, n int) []byte {
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			return dst
		}
	}
}

// VBILen is the number of bytes AppendVBI uses for n.
func VBILen(n int) int {
	switch {
	case n < 128:
		return 1
	case n < 16384:
		return 2
	case n < 2097152:
		return 3
	}
	return 4
}

// readVBI decodes a variable byte integer at the start of b and returns
// it with the number of bytes it used.
func readVBI(b []byte) (n, used int, err error) {
	mult := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, malformed("variable byte integer runs past the end")
		}
		n += int(b[i]&0x7F) * mult
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, 0, malformed("variable byte integer not in its shortest form")
			}
			return n, i + 1, nil
		}
		mult *= 128
	}
	return 0, 0, malformed("variable byte integer longer than 4 bytes")
}

// unexpectedEOF turns an end of stream inside a packet into
// io.ErrUnexpectedEOF, so that it reads as a cut connection.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkFlags checks the fixed header's reserved flags (MQTT v5 2.1.3,
// MQTT 3.1.1 2.2.2: the same in both versions).
func checkFlags(typ, flags byte) error {
	switch typ {
	case PUBLISH:
		qos := flags >> 1 & 3
		if qos == 3 {
			return malformed("PUBLISH with QoS 3")
		}
		if qos == 0 && flags&0x08 != 0 {
			return malformed("QoS 0 PUBLISH with DUP set")
		}
		return nil
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		if flags != 2 {
			return malformed("%s with reserved flags %04b", TypeName(typ), flags)
		}
	default:
		if flags != 0 {
			return malformed("%s with reserved flags %04b", TypeName(typ), flags)
		}
	}
	return nil
}

// appendHeader appends a fixed header.
func appendHeader(dst []byte, typ, flags byte, remaining int) []byte {
	return AppendVBI(append(dst, typ<<4|flags), remaining)
}

// appendString appends a length-prefixed string (len(s) <= MaxString,
// checked by the caller).
func appendString(dst []byte, s string) []byte {
	return append(append(dst, byte(len(s)>>8), byte(len(s))), s...)
}

func appendBinary(dst, b []byte) []byte {
	return append(append(dst, byte(len(b)>>8), byte(len(b))), b...)
}

func appendUint16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// decoder reads the fields of a packet body; the first error sticks.
type decoder struct {
	b []byte
	// s, when set, is a copy of b[:len(s)]: the strings within it are
	// cut from it rather than each allocated.
	s    string
	off  int
	err  error
	what string // the packet, for error messages
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) left() int { return len(d.b) - d.off }

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.left() < 1 {
		d.fail(malformed("%s ends early", d.what))
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) uint16() uint16 {
	if d.err != nil {
		return 0
	}
	if d.left() < 2 {
		d.fail(malformed("%s ends early", d.what))
		return 0
	}
	v := uint16(d.b[d.off])<<8 | uint16(d.b[d.off+1])
	d.off += 2
	return v
}

func (d *decoder) uint32() uint32 {
	if d.err != nil {
		return 0
	}
	if d.left() < 4 {
		d.fail(malformed("%s ends early", d.what))
		return 0
	}
	v := uint32(d.b[d.off])<<24 | uint32(d.b[d.off+1])<<16 | uint32(d.b[d.off+2])<<8 | uint32(d.b[d.off+3])
	d.off += 4
	return v
}

func (d *decoder) vbi() int {
	if d.err != nil {
		return 0
	}
	n, used, err := readVBI(d.b[d.off:])
	if err != nil {
		d.fail(fmt.Errorf("%s: %w", d.what, err))
		return 0
	}
	d.off += used
	return n
}

// binary returns length-prefixed bytes, aliasing the body.
func (d *decoder) binary() []byte {
	n := int(d.uint16())
	if d.err != nil {
		return nil
	}
	if d.left() < n {
		d.fail(malformed("%s: a %d-byte field runs past the end", d.what, n))
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

// string returns a length-prefixed UTF-8 string, checked as MQTT requires
// (ill-formed UTF-8 or U+0000 is a malformed packet, [MQTT-1.5.4-1/2]).
func (d *decoder) string(field string) string {
	start := d.off + 2
	b := d.binary()
	if d.err != nil {
		return ""
	}
	ascii, zero, _ := scan(b)
	if !ascii && !utf8.Valid(b) {
		d.fail(malformed("%s: %s is not valid UTF-8", d.what, field))
		return ""
	}
	if zero {
		d.fail(malformed("%s: %s contains U+0000", d.what, field))
		return ""
	}
	if d.off <= len(d.s) {
		return d.s[start:d.off]
	}
	return string(b)
}

func invalidf(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
}
