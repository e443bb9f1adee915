package wire

import "math/bits"

// Property identifiers (MQTT v5 section 2.2.2.2).
const (
	PropPayloadFormat       byte = 0x01
	PropMessageExpiry       byte = 0x02
	PropContentType         byte = 0x03
	PropResponseTopic       byte = 0x08
	PropCorrelationData     byte = 0x09
	PropSubscriptionID      byte = 0x0B
	PropSessionExpiry       byte = 0x11
	PropAssignedClientID    byte = 0x12
	PropServerKeepAlive     byte = 0x13
	PropAuthMethod          byte = 0x15
	PropAuthData            byte = 0x16
	PropRequestProblemInfo  byte = 0x17
	PropWillDelay           byte = 0x18
	PropRequestResponseInfo byte = 0x19
	PropResponseInfo        byte = 0x1A
	PropServerReference     byte = 0x1C
	PropReasonString        byte = 0x1F
	PropReceiveMaximum      byte = 0x21
	PropTopicAliasMaximum   byte = 0x22
	PropTopicAlias          byte = 0x23
	PropMaximumQoS          byte = 0x24
	PropRetainAvailable     byte = 0x25
	PropUser                byte = 0x26
	PropMaximumPacketSize   byte = 0x27
	PropWildcardAvailable   byte = 0x28
	PropSubIDAvailable      byte = 0x29
	PropSharedSubAvailable  byte = 0x2A
	maxPropID                    = 0x2A
)

// Property data types.
const (
	propKindByte = iota + 1
	propKindUint16
	propKindUint32
	propKindVBI
	propKindString
	propKindBinary
	propKindPair
)

// propKinds gives each property's data type.
var propKinds = [maxPropID + 1]byte{
	PropPayloadFormat:       propKindByte,
	PropMessageExpiry:       propKindUint32,
	PropContentType:         propKindString,
	PropResponseTopic:       propKindString,
	PropCorrelationData:     propKindBinary,
	PropSubscriptionID:      propKindVBI,
	PropSessionExpiry:       propKindUint32,
	PropAssignedClientID:    propKindString,
	PropServerKeepAlive:     propKindUint16,
	PropAuthMethod:          propKindString,
	PropAuthData:            propKindBinary,
	PropRequestProblemInfo:  propKindByte,
	PropWillDelay:           propKindUint32,
	PropRequestResponseInfo: propKindByte,
	PropResponseInfo:        propKindString,
	PropServerReference:     propKindString,
	PropReasonString:        propKindString,
	PropReceiveMaximum:      propKindUint16,
	PropTopicAliasMaximum:   propKindUint16,
	PropTopicAlias:          propKindUint16,
	PropMaximumQoS:          propKindByte,
	PropRetainAvailable:     propKindByte,
	PropUser:                propKindPair,
	PropMaximumPacketSize:   propKindUint32,
	PropWildcardAvailable:   propKindByte,
	PropSubIDAvailable:      propKindByte,
	PropSharedSubAvailable:  propKindByte,
}

// allowed gives, per packet type a client receives, the properties that
// packet may carry (MQTT v5 table 2-4).
var allowed = [16]uint64{
	CONNACK: bitsOf(PropSessionExpiry, PropReceiveMaximum, PropMaximumQoS, PropRetainAvailable,
		PropMaximumPacketSize, PropAssignedClientID, PropTopicAliasMaximum, PropReasonString, PropUser,
		PropWildcardAvailable, PropSubIDAvailable, PropSharedSubAvailable, PropServerKeepAlive,
		PropResponseInfo, PropServerReference, PropAuthMethod, PropAuthData),
	PUBLISH: bitsOf(PropPayloadFormat, PropMessageExpiry, PropTopicAlias, PropResponseTopic,
		PropCorrelationData, PropUser, PropSubscriptionID, PropContentType),
	PUBACK:     bitsOf(PropReasonString, PropUser),
	PUBREC:     bitsOf(PropReasonString, PropUser),
	PUBREL:     bitsOf(PropReasonString, PropUser),
	PUBCOMP:    bitsOf(PropReasonString, PropUser),
	SUBACK:     bitsOf(PropReasonString, PropUser),
	UNSUBACK:   bitsOf(PropReasonString, PropUser),
	DISCONNECT: bitsOf(PropSessionExpiry, PropReasonString, PropUser, PropServerReference),
	AUTH:       bitsOf(PropAuthMethod, PropAuthData, PropReasonString, PropUser),
}

func bitsOf(ids ...byte) uint64 {
	var m uint64
	for _, id := range ids {
		m |= 1 << id
	}
	return m
}

// UserProperty is a name/value pair; it may appear more than once.
type UserProperty struct {
	Key, Value string
}

// Props holds the properties of any packet. A field counts only when its
// bit is set in Set (see [Props.Has]); the setters set it.
type Props struct {
	Set uint64 // bit i set: property i present

	PayloadFormat       byte
	MessageExpiry       uint32
	ContentType         string
	ResponseTopic       string
	CorrelationData     []byte
	SubscriptionIDs     []int // PUBLISH may carry several, SUBSCRIBE one
	SessionExpiry       uint32
	AssignedClientID    string
	ServerKeepAlive     uint16
	AuthMethod          string
	AuthData            []byte
	RequestProblemInfo  byte
	WillDelay           uint32
	RequestResponseInfo byte
	ResponseInfo        string
	ServerReference     string
	ReasonString        string
	ReceiveMaximum      uint16
	TopicAliasMaximum   uint16
	TopicAlias          uint16
	MaximumQoS          byte
	RetainAvailable     byte
	User                []UserProperty
	MaximumPacketSize   uint32
	WildcardAvailable   byte
	SubIDAvailable      byte
	SharedSubAvailable  byte
}

// Has reports whether property id is present.
func (p *Props) Has(id byte) bool { return p.Set&(1<<id) != 0 }

// Mark records property id as present.
func (p *Props) Mark(id byte) { p.Set |= 1 << id }

// Len returns the encoded size of the property block, without its length
// prefix, for the properties present.
func (p *Props) Len() int {
	if p == nil {
		return 0
	}
	n := 0
	for s := p.Set; s != 0; s &= s - 1 {
		id := byte(bits.TrailingZeros64(s))
		switch id {
		case PropUser:
			for _, u := range p.User {
				n += 1 + 2 + len(u.Key) + 2 + len(u.Value)
			}
			continue
		case PropSubscriptionID:
			for _, v := range p.SubscriptionIDs {
				n += 1 + VBILen(v)
			}
			continue
		}
		switch propKinds[id] {
		case propKindByte:
			n += 2
		case propKindUint16:
			n += 3
		case propKindUint32:
			n += 5
		case propKindString:
			n += 3 + len(p.str(id))
		case propKindBinary:
			n += 3 + len(p.bin(id))
		}
	}
	return n
}

// Check reports a property value the packet cannot carry: a string that
// is too long or not valid UTF-8, binary data over 65,535 bytes, a
// subscription identifier outside 1 to 268,435,455.
func (p *Props) Check() error {
	if p == nil {
		return nil
	}
	for s := p.Set; s != 0; s &= s - 1 {
		id := byte(bits.TrailingZeros64(s))
		switch id {
		case PropUser:
			for _, u := range p.User {
				if err := CheckString("user property name", u.Key); err != nil {
					return err
				}
				if err := CheckString("user property value", u.Value); err != nil {
					return err
				}
			}
		case PropSubscriptionID:
			for _, v := range p.SubscriptionIDs {
				if v < 1 || v > MaxVBI {
					return invalid("subscription identifier %d outside 1 to %d", v, MaxVBI)
				}
			}
		default:
			switch propKinds[id] {
			case propKindString:
				if err := CheckString(propName(id), p.str(id)); err != nil {
					return err
				}
			case propKindBinary:
				if err := CheckBinary(propName(id), p.bin(id)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Append appends the property block: its length, then each property
// present in identifier order. Values must have passed Check.
func (p *Props) Append(dst []byte) []byte {
	if p == nil || p.Set == 0 {
		return append(dst, 0)
	}
	return p.appendBlock(dst, p.Len())
}

// appendBlock is Append for a caller that has the block's length, n
// (p.Len()), at hand.
func (p *Props) appendBlock(dst []byte, n int) []byte {
	dst = AppendVBI(dst, n)
	for s := p.Set; s != 0; s &= s - 1 {
		id := byte(bits.TrailingZeros64(s))
		switch id {
		case PropUser:
			for _, u := range p.User {
				dst = appendString(appendString(append(dst, PropUser), u.Key), u.Value)
			}
			continue
		case PropSubscriptionID:
			for _, v := range p.SubscriptionIDs {
				dst = AppendVBI(append(dst, PropSubscriptionID), v)
			}
			continue
		}
		dst = append(dst, id)
		switch propKinds[id] {
		case propKindByte:
			dst = append(dst, p.byteVal(id))
		case propKindUint16:
			dst = appendUint16(dst, p.uint16Val(id))
		case propKindUint32:
			dst = appendUint32(dst, p.uint32Val(id))
		case propKindString:
			dst = appendString(dst, p.str(id))
		case propKindBinary:
			dst = appendBinary(dst, p.bin(id))
		}
	}
	return dst
}

// decodeProps reads a property block for packet type typ: every property
// must be one that packet may carry, present once unless MQTT allows
// more, and hold a value MQTT allows.
func (d *decoder) props(typ byte, p *Props) {
	n := d.vbi()
	if d.err != nil {
		return
	}
	if n > d.left() {
		d.fail(malformed("%s: property block of %d bytes runs past the end", d.what, n))
		return
	}
	end := d.off + n
	ok := allowed[typ]
	for d.off < end && d.err == nil {
		id := d.byte()
		if id > maxPropID || propKinds[id] == 0 {
			d.fail(malformed("%s: unknown property 0x%02X", d.what, id))
			return
		}
		if ok&(1<<id) == 0 {
			d.fail(protocolErr("%s may not carry property %s", d.what, propName(id)))
			return
		}
		if p.Has(id) && id != PropUser && id != PropSubscriptionID {
			d.fail(protocolErr("%s carries property %s twice", d.what, propName(id)))
			return
		}
		p.Mark(id)
		switch id {
		case PropUser:
			k := d.string("user property name")
			v := d.string("user property value")
			p.User = append(p.User, UserProperty{k, v})
		case PropSubscriptionID:
			v := d.vbi()
			if d.err == nil && v == 0 {
				d.fail(protocolErr("%s: subscription identifier 0", d.what))
			}
			p.SubscriptionIDs = append(p.SubscriptionIDs, v)
		default:
			switch propKinds[id] {
			case propKindByte:
				v := d.byte()
				if d.err == nil && v > 1 {
					d.fail(protocolErr("%s: property %s is %d, want 0 or 1", d.what, propName(id), v))
				}
				p.setByte(id, v)
			case propKindUint16:
				v := d.uint16()
				if d.err == nil && v == 0 && (id == PropReceiveMaximum || id == PropTopicAlias) {
					d.fail(protocolErr("%s: property %s is 0", d.what, propName(id)))
				}
				p.setUint16(id, v)
			case propKindUint32:
				v := d.uint32()
				if d.err == nil && v == 0 && id == PropMaximumPacketSize {
					d.fail(protocolErr("%s: property %s is 0", d.what, propName(id)))
				}
				p.setUint32(id, v)
			case propKindString:
				p.setStr(id, d.string(propName(id)))
			case propKindBinary:
				p.setBin(id, d.binary())
			}
		}
	}
	if d.err == nil && d.off != end {
		d.fail(malformed("%s: a property runs past its block", d.what))
	}
}

func (p *Props) byteVal(id byte) byte {
	switch id {
	case PropPayloadFormat:
		return p.PayloadFormat
	case PropRequestProblemInfo:
		return p.RequestProblemInfo
	case PropRequestResponseInfo:
		return p.RequestResponseInfo
	case PropMaximumQoS:
		return p.MaximumQoS
	case PropRetainAvailable:
		return p.RetainAvailable
	case PropWildcardAvailable:
		return p.WildcardAvailable
	case PropSubIDAvailable:
		return p.SubIDAvailable
	case PropSharedSubAvailable:
		return p.SharedSubAvailable
	}
	return 0
}

func (p *Props) setByte(id, v byte) {
	switch id {
	case PropPayloadFormat:
		p.PayloadFormat = v
	case PropRequestProblemInfo:
		p.RequestProblemInfo = v
	case PropRequestResponseInfo:
		p.RequestResponseInfo = v
	case PropMaximumQoS:
		p.MaximumQoS = v
	case PropRetainAvailable:
		p.RetainAvailable = v
	case PropWildcardAvailable:
		p.WildcardAvailable = v
	case PropSubIDAvailable:
		p.SubIDAvailable = v
	case PropSharedSubAvailable:
		p.SharedSubAvailable = v
	}
}

func (p *Props) uint16Val(id byte) uint16 {
	switch id {
	case PropServerKeepAlive:
		return p.ServerKeepAlive
	case PropReceiveMaximum:
		return p.ReceiveMaximum
	case PropTopicAliasMaximum:
		return p.TopicAliasMaximum
	case PropTopicAlias:
		return p.TopicAlias
	}
	return 0
}

func (p *Props) setUint16(id byte, v uint16) {
	switch id {
	case PropServerKeepAlive:
		p.ServerKeepAlive = v
	case PropReceiveMaximum:
		p.ReceiveMaximum = v
	case PropTopicAliasMaximum:
		p.TopicAliasMaximum = v
	case PropTopicAlias:
		p.TopicAlias = v
	}
}

func (p *Props) uint32Val(id byte) uint32 {
	switch id {
	case PropMessageExpiry:
		return p.MessageExpiry
	case PropSessionExpiry:
		return p.SessionExpiry
	case PropWillDelay:
		return p.WillDelay
	case PropMaximumPacketSize:
		return p.MaximumPacketSize
	}
	return 0
}

func (p *Props) setUint32(id byte, v uint32) {
	switch id {
	case PropMessageExpiry:
		p.MessageExpiry = v
	case PropSessionExpiry:
		p.SessionExpiry = v
	case PropWillDelay:
		p.WillDelay = v
	case PropMaximumPacketSize:
		p.MaximumPacketSize = v
	}
}

func (p *Props) str(id byte) string {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropAssignedClientID:
		return p.AssignedClientID
	case PropAuthMethod:
		return p.AuthMethod
	case PropResponseInfo:
		return p.ResponseInfo
	case PropServerReference:
		return p.ServerReference
	case PropReasonString:
		return p.ReasonString
	}
	return ""
}

func (p *Props) setStr(id byte, v string) {
	switch id {
	case PropContentType:
		p.ContentType = v
	case PropResponseTopic:
		p.ResponseTopic = v
	case PropAssignedClientID:
		p.AssignedClientID = v
	case PropAuthMethod:
		p.AuthMethod = v
	case PropResponseInfo:
		p.ResponseInfo = v
	case PropServerReference:
		p.ServerReference = v
	case PropReasonString:
		p.ReasonString = v
	}
}

func (p *Props) bin(id byte) []byte {
	switch id {
	case PropCorrelationData:
		return p.CorrelationData
	case PropAuthData:
		return p.AuthData
	}
	return nil
}

func (p *Props) setBin(id byte, v []byte) {
	switch id {
	case PropCorrelationData:
		p.CorrelationData = v
	case PropAuthData:
		p.AuthData = v
	}
}

// propNames names each property for error messages.
var propNames = [maxPropID + 1]string{
	PropPayloadFormat: "Payload Format Indicator", PropMessageExpiry: "Message Expiry Interval",
	PropContentType: "Content Type", PropResponseTopic: "Response Topic",
	PropCorrelationData: "Correlation Data", PropSubscriptionID: "Subscription Identifier",
	PropSessionExpiry: "Session Expiry Interval", PropAssignedClientID: "Assigned Client Identifier",
	PropServerKeepAlive: "Server Keep Alive", PropAuthMethod: "Authentication Method",
	PropAuthData: "Authentication Data", PropRequestProblemInfo: "Request Problem Information",
	PropWillDelay: "Will Delay Interval", PropRequestResponseInfo: "Request Response Information",
	PropResponseInfo: "Response Information", PropServerReference: "Server Reference",
	PropReasonString: "Reason String", PropReceiveMaximum: "Receive Maximum",
	PropTopicAliasMaximum: "Topic Alias Maximum", PropTopicAlias: "Topic Alias",
	PropMaximumQoS: "Maximum QoS", PropRetainAvailable: "Retain Available",
	PropUser: "User Property", PropMaximumPacketSize: "Maximum Packet Size",
	PropWildcardAvailable:  "Wildcard Subscription Available",
	PropSubIDAvailable:     "Subscription Identifier Available",
	PropSharedSubAvailable: "Shared Subscription Available",
}

// propName names a property for error messages.
func propName(id byte) string {
	if int(id) < len(propNames) && propNames[id] != "" {
		return propNames[id]
	}
	return "unknown"
}
