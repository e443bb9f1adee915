package wire

// Connect is a CONNECT packet (protocol MQTT, version 5).
type Connect struct {
	ClientID    string
	KeepAlive   uint16 // seconds
	CleanStart  bool
	Username    string
	HasUsername bool
	Password    []byte
	HasPassword bool
	Props       Props // Session Expiry, Receive Maximum, Maximum Packet Size, Topic Alias Maximum, Request Response/Problem Information, User, Authentication Method/Data
	Will        *Will
}

// Will is the will message of a CONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Props   Props // Will Delay, Payload Format, Message Expiry, Content Type, Response Topic, Correlation Data, User
}

// AppendConnect appends c after checking every length.
func AppendConnect(dst []byte, c *Connect) ([]byte, error) {
	if err := CheckString("client identifier", c.ClientID); err != nil {
		return dst, err
	}
	if err := c.Props.Check(); err != nil {
		return dst, err
	}
	n := 10 + VBILen(c.Props.Len()) + c.Props.Len() + 2 + len(c.ClientID)
	flags := byte(0)
	if c.CleanStart {
		flags |= 0x02
	}
	if w := c.Will; w != nil {
		if err := CheckString("will topic", w.Topic); err != nil {
			return dst, err
		}
		if err := CheckBinary("will payload", w.Payload); err != nil {
			return dst, err
		}
		if err := w.Props.Check(); err != nil {
			return dst, err
		}
		if w.QoS > 2 {
			return dst, invalid("will QoS %d", w.QoS)
		}
		flags |= 0x04 | w.QoS<<3
		if w.Retain {
			flags |= 0x20
		}
		n += VBILen(w.Props.Len()) + w.Props.Len() + 2 + len(w.Topic) + 2 + len(w.Payload)
	}
	if c.HasUsername {
		if err := CheckString("user name", c.Username); err != nil {
			return dst, err
		}
		flags |= 0x80
		n += 2 + len(c.Username)
	}
	if c.HasPassword {
		// The error must not repeat the password, nor its length.
		if len(c.Password) > MaxString {
			return dst, invalid("password longer than %d bytes", MaxString)
		}
		flags |= 0x40
		n += 2 + len(c.Password)
	}
	if n > MaxRemaining {
		return dst, tooLarge(n)
	}
	dst = appendHeader(dst, CONNECT, 0, n)
	dst = appendString(dst, "MQTT")
	dst = append(dst, 5, flags)
	dst = appendUint16(dst, c.KeepAlive)
	dst = c.Props.Append(dst)
	dst = appendString(dst, c.ClientID)
	if w := c.Will; w != nil {
		dst = w.Props.Append(dst)
		dst = appendString(dst, w.Topic)
		dst = appendBinary(dst, w.Payload)
	}
	if c.HasUsername {
		dst = appendString(dst, c.Username)
	}
	if c.HasPassword {
		dst = appendBinary(dst, c.Password)
	}
	return dst, nil
}

// Connack is a CONNACK packet.
type Connack struct {
	SessionPresent bool
	Reason         byte
	Props          Props
}

// DecodeConnack decodes a CONNACK body.
func DecodeConnack(body []byte) (Connack, error) {
	var c Connack
	d := decoder{b: body, what: "CONNACK"}
	flags := d.byte()
	if d.err == nil && flags&0xFE != 0 {
		return c, malformed("CONNACK with reserved flags %08b", flags)
	}
	c.SessionPresent = flags&1 != 0
	c.Reason = d.byte()
	d.props(CONNACK, &c.Props)
	if d.err == nil && d.left() > 0 {
		d.fail(malformed("CONNACK has %d bytes after its properties", d.left()))
	}
	if d.err == nil && c.Reason >= 0x80 && c.SessionPresent {
		d.fail(protocolErr("CONNACK refusal 0x%02X with Session Present set", c.Reason))
	}
	return c, d.err
}

// Subscription is one topic filter of a SUBSCRIBE with its options.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0, 1 or 2
}

// Subscribe is a SUBSCRIBE packet.
type Subscribe struct {
	PacketID      uint16
	Props         Props // Subscription Identifier (one), User
	Subscriptions []Subscription
}

// SubscribeSize returns the encoded size of s.
func SubscribeSize(s *Subscribe) int {
	n := 2 + VBILen(s.Props.Len()) + s.Props.Len()
	for _, f := range s.Subscriptions {
		n += 2 + len(f.Filter) + 1
	}
	return 1 + VBILen(n) + n
}

// AppendSubscribe appends s after checking every length.
func AppendSubscribe(dst []byte, s *Subscribe) ([]byte, error) {
	if len(s.Subscriptions) == 0 {
		return dst, invalid("SUBSCRIBE without a topic filter")
	}
	if err := s.Props.Check(); err != nil {
		return dst, err
	}
	for _, f := range s.Subscriptions {
		if err := CheckString("topic filter", f.Filter); err != nil {
			return dst, err
		}
		if f.QoS > 2 || f.RetainHandling > 2 {
			return dst, invalid("subscription options QoS %d, retain handling %d", f.QoS, f.RetainHandling)
		}
	}
	n := SubscribeSize(s)
	rem := n - 1 - VBILen(n)
	if rem > MaxRemaining {
		return dst, tooLarge(rem)
	}
	dst = appendHeader(dst, SUBSCRIBE, 2, rem)
	dst = appendUint16(dst, s.PacketID)
	dst = s.Props.Append(dst)
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
	Props    Props // User
	Filters  []string
}

// AppendUnsubscribe appends u after checking every length.
func AppendUnsubscribe(dst []byte, u *Unsubscribe) ([]byte, error) {
	if len(u.Filters) == 0 {
		return dst, invalid("UNSUBSCRIBE without a topic filter")
	}
	if err := u.Props.Check(); err != nil {
		return dst, err
	}
	n := 2 + VBILen(u.Props.Len()) + u.Props.Len()
	for _, f := range u.Filters {
		if err := CheckString("topic filter", f); err != nil {
			return dst, err
		}
		n += 2 + len(f)
	}
	if n > MaxRemaining {
		return dst, tooLarge(n)
	}
	dst = appendHeader(dst, UNSUBSCRIBE, 2, n)
	dst = appendUint16(dst, u.PacketID)
	dst = u.Props.Append(dst)
	for _, f := range u.Filters {
		dst = appendString(dst, f)
	}
	return dst, nil
}

// SubAck is a SUBACK or UNSUBACK: one reason code per topic filter.
type SubAck struct {
	Type     byte
	PacketID uint16
	Props    Props
	Reasons  []byte
}

// DecodeSubAck decodes a SUBACK or UNSUBACK body.
func DecodeSubAck(typ byte, body []byte) (SubAck, error) {
	a := SubAck{Type: typ}
	d := decoder{b: body, what: TypeName(typ)}
	a.PacketID = d.uint16()
	if d.err == nil && a.PacketID == 0 {
		return a, protocolErr("%s with packet identifier 0", d.what)
	}
	d.props(typ, &a.Props)
	if d.err != nil {
		return a, d.err
	}
	if d.left() == 0 {
		return a, protocolErr("%s without a reason code", d.what)
	}
	a.Reasons = body[d.off:len(body):len(body)]
	return a, nil
}

// Disconnect is a DISCONNECT packet.
type Disconnect struct {
	Reason byte
	Props  Props // Session Expiry (client only), Reason String, User, Server Reference (server only)
}

// AppendDisconnect appends d with the shortest encoding MQTT allows.
func AppendDisconnect(dst []byte, d *Disconnect) ([]byte, error) {
	return appendReasonPacket(dst, DISCONNECT, d.Reason, &d.Props)
}

// DecodeDisconnect decodes a DISCONNECT body.
func DecodeDisconnect(body []byte) (Disconnect, error) {
	var dc Disconnect
	err := decodeReasonPacket(DISCONNECT, body, &dc.Reason, &dc.Props)
	return dc, err
}

// Auth is an AUTH packet.
type Auth struct {
	Reason byte // 0x00 success, 0x18 continue authentication, 0x19 re-authenticate
	Props  Props
}

// AppendAuth appends a with the shortest encoding MQTT allows.
func AppendAuth(dst []byte, a *Auth) ([]byte, error) {
	return appendReasonPacket(dst, AUTH, a.Reason, &a.Props)
}

// DecodeAuth decodes an AUTH body.
func DecodeAuth(body []byte) (Auth, error) {
	var a Auth
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
	return p.Append(dst), nil
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
