package wire

import "unicode/utf8"

// Publish is a PUBLISH packet.
type Publish struct {
	Topic    string // empty when a received MQTT 5 packet used a topic alias alone
	Payload  []byte
	QoS      byte
	Retain   bool
	Dup      bool
	PacketID uint16 // QoS 1 and 2 only
	Props    Props  // MQTT 5 only: must be empty for V311, and is when decoded
}

// PublishSize returns the size of p on the wire in version v, and an
// error matching ErrTooLarge or ErrInvalid when p cannot be encoded. It
// checks all that AppendPublish checks but the packet identifier, which
// a client assigns later: once it has accepted p, [AppendCheckedPublish]
// can append p without checking it again.
func PublishSize(v Version, p *Publish) (int, error) {
	if err := p.check(v); err != nil {
		return 0, err
	}
	n, _, err := p.remaining(v)
	if err != nil {
		return 0, err
	}
	return 1 + VBILen(n) + n, nil
}

func tooLarge(remaining int) error {
	return invalidf(ErrTooLarge, "a packet of %d bytes after its fixed header, more than MQTT's %d", remaining, MaxRemaining)
}

// check checks the values whose check costs: the topic name and the
// property values.
func (p *Publish) check(v Version) error {
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return err
		}
		if err := noProps("PUBLISH", &p.Props); err != nil {
			return err
		}
	}
	// checkTopicName's checks, inline on the path of a valid topic.
	ascii, zero, wild := scan(p.Topic)
	if len(p.Topic) > MaxString || !ascii && !utf8.ValidString(p.Topic) || zero || wild || p.Topic == "" && (v != V5 || !p.Props.Has(PropTopicAlias)) {
		return checkTopicName("topic name", p.Topic, v == V5 && p.Props.Has(PropTopicAlias))
	}
	return p.Props.Check()
}

// remaining returns the Remaining Length of p and the length of its
// property block, after checking what costs nothing to check: the
// version, the QoS and DUP, that an MQTT 3.1.1 PUBLISH has no property
// and that the packet is not larger than MQTT can encode.
func (p *Publish) remaining(v Version) (n, props int, err error) {
	if p.QoS > 2 {
		return 0, 0, invalid("QoS %d", p.QoS)
	}
	if p.QoS == 0 && p.Dup {
		return 0, 0, invalid("QoS 0 PUBLISH with DUP set") // [MQTT-3.3.1-2]
	}
	n = 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if v == V5 {
		props = p.Props.Len()
		n += VBILen(props) + props
	} else if err := v.checkV311(); err != nil {
		return 0, 0, err
	} else if err := noProps("PUBLISH", &p.Props); err != nil {
		return 0, 0, err
	}
	if n > MaxRemaining {
		return 0, 0, tooLarge(n)
	}
	return n, props, nil
}

// AppendPublish appends p to dst in version v. It checks every length
// and value first and appends nothing on error. The topic name must be
// a valid one: not empty (but for an MQTT 5 PUBLISH with a Topic Alias),
// without wildcards. A QoS 1 or 2 PUBLISH needs a packet identifier
// other than 0.
func AppendPublish(dst []byte, v Version, p *Publish) ([]byte, error) {
	if err := p.check(v); err != nil {
		return dst, err
	}
	return AppendCheckedPublish(dst, v, p)
}

// AppendCheckedPublish appends p, which [PublishSize] accepted for
// version v or [DecodePublish] returned, without checking its topic and
// property values again: a message is checked once, when it is accepted,
// not again each time it is written. Since then, Topic may have been
// emptied and a Topic Alias added (as an MQTT 5 client using topic
// aliases does); no other string or binary field may have changed. What
// costs nothing is checked, with AppendPublish's errors: the version,
// the QoS and DUP, the packet identifier, that an MQTT 3.1.1 PUBLISH has no
// property and that the packet is not larger than MQTT can encode. It
// appends nothing on error.
func AppendCheckedPublish(dst []byte, v Version, p *Publish) ([]byte, error) {
	n, props, err := p.remaining(v)
	if err != nil {
		return dst, err
	}
	if p.QoS > 0 && p.PacketID == 0 {
		return dst, invalid("QoS %d PUBLISH with packet identifier 0", p.QoS)
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
	if v == V5 {
		dst = p.Props.appendBlock(dst, props)
	}
	return append(dst, p.Payload...), nil
}

// DecodePublish decodes a PUBLISH body of version v. The payload aliases
// body. The topic name must not contain wildcards ([MQTT-3.3.2-2]); it
// may be empty only in MQTT 5 and when a Topic Alias is given, which the
// caller resolves.
func DecodePublish(v Version, flags byte, body []byte, p *Publish) error {
	*p = Publish{QoS: flags >> 1 & 3, Dup: flags&0x08 != 0, Retain: flags&0x01 != 0}
	if v != V5 {
		return decodePublish311(v, body, p)
	}
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
	if hasWildcard(p.Topic) {
		return protocolErr("PUBLISH topic name %q contains a wildcard", p.Topic)
	}
	if p.Topic == "" && !p.Props.Has(PropTopicAlias) {
		return protocolErr("PUBLISH with an empty topic name and no topic alias")
	}
	if p.Props.Has(PropResponseTopic) && hasWildcard(p.Props.ResponseTopic) {
		return protocolErr("PUBLISH response topic %q contains a wildcard", p.Props.ResponseTopic)
	}
	p.Payload = body[d.off:len(body):len(body)]
	return nil
}

// decodePublish311 decodes an MQTT 3.1.1 PUBLISH body (MQTT 3.1.1 3.3.2):
// topic name, packet identifier (QoS 1 and 2), payload.
func decodePublish311(v Version, body []byte, p *Publish) error {
	if err := v.checkV311(); err != nil {
		return err
	}
	d := decoder{b: body, what: "PUBLISH"}
	p.Topic = d.string("topic name")
	if p.QoS > 0 {
		p.PacketID = d.uint16()
		if d.err == nil && p.PacketID == 0 {
			return protocolErr("QoS %d PUBLISH with packet identifier 0", p.QoS)
		}
	}
	switch {
	case d.err != nil:
		return d.err
	case p.Topic == "":
		return protocolErr("PUBLISH with an empty topic name")
	case hasWildcard(p.Topic):
		return protocolErr("PUBLISH topic name %q contains a wildcard", p.Topic)
	}
	p.Payload = body[d.off:len(body):len(body)]
	return nil
}

// publishHeader returns the variable header of an MQTT 5 PUBLISH body
// (topic name, packet identifier, properties) as one string, so that the
// topic and every string property are cut from one allocation; "" when
// there is no property, or when the body is shorter than the lengths it
// announces, which the decoder then reports.
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
	if err != nil || pl == 0 || pl > len(body)-n-used {
		return "" // no string property: the topic is the only string
	}
	return string(body[:n+used+pl])
}
