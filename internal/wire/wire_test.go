package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// read decodes one whole packet with Reader.
func read(t *testing.T, b []byte) (byte, byte, []byte) {
	t.Helper()
	typ, flags, body, err := NewReader(bytes.NewReader(b), 0).Next()
	require.NoError(t, err)
	return typ, flags, body
}

func publishes() []Publish {
	withProps := Publish{Topic: "a/b", Payload: []byte("hello"), QoS: 1, PacketID: 9, Retain: true}
	withProps.Props.Mark(PropPayloadFormat)
	withProps.Props.PayloadFormat = 1
	withProps.Props.Mark(PropMessageExpiry)
	withProps.Props.MessageExpiry = 3600
	withProps.Props.Mark(PropContentType)
	withProps.Props.ContentType = "text/plain"
	withProps.Props.Mark(PropResponseTopic)
	withProps.Props.ResponseTopic = "reply/here"
	withProps.Props.Mark(PropCorrelationData)
	withProps.Props.CorrelationData = []byte{1, 2, 3}
	withProps.Props.Mark(PropUser)
	withProps.Props.User = []UserProperty{{"k", "v"}, {"k", "w"}, {"é", ""}}
	alias := Publish{Topic: "long/topic/name", QoS: 2, PacketID: 65535, Dup: true}
	alias.Props.Mark(PropTopicAlias)
	alias.Props.TopicAlias = 7
	return []Publish{
		{Topic: "t", QoS: 0},
		{Topic: "t", Payload: bytes.Repeat([]byte{0xFF}, 200), QoS: 1, PacketID: 1},
		{Topic: strings.Repeat("x", 300), Payload: make([]byte, 70000), QoS: 2, PacketID: 300},
		withProps,
		alias,
	}
}

// Our PUBLISH encoding is what paho.golang decodes, and paho's encoding is
// what we decode.
func TestPublishMatchesPaho(t *testing.T) {
	for i, p := range publishes() {
		b, err := AppendPublish(nil, V5, &p)
		require.NoError(t, err)
		size, err := PublishSize(V5, &p)
		require.NoError(t, err)
		assert.Equal(t, len(b), size, "case %d: PublishSize", i)

		cp, err := packets.ReadPacket(bytes.NewReader(b))
		require.NoError(t, err, "case %d", i)
		pp := cp.Content.(*packets.Publish)
		assert.Equal(t, p.Topic, pp.Topic)
		assert.Equal(t, p.QoS, pp.QoS)
		assert.Equal(t, p.Retain, pp.Retain)
		assert.Equal(t, p.Dup, pp.Duplicate)
		assert.Equal(t, p.PacketID, pp.PacketID)
		assert.Equal(t, len(p.Payload), len(pp.Payload))
		assert.Equal(t, p.Props.ContentType, pp.Properties.ContentType)
		assert.Equal(t, p.Props.ResponseTopic, pp.Properties.ResponseTopic)
		assert.Len(t, pp.Properties.User, len(p.Props.User))

		// And back: paho's bytes through our reader.
		var out bytes.Buffer
		_, err = pp.WriteTo(&out)
		require.NoError(t, err)
		typ, flags, body := read(t, out.Bytes())
		require.Equal(t, PUBLISH, typ)
		var got Publish
		require.NoError(t, DecodePublish(V5, flags, body, &got))
		assert.Equal(t, p.Topic, got.Topic)
		assert.Equal(t, p.QoS, got.QoS)
		assert.Equal(t, p.PacketID, got.PacketID)
		assert.True(t, bytes.Equal(p.Payload, got.Payload))
		assert.Equal(t, p.Props.User, got.Props.User)
		assert.Equal(t, p.Props.MessageExpiry, got.Props.MessageExpiry)
		assert.Equal(t, p.Props.TopicAlias, got.Props.TopicAlias)
	}
}

// Several Subscription Identifiers in one PUBLISH are all kept (paho's
// decoder keeps only the last).
func TestPublishSeveralSubscriptionIDs(t *testing.T) {
	p := Publish{Topic: "t", QoS: 1, PacketID: 3}
	p.Props.Mark(PropSubscriptionID)
	p.Props.SubscriptionIDs = []int{1, 200, MaxVBI}
	b, err := AppendPublish(nil, V5, &p)
	require.NoError(t, err)
	_, flags, body := read(t, b)
	var got Publish
	require.NoError(t, DecodePublish(V5, flags, body, &got))
	assert.Equal(t, []int{1, 200, MaxVBI}, got.Props.SubscriptionIDs)
}

func TestAckMatchesPaho(t *testing.T) {
	cases := []Ack{
		{Type: PUBACK, PacketID: 1},
		{Type: PUBREC, PacketID: 65535, Reason: 0x10},
		{Type: PUBREL, PacketID: 7},
		{Type: PUBCOMP, PacketID: 7, Reason: 0x92},
	}
	withReason := Ack{Type: PUBACK, PacketID: 5, Reason: 0x87}
	withReason.Props.Mark(PropReasonString)
	withReason.Props.ReasonString = "not authorized"
	cases = append(cases, withReason)
	for _, a := range cases {
		b, err := AppendAck(nil, V5, &a)
		require.NoError(t, err)
		cp, err := packets.ReadPacket(bytes.NewReader(b))
		require.NoError(t, err)
		assert.Equal(t, a.Type, cp.Type)
		assert.Equal(t, a.PacketID, cp.PacketID())
		typ, flags, body := read(t, b)
		if a.Type == PUBREL {
			assert.Equal(t, byte(2), flags)
		}
		got, err := DecodeAck(V5, typ, body)
		require.NoError(t, err)
		assert.Equal(t, a, got)
	}
}

func TestConnectMatchesPaho(t *testing.T) {
	c := Connect{ClientID: "id", KeepAlive: 30, CleanStart: true, Username: "u", HasUsername: true,
		Password: []byte("p"), HasPassword: true}
	c.Props.Mark(PropSessionExpiry)
	c.Props.SessionExpiry = 300
	c.Props.Mark(PropReceiveMaximum)
	c.Props.ReceiveMaximum = 128
	c.Will = &Will{Topic: "will/t", Payload: []byte("gone"), QoS: 1, Retain: true}
	c.Will.Props.Mark(PropWillDelay)
	c.Will.Props.WillDelay = 5
	c.Will.Props.Mark(PropContentType)
	c.Will.Props.ContentType = "text/plain"
	b, err := AppendConnect(nil, V5, &c)
	require.NoError(t, err)
	cp, err := packets.ReadPacket(bytes.NewReader(b))
	require.NoError(t, err)
	pc := cp.Content.(*packets.Connect)
	assert.Equal(t, "MQTT", pc.ProtocolName)
	assert.Equal(t, byte(5), pc.ProtocolVersion)
	assert.Equal(t, "id", pc.ClientID)
	assert.True(t, pc.CleanStart)
	assert.Equal(t, uint16(30), pc.KeepAlive)
	assert.Equal(t, "u", pc.Username)
	assert.Equal(t, []byte("p"), pc.Password)
	assert.True(t, pc.WillFlag)
	assert.True(t, pc.WillRetain)
	assert.Equal(t, byte(1), pc.WillQOS)
	assert.Equal(t, "will/t", pc.WillTopic)
	assert.Equal(t, uint32(300), *pc.Properties.SessionExpiryInterval)
	assert.Equal(t, uint32(5), *pc.WillProperties.WillDelayInterval)
	assert.Equal(t, "text/plain", pc.WillProperties.ContentType)
}

func TestSubscribeMatchesPaho(t *testing.T) {
	s := Subscribe{PacketID: 42, Subscriptions: []Subscription{
		{Filter: "a/#", QoS: 1, NoLocal: true},
		{Filter: "$share/g/b/+", QoS: 2, RetainAsPublished: true, RetainHandling: 2},
	}}
	s.Props.Mark(PropSubscriptionID)
	s.Props.SubscriptionIDs = []int{99}
	b, err := AppendSubscribe(nil, V5, &s)
	require.NoError(t, err)
	assert.Len(t, b, SubscribeSize(V5, &s))
	cp, err := packets.ReadPacket(bytes.NewReader(b))
	require.NoError(t, err)
	ps := cp.Content.(*packets.Subscribe)
	assert.Equal(t, uint16(42), ps.PacketID)
	assert.Equal(t, 99, *ps.Properties.SubscriptionIdentifier)
	require.Len(t, ps.Subscriptions, 2)
	assert.Equal(t, packets.SubOptions{Topic: "a/#", QoS: 1, NoLocal: true}, ps.Subscriptions[0])
	assert.Equal(t, packets.SubOptions{Topic: "$share/g/b/+", QoS: 2, RetainAsPublished: true, RetainHandling: 2}, ps.Subscriptions[1])

	u := Unsubscribe{PacketID: 43, Filters: []string{"a/#", "b"}}
	b, err = AppendUnsubscribe(nil, V5, &u)
	require.NoError(t, err)
	cp, err = packets.ReadPacket(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Equal(t, []string{"a/#", "b"}, cp.Content.(*packets.Unsubscribe).Topics)
}

// What paho's server-side encoders produce, our decoders read.
func TestDecodeServerPackets(t *testing.T) {
	ka, rm, mps := uint16(10), uint16(20), uint32(1000)
	ca := packets.Connack{SessionPresent: true, Properties: &packets.Properties{
		ServerKeepAlive: &ka, ReceiveMaximum: &rm, MaximumPacketSize: &mps, AssignedClientID: "assigned",
		ResponseInfo: "resp/", User: []packets.User{{Key: "a", Value: "b"}},
	}}
	var b bytes.Buffer
	_, err := (&packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: packets.CONNACK}, Content: &ca}).WriteTo(&b)
	require.NoError(t, err)
	typ, _, body := read(t, b.Bytes())
	require.Equal(t, CONNACK, typ)
	got, err := DecodeConnack(V5, body)
	require.NoError(t, err)
	assert.True(t, got.SessionPresent)
	assert.Equal(t, uint16(10), got.Props.ServerKeepAlive)
	assert.True(t, got.Props.Has(PropServerKeepAlive))
	assert.Equal(t, uint16(20), got.Props.ReceiveMaximum)
	assert.Equal(t, uint32(1000), got.Props.MaximumPacketSize)
	assert.Equal(t, "assigned", got.Props.AssignedClientID)
	assert.Equal(t, "resp/", got.Props.ResponseInfo)
	assert.False(t, got.Props.Has(PropMaximumQoS))

	b.Reset()
	sa := packets.Suback{PacketID: 5, Reasons: []byte{1, 0x87}, Properties: &packets.Properties{ReasonString: "no"}}
	_, err = (&packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: packets.SUBACK}, Content: &sa}).WriteTo(&b)
	require.NoError(t, err)
	typ, _, body = read(t, b.Bytes())
	sg, err := DecodeSubAck(V5, typ, body)
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 0x87}, sg.Reasons)
	assert.Equal(t, "no", sg.Props.ReasonString)

	b.Reset()
	d := packets.Disconnect{ReasonCode: 0x9C, Properties: &packets.Properties{ServerReference: "other:1883"}}
	_, err = d.WriteTo(&b)
	require.NoError(t, err)
	typ, _, body = read(t, b.Bytes())
	require.Equal(t, DISCONNECT, typ)
	dg, err := DecodeDisconnect(V5, body)
	require.NoError(t, err)
	assert.Equal(t, byte(0x9C), dg.Reason)
	assert.Equal(t, "other:1883", dg.Props.ServerReference)
}

// DISCONNECT and AUTH as we encode them are what paho.golang decodes.
func TestDisconnectAuthMatchesPaho(t *testing.T) {
	d := Disconnect{Reason: 0x04}
	d.Props.Mark(PropSessionExpiry)
	d.Props.SessionExpiry = 60
	d.Props.Mark(PropReasonString)
	d.Props.ReasonString = "bye"
	// The shortest DISCONNECT (MQTT v5 3.14.2.1) has no body, which
	// paho.golang v0.23.0 cannot decode (it reads a reason code from the
	// empty body and fails with EOF).
	b, err := AppendDisconnect(nil, V5, &Disconnect{})
	require.NoError(t, err)
	assert.Equal(t, []byte{0xE0, 0x00}, b)
	for _, dc := range []Disconnect{{Reason: 0x81}, d} {
		b, err := AppendDisconnect(nil, V5, &dc)
		require.NoError(t, err)
		cp, err := packets.ReadPacket(bytes.NewReader(b))
		require.NoError(t, err)
		pd := cp.Content.(*packets.Disconnect)
		assert.Equal(t, dc.Reason, pd.ReasonCode)
		if dc.Props.Has(PropSessionExpiry) {
			assert.Equal(t, uint32(60), *pd.Properties.SessionExpiryInterval)
			assert.Equal(t, "bye", pd.Properties.ReasonString)
		}
	}
	a := Auth{Reason: 0x18}
	a.Props.Mark(PropAuthMethod)
	a.Props.AuthMethod = "SCRAM-SHA-256"
	a.Props.Mark(PropAuthData)
	a.Props.AuthData = []byte{0, 1, 2}
	b, err = AppendAuth(nil, V5, &a)
	require.NoError(t, err)
	cp, err := packets.ReadPacket(bytes.NewReader(b))
	require.NoError(t, err)
	pa := cp.Content.(*packets.Auth)
	assert.Equal(t, byte(0x18), pa.ReasonCode)
	assert.Equal(t, "SCRAM-SHA-256", pa.Properties.AuthMethod)
	assert.Equal(t, []byte{0, 1, 2}, pa.Properties.AuthData)
}

// The acknowledgements, UNSUBACK, AUTH and PINGRESP as paho.golang encodes
// them are what we decode; our PINGREQ is what it decodes.
func TestDecodePahoAcks(t *testing.T) {
	props := func() *packets.Properties {
		return &packets.Properties{ReasonString: "why", User: []packets.User{{Key: "k", Value: "v"}}}
	}
	acks := []struct {
		typ byte
		pkt interface {
			WriteTo(io.Writer) (int64, error)
		}
	}{
		{PUBACK, &packets.Puback{PacketID: 1, ReasonCode: 0x10, Properties: props()}},
		{PUBREC, &packets.Pubrec{PacketID: 65535, ReasonCode: 0x80, Properties: props()}},
		{PUBREL, &packets.Pubrel{PacketID: 7, ReasonCode: 0x92, Properties: props()}},
		{PUBCOMP, &packets.Pubcomp{PacketID: 8, Properties: props()}},
		{PUBACK, &packets.Puback{PacketID: 2, Properties: &packets.Properties{}}},
	}
	for _, c := range acks {
		var b bytes.Buffer
		_, err := c.pkt.WriteTo(&b)
		require.NoError(t, err)
		typ, _, body := read(t, b.Bytes())
		require.Equal(t, c.typ, typ)
		got, err := DecodeAck(V5, typ, body)
		require.NoError(t, err)
		cp, err := packets.ReadPacket(bytes.NewReader(b.Bytes()))
		require.NoError(t, err)
		assert.Equal(t, cp.PacketID(), got.PacketID)
		if got.Props.Has(PropReasonString) {
			assert.Equal(t, "why", got.Props.ReasonString)
			assert.Equal(t, []UserProperty{{"k", "v"}}, got.Props.User)
		}
	}

	var b bytes.Buffer
	ua := packets.Unsuback{PacketID: 9, Reasons: []byte{0, 0x11, 0x87}, Properties: props()}
	_, err := (&packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: packets.UNSUBACK}, Content: &ua}).WriteTo(&b)
	require.NoError(t, err)
	typ, _, body := read(t, b.Bytes())
	got, err := DecodeSubAck(V5, typ, body)
	require.NoError(t, err)
	assert.Equal(t, SubAck{Type: UNSUBACK, PacketID: 9, Reasons: []byte{0, 0x11, 0x87},
		Props: Props{Set: 1<<PropReasonString | 1<<PropUser, ReasonString: "why", User: []UserProperty{{"k", "v"}}}}, got)

	b.Reset()
	pa := packets.Auth{ReasonCode: 0x19, Properties: &packets.Properties{AuthMethod: "m", AuthData: []byte("d")}}
	_, err = pa.WriteTo(&b)
	require.NoError(t, err)
	typ, _, body = read(t, b.Bytes())
	require.Equal(t, AUTH, typ)
	ga, err := DecodeAuth(V5, body)
	require.NoError(t, err)
	assert.Equal(t, byte(0x19), ga.Reason)
	assert.Equal(t, "m", ga.Props.AuthMethod)
	assert.Equal(t, []byte("d"), ga.Props.AuthData)

	cp, err := packets.ReadPacket(bytes.NewReader(Pingreq))
	require.NoError(t, err)
	assert.Equal(t, byte(packets.PINGREQ), cp.Type)

	b.Reset()
	_, err = (&packets.Pingresp{}).WriteTo(&b)
	require.NoError(t, err)
	typ, _, body = read(t, b.Bytes())
	require.Equal(t, PINGRESP, typ)
	require.NoError(t, CheckPingresp(V5, body))
}

// Decoded strings are copies: the body may be reused once a PUBLISH is
// decoded, while its payload and correlation data alias it.
func TestDecodedStringsOutliveTheBody(t *testing.T) {
	p := benchPublish(1, true)
	p.Props.Mark(PropCorrelationData)
	p.Props.CorrelationData = []byte("corr")
	b, err := AppendPublish(nil, V5, &p)
	require.NoError(t, err)
	_, flags, body := read(t, b)
	var got Publish
	require.NoError(t, DecodePublish(V5, flags, body, &got))
	for i := range body {
		body[i] = 'Z'
	}
	assert.Equal(t, p.Topic, got.Topic)
	assert.Equal(t, p.Props.ContentType, got.Props.ContentType)
	assert.Equal(t, p.Props.User, got.Props.User)
	assert.Equal(t, bytes.Repeat([]byte{'Z'}, len(p.Payload)), got.Payload, "the payload aliases the body")
	assert.Equal(t, []byte("ZZZZ"), got.Props.CorrelationData, "correlation data aliases the body")
}

// Every rule MQTT makes for a received packet is enforced, with the error
// class the client turns into its DISCONNECT reason code.
func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"packet type 0", []byte{0x00, 0x00}, ErrMalformed},
		{"PUBLISH QoS 3", []byte{0x36, 0x03, 0, 1, 't'}, ErrMalformed},
		{"QoS 0 with DUP", []byte{0x38, 0x04, 0, 1, 't', 0}, ErrMalformed},
		{"PUBACK with flags", []byte{0x41, 0x02, 0, 1}, ErrMalformed},
		{"PUBREL without its flags", []byte{0x60, 0x02, 0, 1}, ErrMalformed},
		{"remaining length of 5 bytes", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, ErrMalformed},
		{"remaining length not minimal", []byte{0xD0, 0x80, 0x00}, ErrMalformed},
		{"PUBLISH topic runs past the end", []byte{0x30, 0x03, 0, 9, 't'}, ErrMalformed},
		{"PUBLISH topic not UTF-8", []byte{0x30, 0x04, 0, 1, 0xFF, 0}, ErrMalformed},
		{"PUBLISH topic with U+0000", []byte{0x30, 0x04, 0, 1, 0x00, 0}, ErrMalformed},
		{"PUBLISH topic with a wildcard", []byte{0x30, 0x04, 0, 1, '#', 0}, ErrProtocol},
		{"PUBLISH empty topic, no alias", []byte{0x30, 0x03, 0, 0, 0}, ErrProtocol},
		{"QoS 1 PUBLISH with id 0", []byte{0x32, 0x06, 0, 1, 't', 0, 0, 0}, ErrProtocol},
		{"property block runs past the end", []byte{0x30, 0x05, 0, 1, 't', 9, 1}, ErrMalformed},
		{"unknown property", []byte{0x30, 0x06, 0, 1, 't', 2, 0x7F, 0}, ErrMalformed},
		{"property not allowed in PUBLISH", []byte{0x30, 0x07, 0, 1, 't', 3, 0x13, 0, 5}, ErrProtocol},
		{"property twice", []byte{0x30, 0x08, 0, 1, 't', 4, 0x01, 1, 0x01, 1}, ErrProtocol},
		{"payload format 2", []byte{0x30, 0x06, 0, 1, 't', 2, 0x01, 2}, ErrProtocol},
		{"topic alias 0", []byte{0x30, 0x07, 0, 1, 't', 3, 0x23, 0, 0}, ErrProtocol},
		{"subscription identifier 0", []byte{0x30, 0x06, 0, 1, 't', 2, 0x0B, 0}, ErrProtocol},
		{"PUBACK id 0", []byte{0x40, 0x02, 0, 0}, ErrProtocol},
		{"PUBACK trailing bytes", []byte{0x40, 0x05, 0, 1, 0, 0, 9}, ErrMalformed},
		{"CONNACK reserved flags", []byte{0x20, 0x03, 0x02, 0, 0}, ErrMalformed},
		{"CONNACK refusal with session present", []byte{0x20, 0x03, 0x01, 0x87, 0}, ErrProtocol},
		{"CONNACK receive maximum 0", []byte{0x20, 0x06, 0, 0, 3, 0x21, 0, 0}, ErrProtocol},
		{"CONNACK maximum QoS 2", []byte{0x20, 0x05, 0, 0, 2, 0x24, 2}, ErrProtocol},
		{"SUBACK without reason codes", []byte{0x90, 0x03, 0, 1, 0}, ErrProtocol},
		{"PINGRESP with a body", []byte{0xD0, 0x01, 0}, ErrMalformed},
		{"user property value not UTF-8", []byte{0x40, 0x0B, 0, 1, 0, 7, 0x26, 0, 1, 'k', 0, 1, 0xC0}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := decodeAll(c.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, c.want)
		})
	}
}

// decodeAll reads one packet and decodes it by type, as an MQTT 5 client
// does.
func decodeAll(in []byte) error {
	typ, flags, body, err := NewReader(bytes.NewReader(in), 0).Next()
	if err != nil {
		return err
	}
	return decodeByType(V5, typ, flags, body)
}

// A packet larger than the reader's limit is refused from its header,
// before its body is read or allocated.
func TestReaderLimit(t *testing.T) {
	header := []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F} // 256 MiB announced, nothing follows
	_, _, _, err := NewReader(bytes.NewReader(header), 1<<20).Next()
	assert.ErrorIs(t, err, ErrTooLarge)
	// A cut packet reads as a cut connection.
	_, _, _, err = NewReader(bytes.NewReader([]byte{0x40, 0x02, 0}), 0).Next()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// Lengths MQTT cannot encode are refused before anything is written,
// never truncated.
func TestEncodeRejects(t *testing.T) {
	long := strings.Repeat("x", MaxString+1)
	p := Publish{Topic: long}
	_, err := AppendPublish(nil, V5, &p)
	assert.ErrorIs(t, err, ErrInvalid)

	p = Publish{Topic: "t"}
	p.Props.Mark(PropCorrelationData)
	p.Props.CorrelationData = make([]byte, MaxString+1)
	b, err := AppendPublish([]byte("keep"), V5, &p)
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Equal(t, []byte("keep"), b, "nothing appended on error")

	p = Publish{Topic: "t"}
	p.Props.Mark(PropUser)
	p.Props.User = []UserProperty{{"k", "\xff"}}
	_, err = AppendPublish(nil, V5, &p)
	assert.ErrorIs(t, err, ErrInvalid)

	p = Publish{Topic: "t", Payload: make([]byte, MaxRemaining)}
	_, err = PublishSize(V5, &p)
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = AppendPublish(nil, V5, &p)
	assert.ErrorIs(t, err, ErrTooLarge)

	c := Connect{ClientID: "c", HasPassword: true, Password: []byte(long + "secret")}
	_, err = AppendConnect(nil, V5, &c)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret")

	s := Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", RetainHandling: 3}}}
	_, err = AppendSubscribe(nil, V5, &s)
	assert.ErrorIs(t, err, ErrInvalid)
	s = Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a"}}}
	s.Props.Mark(PropSubscriptionID)
	s.Props.SubscriptionIDs = []int{MaxVBI + 1}
	_, err = AppendSubscribe(nil, V5, &s)
	assert.ErrorIs(t, err, ErrInvalid)
}

// AppendCheckedPublish writes what AppendPublish writes, also after the
// topic alias a client adds to a checked PUBLISH, and still refuses what
// costs nothing to check.
func TestAppendCheckedPublish(t *testing.T) {
	for i, p := range publishes() {
		size, err := PublishSize(V5, &p)
		require.NoError(t, err)
		want, err := AppendPublish(nil, V5, &p)
		require.NoError(t, err)
		got, err := AppendCheckedPublish(nil, V5, &p)
		require.NoError(t, err)
		assert.Equal(t, want, got, "case %d", i)
		assert.Len(t, got, size, "case %d", i)

		q := p
		q.Props.Mark(PropTopicAlias)
		q.Props.TopicAlias = 3
		q.Topic = ""
		want, err = AppendPublish(nil, V5, &q)
		require.NoError(t, err)
		got, err = AppendCheckedPublish(nil, V5, &q)
		require.NoError(t, err)
		assert.Equal(t, want, got, "case %d with an alias", i)
	}
	p := Publish{Topic: "t", QoS: 3}
	b, err := AppendCheckedPublish([]byte("keep"), V5, &p)
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Equal(t, []byte("keep"), b, "nothing appended on error")
	p = Publish{Topic: "t", Payload: make([]byte, MaxRemaining-4)} // topic 3, property length 1
	_, err = PublishSize(V5, &p)
	require.NoError(t, err, "the largest PUBLISH")
	p.Props.Mark(PropTopicAlias) // 3 more bytes: one too many
	p.Props.TopicAlias = 1
	b, err = AppendCheckedPublish([]byte("keep"), V5, &p)
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Equal(t, []byte("keep"), b, "nothing appended on error")
}

// FuzzDecode feeds arbitrary bytes to the reader and every decoder: no
// panic, and every error is one of the package's classes or a cut stream.
// A PUBLISH that decodes re-encodes to bytes that decode the same.
func FuzzDecode(f *testing.F) {
	for _, p := range publishes() {
		b, _ := AppendPublish(nil, V5, &p)
		f.Add(b)
	}
	f.Add([]byte{0x20, 0x03, 0, 0, 0})
	f.Add([]byte{0x90, 0x04, 0, 1, 0, 1})
	f.Add([]byte{0xE0, 0x00})
	f.Add([]byte{0xF0, 0x02, 0x18, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var src io.Reader = bytes.NewReader(in)
		if len(in)%2 == 1 { // half of what is asked per read: packets cut anywhere
			src = iotest.HalfReader(src)
		}
		r := NewReader(src, 1<<16)
		for {
			typ, flags, body, err := r.Next()
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("reader error of no class: %v", err)
				}
				return
			}
			derr := decodeByType(V5, typ, flags, body)
			if typ == PUBLISH && derr == nil {
				var p Publish
				if err := DecodePublish(V5, flags, body, &p); err != nil {
					t.Fatal(err)
				}
				b, err := AppendPublish(nil, V5, &p)
				if err != nil {
					t.Fatalf("decoded PUBLISH does not re-encode: %v", err)
				}
				_, f2, body2, err := NewReader(bytes.NewReader(b), 0).Next()
				if err != nil {
					t.Fatal(err)
				}
				var q Publish
				if err := DecodePublish(V5, f2, body2, &q); err != nil {
					t.Fatal(err)
				}
				if q.Topic != p.Topic || !bytes.Equal(q.Payload, p.Payload) || q.PacketID != p.PacketID || q.Props.Len() != p.Props.Len() {
					t.Fatalf("round trip changed the PUBLISH")
				}
			}
			if derr != nil && !errors.Is(derr, ErrMalformed) && !errors.Is(derr, ErrProtocol) {
				t.Fatalf("%s decode error of no class: %v", TypeName(typ), derr)
			}
		}
	})
}
