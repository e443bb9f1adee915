package wire

// Connect is a CONNECT packet (protocol name MQTT, the version given to
// AppendConnect).
type Connect struct {
	ClientID    string
	KeepAlive   uint16 // seconds
	CleanStart  bool   // Clean Start in MQTT 5, Clean Session in MQTT 3.1.1
	Username    string
	HasUsername bool
	Password    []byte
	HasPassword bool  // MQTT 3.1.1: only with HasUsername
	Props       Props // MQTT 5 only: Session Expiry, Receive Maximum, Maximum Packet Size, Topic Alias Maximum, Request Response/Problem Information, User, Authentication Method/Data
	Will        *Will
}

// Will is the will message of a CONNECT.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Props   Props // MQTT 5 only: Will Delay, Payload Format, Message Expiry, Content Type, Response Topic, Correlation Data, User
}

// AppendConnect appends c in version v after checking every length and
// value. In MQTT 3.1.1, c and its will carry no property, a password
// needs a user name ([MQTT-3.1.2-22]) and an empty client identifier
// needs CleanStart ([MQTT-3.1.3-7]).
func AppendConnect(dst []byte, v Version, c *Connect) ([]byte, error) {
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return dst, err
		}
		if err := noProps("CONNECT", &c.Props); err != nil {
			return dst, err
		}
		if c.Will != nil {
			if err := noProps("a will", &c.Will.Props); err != nil {
				return dst, err
			}
		}
		if c.ClientID == "" && !c.CleanStart {
			return dst, invalid("an empty client identifier without Clean Session, which MQTT 3.1.1 does not allow [MQTT-3.1.3-7]")
		}
		if c.HasPassword && !c.HasUsername {
			return dst, invalid("a password without a user name, which MQTT 3.1.1 does not allow [MQTT-3.1.2-22]")
		}
	}
	if err := CheckString("client identifier", c.ClientID); err != nil {
		return dst, err
	}
	n := 10 + 2 + len(c.ClientID)
	pl := 0
	if v == V5 {
		if err := c.Props.Check(); err != nil {
			return dst, err
		}
		pl = c.Props.Len()
		n += VBILen(pl) + pl
	}
	flags := byte(0)
	if c.CleanStart {
		flags |= 0x02
	}
	wpl := 0
	if w := c.Will; w != nil {
		if err := checkTopicName("will topic", w.Topic, false); err != nil {
			return dst, err
		}
		if err := CheckBinary("will payload", w.Payload); err != nil {
			return dst, err
		}
		if w.QoS > 2 {
			return dst, invalid("will QoS %d", w.QoS)
		}
		if v == V5 {
			if err := w.Props.Check(); err != nil {
				return dst, err
			}
			wpl = w.Props.Len()
			n += VBILen(wpl) + wpl
		}
		flags |= 0x04 | w.QoS<<3
		if w.Retain {
			flags |= 0x20
		}
		n += 2 + len(w.Topic) + 2 + len(w.Payload)
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
	dst = append(dst, byte(v), flags)
	dst = appendUint16(dst, c.KeepAlive)
	if v == V5 {
		dst = c.Props.appendBlock(dst, pl)
	}
	dst = appendString(dst, c.ClientID)
	if w := c.Will; w != nil {
		if v == V5 {
			dst = w.Props.appendBlock(dst, wpl)
		}
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

// Connack is a CONNACK packet. Reason is its MQTT 5 reason code in both
// versions: an MQTT 3.1.1 return code is mapped to the MQTT 5 code that
// says the same (see [ReasonForReturnCode]), so that a refusal reads the
// same whatever the version, and kept as received in ReturnCode.
type Connack struct {
	SessionPresent bool
	Reason         byte  // the MQTT 5 reason code (0x00 accepted, 0x80 or more refused)
	ReturnCode     byte  // MQTT 3.1.1 only: the return code as received (0 to 5); 0 in MQTT 5
	Props          Props // MQTT 5 only
}

// DecodeConnack decodes a CONNACK body of version v. In MQTT 3.1.1 the
// body is the acknowledge flags and a return code from 0 to 5
// (MQTT 3.1.1 3.2.2); a refusal with Session Present set is refused in
// both versions ([MQTT-3.2.2-4]).
func DecodeConnack(v Version, body []byte) (Connack, error) {
	var c Connack
	d := decoder{b: body, what: "CONNACK"}
	flags := d.byte()
	if d.err == nil && flags&0xFE != 0 {
		return c, malformed("CONNACK with reserved flags %08b", flags)
	}
	c.SessionPresent = flags&1 != 0
	c.Reason = d.byte()
	if v != V5 {
		if err := v.checkV311(); err != nil {
			return c, err
		}
		if d.err != nil {
			return c, d.err
		}
		if d.left() > 0 {
			return c, malformed("MQTT 3.1.1 CONNACK with a %d-byte body, want 2", len(body))
		}
		rc := c.Reason
		reason, ok := ReasonForReturnCode(rc)
		if !ok {
			return c, protocolErr("CONNACK return code %d, which MQTT 3.1.1 reserves", rc)
		}
		c.ReturnCode, c.Reason = rc, reason
		if rc != 0 && c.SessionPresent {
			return c, protocolErr("CONNACK refusal (return code %d) with Session Present set", rc)
		}
		return c, nil
	}
	d.props(CONNACK, &c.Props)
	if d.err == nil && d.left() > 0 {
		d.fail(malformed("CONNACK has %d bytes after its properties", d.left()))
	}
	if d.err == nil && c.Reason >= 0x80 && c.SessionPresent {
		d.fail(protocolErr("CONNACK refusal 0x%02X with Session Present set", c.Reason))
	}
	return c, d.err
}
