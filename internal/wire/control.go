package wire

// Disconnect is a DISCONNECT packet.
type Disconnect struct {
	Reason byte  // MQTT 5 only: must be 0 for V311
	Props  Props // MQTT 5 only: Session Expiry (client only), Reason String, User, Server Reference (server only)
}

// AppendDisconnect appends d in version v with the shortest encoding
// MQTT allows. An MQTT 3.1.1 DISCONNECT has no body: no reason code, no
// property.
func AppendDisconnect(dst []byte, v Version, d *Disconnect) ([]byte, error) {
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return dst, err
		}
		if d.Reason != 0 {
			return dst, invalid("DISCONNECT cannot carry reason code 0x%02X in MQTT 3.1.1 (MQTT 5 only)", d.Reason)
		}
		if err := noProps("DISCONNECT", &d.Props); err != nil {
			return dst, err
		}
	}
	return appendReasonPacket(dst, DISCONNECT, d.Reason, &d.Props)
}

// DecodeDisconnect decodes a DISCONNECT body of version v. An MQTT 3.1.1
// server never sends DISCONNECT: in that version, any is refused with
// ErrProtocol.
func DecodeDisconnect(v Version, body []byte) (Disconnect, error) {
	var dc Disconnect
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return dc, err
		}
		return dc, protocolErr("DISCONNECT from the server, which MQTT 3.1.1 does not allow")
	}
	err := decodeReasonPacket(DISCONNECT, body, &dc.Reason, &dc.Props)
	return dc, err
}

// Auth is an AUTH packet (MQTT 5 only).
type Auth struct {
	Reason byte // 0x00 success, 0x18 continue authentication, 0x19 re-authenticate
	Props  Props
}

// AppendAuth appends a in version v with the shortest encoding MQTT
// allows. MQTT 3.1.1 has no AUTH: an error matching ErrInvalid.
func AppendAuth(dst []byte, v Version, a *Auth) ([]byte, error) {
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return dst, err
		}
		return dst, invalid("AUTH is MQTT 5 only")
	}
	return appendReasonPacket(dst, AUTH, a.Reason, &a.Props)
}

// DecodeAuth decodes an AUTH body of version v. MQTT 3.1.1 has no AUTH
// (packet type 15 is reserved): in that version, any is refused with
// ErrProtocol.
func DecodeAuth(v Version, body []byte) (Auth, error) {
	var a Auth
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return a, err
		}
		return a, protocolErr("AUTH (packet type 15), which MQTT 3.1.1 reserves")
	}
	err := decodeReasonPacket(AUTH, body, &a.Reason, &a.Props)
	return a, err
}

// appendReasonPacket appends a DISCONNECT or AUTH: reason code and
// properties, both left out when they are zero.
func appendReasonPacket(dst []byte, typ, reason byte, p *Props) ([]byte, error) {
	if p.Set == 0 {
		if reason == 0 {
			return append(dst, typ<<4, 0), nil
		}
		return append(dst, typ<<4, 1, reason), nil
	}
	if err := p.Check(); err != nil {
		return dst, err
	}
	pl := p.Len()
	n := 1 + VBILen(pl) + pl
	if n > MaxRemaining {
		return dst, tooLarge(n)
	}
	dst = append(appendHeader(dst, typ, 0, n), reason)
	return p.appendBlock(dst, pl), nil
}

func decodeReasonPacket(typ byte, body []byte, reason *byte, p *Props) error {
	d := decoder{b: body, what: TypeName(typ)}
	if d.left() > 0 {
		*reason = d.byte()
	}
	if d.left() > 0 {
		d.props(typ, p)
	}
	if d.err == nil && d.left() > 0 {
		d.fail(malformed("%s has %d bytes after its properties", d.what, d.left()))
	}
	return d.err
}
