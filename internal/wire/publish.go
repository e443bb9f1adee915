package wire

import "strings"

// Publish is a PUBLISH packet.
type Publish struct {
	Topic    string // empty when a received packet used a topic alias alone
	Payload  []byte
	QoS      byte
	Retain   bool
	Dup      bool
	PacketID uint16 // QoS 1 and 2 only
	Props    Props
}

// PublishSize returns the size of p on the wire, and an error matching
// ErrTooLarge or ErrInvalid when p cannot be encoded. It checks all that
// AppendPublish checks: once it has accepted p, [AppendCheckedPublish]
// can append p without checking it again.
func PublishSize(p *Publish) (int, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	n, _, err := p.remaining()
	if err != nil {
		return 0, err
	}
	return 1 + VBILen(n) + n, nil
}

func tooLarge(remaining int) error {
	return invalidf(ErrTooLarge, "a packet of %d bytes after its fixed header, more than MQTT's %d", remaining, MaxRemaining)
}

// check checks the values whose check costs: the strings and the
// property values.
func (p *Publish) check() error {
	if err := CheckString("topic", p.Topic); err != nil {
		return err
	}
	return p.Props.Check()
}

// remaining returns the Remaining Length of p and the length of its
// property block, after checking what costs nothing to check: the QoS
// and that the packet is not larger than MQTT can encode.
func (p *Publish) remaining() (n, props int, err error) {
	if p.QoS > 2 {
		return 0, 0, invalid("QoS %d", p.QoS)
	}
	props = p.Props.Len()
	n = 2 + len(p.Topic) + VBILen(props) + props + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if n > MaxRemaining {
		return 0, 0, tooLarge(n)
	}
	return n, props, nil
}

// AppendPublish appends p to dst. It checks every length and value first
// and appends nothing on error.
func AppendPublish(dst []byte, p *Publish) ([]byte, error) {
	if err := p.check(); err != nil {
		return dst, err
	}
	return AppendCheckedPublish(dst, p)
}

// AppendCheckedPublish appends p, which [PublishSize] accepted or
// [DecodePublish] returned, without checking its strings and property
// values again: a message is checked once, when it is accepted, not
// again each time it is written. Since then, Topic may have been
// emptied and a Topic Alias added (as a client using topic aliases
// does); no other string or binary field may have changed. What costs
// nothing is checked again, with AppendPublish's errors: the QoS and
// that the packet is not larger than MQTT can encode. It appends nothing
// on error.
func AppendCheckedPublish(dst []byte, p *Publish) ([]byte, error) {
	n, props, err := p.remaining()
	if err != nil {
		return dst, err
	}
	flags := p.QoS << 1
	if p.Dup {
		flags |= 0x08
	}
	if p.Retain {
		flags |= 0x01
	}
	dst = appendHeader(dst, PUBLISH, flags, n)
	dst = appendString(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	dst = p.Props.appendBlock(dst, props)
	return append(dst, p.Payload...), nil
}

// DecodePublish decodes a PUBLISH body. The payload aliases body. The
// topic name must not contain wildcards ([MQTT-3.3.2-2]); it may be empty
// only when a Topic Alias is given, which the caller resolves.
func DecodePublish(flags byte, body []byte, p *Publish) error {
	*p = Publish{QoS: flags >> 1 & 3, Dup: flags&0x08 != 0, Retain: flags&0x01 != 0}
	d := decoder{b: body, s: publishHeader(body, p.QoS), what: "PUBLISH"}
	p.Topic = d.string("topic name")
	if p.QoS > 0 {
		p.PacketID = d.uint16()
		if d.err == nil && p.PacketID == 0 {
			return protocolErr("QoS %d PUBLISH with packet identifier 0", p.QoS)
		}
	}
	d.props(PUBLISH, &p.Props)
	if d.err != nil {
		return d.err
	}
	if strings.ContainsAny(p.Topic, "+#") {
		return protocolErr("PUBLISH topic name %q contains a wildcard", p.Topic)
	}
	if p.Topic == "" && !p.Props.Has(PropTopicAlias) {
		return protocolErr("PUBLISH with an empty topic name and no topic alias")
	}
	if p.Props.Has(PropResponseTopic) && strings.ContainsAny(p.Props.ResponseTopic, "+#") {
		return protocolErr("PUBLISH response topic %q contains a wildcard", p.Props.ResponseTopic)
	}
	p.Payload = body[d.off:len(body):len(body)]
	return nil
}

// publishHeader returns the variable header of a PUBLISH body (topic
// name, packet identifier, properties) as one string, so that the topic
// and every string property are cut from one allocation; "" when the
// body is shorter than the lengths it announces, which the decoder then
// reports.
func publishHeader(body []byte, qos byte) string {
	if len(body) < 2 {
		return ""
	}
	n := 2 + (int(body[0])<<8 | int(body[1]))
	if qos > 0 {
		n += 2
	}
	if n > len(body) {
		return ""
	}
	pl, used, err := readVBI(body[n:])
	if err != nil || pl > len(body)-n-used {
		return ""
	}
	return string(body[:n+used+pl])
}

// Ack is a PUBACK, PUBREC, PUBREL or PUBCOMP packet.
type Ack struct {
	Type     byte
	PacketID uint16
	Reason   byte
	Props    Props // Reason String and User Properties only
}

// AckSize is the size of a PUBACK, PUBREC, PUBREL or PUBCOMP with reason
// code 0 and no properties.
const AckSize = 4

// AppendAck appends a with the shortest encoding MQTT allows.
func AppendAck(dst []byte, a *Ack) ([]byte, error) {
	flags := byte(0)
	if a.Type == PUBREL {
		flags = 2
	}
	if a.Props.Set == 0 {
		if a.Reason == 0 {
			return append(dst, a.Type<<4|flags, 2, byte(a.PacketID>>8), byte(a.PacketID)), nil
		}
		return append(dst, a.Type<<4|flags, 3, byte(a.PacketID>>8), byte(a.PacketID), a.Reason), nil
	}
	if err := a.Props.Check(); err != nil {
		return dst, err
	}
	pl := a.Props.Len()
	n := 3 + VBILen(pl) + pl
	if n > MaxRemaining {
		return dst, tooLarge(n)
	}
	dst = appendHeader(dst, a.Type, flags, n)
	dst = append(appendUint16(dst, a.PacketID), a.Reason)
	return a.Props.Append(dst), nil
}

// DecodeAck decodes the body of a PUBACK, PUBREC, PUBREL or PUBCOMP.
func DecodeAck(typ byte, body []byte) (Ack, error) {
	a := Ack{Type: typ}
	d := decoder{b: body, what: TypeName(typ)}
	a.PacketID = d.uint16()
	if d.err == nil && a.PacketID == 0 {
		return a, protocolErr("%s with packet identifier 0", d.what)
	}
	if d.left() > 0 {
		a.Reason = d.byte()
	}
	if d.left() > 0 {
		d.props(typ, &a.Props)
	}
	if d.err == nil && d.left() > 0 {
		d.fail(malformed("%s has %d bytes after its properties", d.what, d.left()))
	}
	return a, d.err
}

// Pingreq is a whole PINGREQ packet.
var Pingreq = []byte{PINGREQ << 4, 0}

// checkEmpty checks the body of a packet that has none (PINGRESP).
func checkEmpty(typ byte, body []byte) error {
	if len(body) != 0 {
		return malformed("%s with a %d-byte body", TypeName(typ), len(body))
	}
	return nil
}

// CheckPingresp checks a PINGRESP body (which must be empty).
func CheckPingresp(body []byte) error { return checkEmpty(PINGRESP, body) }
