package wire

// Subscription is one topic filter of a SUBSCRIBE with its options.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool // MQTT 5 only
	RetainAsPublished bool // MQTT 5 only
	RetainHandling    byte // MQTT 5 only: 0, 1 or 2
}

// Subscribe is a SUBSCRIBE packet.
type Subscribe struct {
	PacketID      uint16
	Props         Props // MQTT 5 only: Subscription Identifier (one), User
	Subscriptions []Subscription
}

// SubscribeSize returns the encoded size of s in version v.
func SubscribeSize(v Version, s *Subscribe) int {
	n := 2
	if v == V5 {
		n += VBILen(s.Props.Len()) + s.Props.Len()
	}
	for _, f := range s.Subscriptions {
		n += 2 + len(f.Filter) + 1
	}
	return 1 + VBILen(n) + n
}

// AppendSubscribe appends s in version v after checking every length and
// value: at least one subscription, a packet identifier other than 0,
// valid topic filters. In MQTT 3.1.1, s carries no property and no
// subscription option but the QoS.
func AppendSubscribe(dst []byte, v Version, s *Subscribe) ([]byte, error) {
	if len(s.Subscriptions) == 0 {
		return dst, invalid("SUBSCRIBE without a topic filter")
	}
	if s.PacketID == 0 {
		return dst, invalid("SUBSCRIBE with packet identifier 0")
	}
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return dst, err
		}
		if err := noProps("SUBSCRIBE", &s.Props); err != nil {
			return dst, err
		}
		for _, f := range s.Subscriptions {
			switch {
			case f.NoLocal:
				return dst, invalid("subscription option No Local (filter %q) is MQTT 5 only", f.Filter)
			case f.RetainAsPublished:
				return dst, invalid("subscription option Retain As Published (filter %q) is MQTT 5 only", f.Filter)
			case f.RetainHandling != 0:
				return dst, invalid("subscription option Retain Handling %d (filter %q) is MQTT 5 only", f.RetainHandling, f.Filter)
			}
		}
	}
	if err := s.Props.Check(); err != nil {
		return dst, err
	}
	for _, f := range s.Subscriptions {
		if err := checkFilter(f.Filter); err != nil {
			return dst, err
		}
		if f.QoS > 2 || f.RetainHandling > 2 {
			return dst, invalid("subscription options QoS %d, retain handling %d", f.QoS, f.RetainHandling)
		}
	}
	n := SubscribeSize(v, s)
	rem := n - 1 - VBILen(n)
	if rem > MaxRemaining {
		return dst, tooLarge(rem)
	}
	dst = appendHeader(dst, SUBSCRIBE, 2, rem)
	dst = appendUint16(dst, s.PacketID)
	if v == V5 {
		dst = s.Props.Append(dst)
	}
	for _, f := range s.Subscriptions {
		o := f.QoS | f.RetainHandling<<4
		if f.NoLocal {
			o |= 0x04
		}
		if f.RetainAsPublished {
			o |= 0x08
		}
		dst = append(appendString(dst, f.Filter), o)
	}
	return dst, nil
}

// Unsubscribe is an UNSUBSCRIBE packet.
type Unsubscribe struct {
	PacketID uint16
	Props    Props // MQTT 5 only: User
	Filters  []string
}

// AppendUnsubscribe appends u in version v after checking every length
// and value: at least one filter, a packet identifier other than 0,
// valid topic filters. In MQTT 3.1.1, u carries no property.
func AppendUnsubscribe(dst []byte, v Version, u *Unsubscribe) ([]byte, error) {
	if len(u.Filters) == 0 {
		return dst, invalid("UNSUBSCRIBE without a topic filter")
	}
	if u.PacketID == 0 {
		return dst, invalid("UNSUBSCRIBE with packet identifier 0")
	}
	n := 2
	if v == V5 {
		if err := u.Props.Check(); err != nil {
			return dst, err
		}
		n += VBILen(u.Props.Len()) + u.Props.Len()
	} else if err := v.checkV311(); err != nil {
		return dst, err
	} else if err := noProps("UNSUBSCRIBE", &u.Props); err != nil {
		return dst, err
	}
	for _, f := range u.Filters {
		if err := checkFilter(f); err != nil {
			return dst, err
		}
		n += 2 + len(f)
	}
	if n > MaxRemaining {
		return dst, tooLarge(n)
	}
	dst = appendHeader(dst, UNSUBSCRIBE, 2, n)
	dst = appendUint16(dst, u.PacketID)
	if v == V5 {
		dst = u.Props.Append(dst)
	}
	for _, f := range u.Filters {
		dst = appendString(dst, f)
	}
	return dst, nil
}

// SubAck is a SUBACK or UNSUBACK: one reason code per topic filter. In
// MQTT 3.1.1, a SUBACK carries return codes (0, 1, 2: the QoS granted,
// 0x80: refused), which read as the MQTT 5 reason codes of the same
// value, and an UNSUBACK none (Reasons is empty).
type SubAck struct {
	Type     byte
	PacketID uint16
	Props    Props // MQTT 5 only
	Reasons  []byte
}

// DecodeSubAck decodes a SUBACK or UNSUBACK body of version v. The
// reason codes alias body.
func DecodeSubAck(v Version, typ byte, body []byte) (SubAck, error) {
	a := SubAck{Type: typ}
	d := decoder{b: body, what: TypeName(typ)}
	a.PacketID = d.uint16()
	if d.err == nil && a.PacketID == 0 {
		return a, protocolErr("%s with packet identifier 0", d.what)
	}
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return a, err
		}
		if d.err != nil {
			return a, d.err
		}
		if typ == UNSUBACK {
			if d.left() > 0 {
				return a, malformed("MQTT 3.1.1 UNSUBACK with a %d-byte body, want 2", len(body))
			}
			return a, nil
		}
	} else {
		d.props(typ, &a.Props)
		if d.err != nil {
			return a, d.err
		}
	}
	if d.left() == 0 {
		return a, protocolErr("%s without a reason code", d.what)
	}
	a.Reasons = body[d.off:len(body):len(body)]
	if v != V5 {
		for _, rc := range a.Reasons {
			if rc > 2 && rc != 0x80 {
				return a, protocolErr("SUBACK return code 0x%02X, which MQTT 3.1.1 reserves [MQTT-3.9.3-2]", rc)
			}
		}
	}
	return a, nil
}

// CheckCount checks that a, decoded for version v, answers a SUBSCRIBE
// or UNSUBSCRIBE of n topic filters with one reason code for each
// ([MQTT-3.8.4-6], [MQTT-3.11.3-1]; [MQTT-3.9.3-1] in MQTT 3.1.1, whose
// UNSUBACK carries none): an error matching ErrProtocol if not.
func (a *SubAck) CheckCount(v Version, n int) error {
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return err
		}
		if a.Type == UNSUBACK {
			return nil
		}
	}
	if len(a.Reasons) != n {
		return protocolErr("%s with %d reason codes for %d topic filters", TypeName(a.Type), len(a.Reasons), n)
	}
	return nil
}
