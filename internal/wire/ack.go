package wire

// Ack is a PUBACK, PUBREC, PUBREL or PUBCOMP packet.
type Ack struct {
	Type     byte
	PacketID uint16
	Reason   byte  // MQTT 5 only: must be 0 for V311, and is when decoded
	Props    Props // MQTT 5 only (Reason String and User Properties)
}

// AckSize is the size of a PUBACK, PUBREC, PUBREL or PUBCOMP with reason
// code 0 and no properties: the only one of MQTT 3.1.1.
const AckSize = 4

// AppendAck appends a in version v with the shortest encoding MQTT
// allows. The packet identifier must not be 0; in MQTT 3.1.1, a has no
// reason code and no property.
func AppendAck(dst []byte, v Version, a *Ack) ([]byte, error) {
	if a.Type-PUBACK > PUBCOMP-PUBACK || a.PacketID == 0 || v != V5 && (v != V311 || a.Reason != 0 || a.Props.Set != 0) {
		return dst, a.invalid(v)
	}
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
	return a.Props.appendBlock(dst, pl), nil
}

// DecodeAck decodes the body of a PUBACK, PUBREC, PUBREL or PUBCOMP of
// version v. In MQTT 3.1.1 the body is the packet identifier alone.
func DecodeAck(v Version, typ byte, body []byte) (Ack, error) {
	a := Ack{Type: typ}
	d := decoder{b: body, what: TypeName(typ)}
	a.PacketID = d.uint16()
	if d.err == nil && a.PacketID == 0 {
		return a, protocolErr("%s with packet identifier 0", d.what)
	}
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return a, err
		}
		if d.err == nil && d.left() > 0 {
			d.fail(malformed("MQTT 3.1.1 %s with a %d-byte body, want 2", d.what, len(body)))
		}
		return a, d.err
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

// Pingreq is a whole PINGREQ packet, the same in both versions.
var Pingreq = []byte{PINGREQ << 4, 0}

// CheckPingresp checks a PINGRESP body of version v (which must be
// empty, in both versions).
func CheckPingresp(v Version, body []byte) error {
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return err
		}
	}
	if len(body) != 0 {
		return malformed("PINGRESP with a %d-byte body", len(body))
	}
	return nil
}

// invalid returns the error of AppendAck for an acknowledgement it does
// not encode.
func (a *Ack) invalid(v Version) error {
	switch {
	case a.Type < PUBACK || a.Type > PUBCOMP:
		return invalid("%s is not an acknowledgement", TypeName(a.Type))
	case a.PacketID == 0:
		return invalid("%s with packet identifier 0", TypeName(a.Type))
	case v != V311:
		return v.checkV311()
	case a.Reason != 0:
		return invalid("%s cannot carry reason code 0x%02X in MQTT 3.1.1 (MQTT 5 only)", TypeName(a.Type), a.Reason)
	}
	return noProps(TypeName(a.Type), &a.Props)
}
