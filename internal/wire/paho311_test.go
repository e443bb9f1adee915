package wire

import (
	"bytes"
	"strings"
	"testing"

	mqtt3 "github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The MQTT 3.1.1 codec is checked against paho.mqtt.golang's packets
// package: for every packet both can express, the same bytes, and each
// decodes the other's to the same fields.

// pahoBytes encodes cp with paho.
func pahoBytes(t *testing.T, cp mqtt3.ControlPacket) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, cp.Write(&b))
	return b.Bytes()
}

// pahoRead decodes one packet with paho; b must hold exactly that packet.
func pahoRead(t *testing.T, b []byte) mqtt3.ControlPacket {
	t.Helper()
	r := bytes.NewReader(b)
	cp, err := mqtt3.ReadPacket(r)
	require.NoError(t, err)
	require.Zero(t, r.Len(), "paho left bytes unread")
	return cp
}

// publishes311 are the PUBLISH packets of the differential tests.
func publishes311() []Publish {
	return []Publish{
		{Topic: "t"},
		{Topic: "t", Retain: true, Payload: []byte{}},
		{Topic: "a/b/c", QoS: 1, PacketID: 1, Payload: []byte("hello")},
		{Topic: "a/b", QoS: 1, PacketID: 2, Dup: true, Payload: []byte{0}},
		{Topic: "x", QoS: 2, PacketID: 65535, Dup: true, Retain: true, Payload: []byte("max id")},
		{Topic: "é/ü/日本", QoS: 2, PacketID: 256, Payload: []byte("utf-8")},
		{Topic: "$SYS/broker/uptime", Payload: []byte("1")},
		{Topic: "a", Payload: bytes.Repeat([]byte{1}, 124)},     // Remaining Length 127: one byte
		{Topic: "a", Payload: bytes.Repeat([]byte{2}, 125)},     // 128: two bytes
		{Topic: "a", Payload: bytes.Repeat([]byte{3}, 16380)},   // 16,383: two bytes
		{Topic: "a", Payload: bytes.Repeat([]byte{4}, 16381)},   // 16,384: three bytes
		{Topic: "a", Payload: bytes.Repeat([]byte{5}, 2097150)}, // 2,097,153: four bytes
		{Topic: strings.Repeat("long/", 13107), QoS: 1, PacketID: 7, Payload: []byte("65,535-byte topic")},
	}
}

func pahoPublish(p *Publish) *mqtt3.PublishPacket {
	pp := mqtt3.NewControlPacket(mqtt3.Publish).(*mqtt3.PublishPacket)
	pp.TopicName, pp.Qos, pp.Retain, pp.Dup, pp.MessageID, pp.Payload = p.Topic, p.QoS, p.Retain, p.Dup, p.PacketID, p.Payload
	return pp
}

func TestPaho311Publish(t *testing.T) {
	for i, p := range publishes311() {
		ours, err := AppendPublish(nil, V311, &p)
		require.NoError(t, err, "case %d", i)
		theirs := pahoBytes(t, pahoPublish(&p))
		require.True(t, bytes.Equal(theirs, ours), "case %d: paho's bytes differ from ours", i)
		size, err := PublishSize(V311, &p)
		require.NoError(t, err)
		assert.Equal(t, len(ours), size, "case %d: PublishSize", i)

		pp := pahoRead(t, ours).(*mqtt3.PublishPacket)
		assert.Equal(t, p.Topic, pp.TopicName, "case %d", i)
		assert.Equal(t, p.QoS, pp.Qos, "case %d", i)
		assert.Equal(t, p.Retain, pp.Retain, "case %d", i)
		assert.Equal(t, p.Dup, pp.Dup, "case %d", i)
		assert.Equal(t, p.PacketID, pp.MessageID, "case %d", i)
		assert.True(t, bytes.Equal(p.Payload, pp.Payload), "case %d: payload", i)

		typ, flags, body := read(t, theirs)
		require.Equal(t, PUBLISH, typ)
		var got Publish
		require.NoError(t, DecodePublish(V311, flags, body, &got), "case %d", i)
		want := p
		if want.Payload == nil {
			want.Payload = []byte{}
		}
		assert.Equal(t, want, got, "case %d", i)
	}
}

func TestPaho311Acks(t *testing.T) {
	types := map[byte]byte{PUBACK: mqtt3.Puback, PUBREC: mqtt3.Pubrec, PUBREL: mqtt3.Pubrel, PUBCOMP: mqtt3.Pubcomp}
	for typ, ptyp := range types {
		for _, id := range []uint16{1, 255, 256, 65535} {
			a := Ack{Type: typ, PacketID: id}
			ours, err := AppendAck(nil, V311, &a)
			require.NoError(t, err)
			pa := mqtt3.NewControlPacket(ptyp)
			switch p := pa.(type) {
			case *mqtt3.PubackPacket:
				p.MessageID = id
			case *mqtt3.PubrecPacket:
				p.MessageID = id
			case *mqtt3.PubrelPacket:
				p.MessageID = id
			case *mqtt3.PubcompPacket:
				p.MessageID = id
			}
			theirs := pahoBytes(t, pa)
			require.Equal(t, theirs, ours, "%s %d", TypeName(typ), id)
			assert.Len(t, ours, AckSize)

			back := pahoRead(t, ours)
			assert.Equal(t, ptyp, pahoHeader(back).MessageType)
			assert.Equal(t, id, back.Details().MessageID)

			gt, _, body := read(t, theirs)
			require.Equal(t, typ, gt)
			got, err := DecodeAck(V311, gt, body)
			require.NoError(t, err)
			assert.Equal(t, a, got)
		}
	}
}

// pahoHeader returns the fixed header paho decoded.
func pahoHeader(cp mqtt3.ControlPacket) mqtt3.FixedHeader {
	switch p := cp.(type) {
	case *mqtt3.ConnectPacket:
		return p.FixedHeader
	case *mqtt3.ConnackPacket:
		return p.FixedHeader
	case *mqtt3.PublishPacket:
		return p.FixedHeader
	case *mqtt3.PubackPacket:
		return p.FixedHeader
	case *mqtt3.PubrecPacket:
		return p.FixedHeader
	case *mqtt3.PubrelPacket:
		return p.FixedHeader
	case *mqtt3.PubcompPacket:
		return p.FixedHeader
	case *mqtt3.SubscribePacket:
		return p.FixedHeader
	case *mqtt3.SubackPacket:
		return p.FixedHeader
	case *mqtt3.UnsubscribePacket:
		return p.FixedHeader
	case *mqtt3.UnsubackPacket:
		return p.FixedHeader
	case *mqtt3.PingreqPacket:
		return p.FixedHeader
	case *mqtt3.PingrespPacket:
		return p.FixedHeader
	case *mqtt3.DisconnectPacket:
		return p.FixedHeader
	}
	panic("unknown paho packet")
}

func TestPaho311Connect(t *testing.T) {
	cases := map[string]Connect{
		"minimal":                 {ClientID: "c", CleanStart: true},
		"keep alive, resumed":     {ClientID: "client-1", KeepAlive: 65535},
		"empty client id":         {CleanStart: true, KeepAlive: 30},
		"will QoS 2 retain":       {ClientID: "w", KeepAlive: 60, Will: &Will{Topic: "clients/w/status", Payload: []byte("gone"), QoS: 2, Retain: true}},
		"will empty payload":      {ClientID: "w", Will: &Will{Topic: "t", QoS: 0}},
		"will QoS 1, user only":   {ClientID: "u", Username: "alice", HasUsername: true, Will: &Will{Topic: "a/b", Payload: []byte{0, 1}, QoS: 1}},
		"user and password":       {ClientID: "up", CleanStart: true, Username: "bob", HasUsername: true, Password: []byte("s3cr3t\x00"), HasPassword: true},
		"empty user and password": {ClientID: "e", Username: "", HasUsername: true, Password: []byte{}, HasPassword: true},
		"long client id":          {ClientID: strings.Repeat("i", MaxString), CleanStart: true},
		"everything": {ClientID: "é", KeepAlive: 1, CleanStart: true, Username: "ü", HasUsername: true, Password: bytes.Repeat([]byte{0xFF}, 300), HasPassword: true,
			Will: &Will{Topic: "日本/x", Payload: bytes.Repeat([]byte{7}, 1000), QoS: 2}},
	}
	for name, c := range cases {
		ours, err := AppendConnect(nil, V311, &c)
		require.NoError(t, err, name)

		pc := mqtt3.NewControlPacket(mqtt3.Connect).(*mqtt3.ConnectPacket)
		pc.ProtocolName, pc.ProtocolVersion = "MQTT", 4
		pc.ClientIdentifier, pc.Keepalive, pc.CleanSession = c.ClientID, c.KeepAlive, c.CleanStart
		pc.UsernameFlag, pc.Username, pc.PasswordFlag, pc.Password = c.HasUsername, c.Username, c.HasPassword, c.Password
		if w := c.Will; w != nil {
			pc.WillFlag, pc.WillTopic, pc.WillMessage, pc.WillQos, pc.WillRetain = true, w.Topic, w.Payload, w.QoS, w.Retain
		}
		require.Equal(t, pahoBytes(t, pc), ours, name)

		back := pahoRead(t, ours).(*mqtt3.ConnectPacket)
		assert.Equal(t, byte(mqtt3.Accepted), back.Validate(), name)
		assert.Equal(t, "MQTT", back.ProtocolName, name)
		assert.Equal(t, byte(4), back.ProtocolVersion, name)
		assert.Equal(t, c.ClientID, back.ClientIdentifier, name)
		assert.Equal(t, c.KeepAlive, back.Keepalive, name)
		assert.Equal(t, c.CleanStart, back.CleanSession, name)
		assert.Equal(t, c.HasUsername, back.UsernameFlag, name)
		assert.Equal(t, c.Username, back.Username, name)
		assert.Equal(t, c.HasPassword, back.PasswordFlag, name)
		assert.True(t, bytes.Equal(c.Password, back.Password), name)
		assert.Equal(t, c.Will != nil, back.WillFlag, name)
		if w := c.Will; w != nil {
			assert.Equal(t, w.Topic, back.WillTopic, name)
			assert.True(t, bytes.Equal(w.Payload, back.WillMessage), name)
			assert.Equal(t, w.QoS, back.WillQos, name)
			assert.Equal(t, w.Retain, back.WillRetain, name)
		} else {
			assert.Zero(t, back.WillQos, name)
			assert.False(t, back.WillRetain, name)
		}
	}
}

func TestPaho311Subscribe(t *testing.T) {
	many := Subscribe{PacketID: 65535}
	for i := range 200 {
		many.Subscriptions = append(many.Subscriptions, Subscription{Filter: "dev/" + strings.Repeat("x", i) + "/+/#", QoS: byte(i % 3)})
	}
	cases := map[string]Subscribe{
		"one":       {PacketID: 1, Subscriptions: []Subscription{{Filter: "a/b"}}},
		"wildcards": {PacketID: 2, Subscriptions: []Subscription{{Filter: "#", QoS: 2}, {Filter: "+/+/x", QoS: 1}, {Filter: "a/#"}, {Filter: "$SYS/#", QoS: 1}, {Filter: "+"}, {Filter: "/"}}},
		"utf-8":     {PacketID: 300, Subscriptions: []Subscription{{Filter: "é/ü/日本/+", QoS: 2}}},
		"many":      many,
		"long":      {PacketID: 9, Subscriptions: []Subscription{{Filter: strings.Repeat("f", MaxString), QoS: 1}}},
	}
	for name, s := range cases {
		ours, err := AppendSubscribe(nil, V311, &s)
		require.NoError(t, err, name)
		assert.Len(t, ours, SubscribeSize(V311, &s), name)

		ps := mqtt3.NewControlPacket(mqtt3.Subscribe).(*mqtt3.SubscribePacket)
		ps.MessageID = s.PacketID
		for _, f := range s.Subscriptions {
			ps.Topics = append(ps.Topics, f.Filter)
			ps.Qoss = append(ps.Qoss, f.QoS)
		}
		require.Equal(t, pahoBytes(t, ps), ours, name)

		back := pahoRead(t, ours).(*mqtt3.SubscribePacket)
		assert.Equal(t, byte(1), back.Qos, "%s: SUBSCRIBE's fixed header flags are 0010", name)
		assert.Equal(t, s.PacketID, back.MessageID, name)
		assert.Equal(t, ps.Topics, back.Topics, name)
		assert.Equal(t, ps.Qoss, back.Qoss, name)
	}

	unsubs := map[string]Unsubscribe{
		"one":   {PacketID: 1, Filters: []string{"a/b"}},
		"many":  {PacketID: 65535, Filters: strings.Split(strings.Repeat("x/+/#,", 300)+"last", ",")},
		"utf-8": {PacketID: 77, Filters: []string{"é/#", "日本"}},
	}
	for name, u := range unsubs {
		ours, err := AppendUnsubscribe(nil, V311, &u)
		require.NoError(t, err, name)
		pu := mqtt3.NewControlPacket(mqtt3.Unsubscribe).(*mqtt3.UnsubscribePacket)
		pu.MessageID, pu.Topics = u.PacketID, u.Filters
		require.Equal(t, pahoBytes(t, pu), ours, name)
		back := pahoRead(t, ours).(*mqtt3.UnsubscribePacket)
		assert.Equal(t, byte(1), back.Qos, "%s: UNSUBSCRIBE's fixed header flags are 0010", name)
		assert.Equal(t, u.PacketID, back.MessageID, name)
		assert.Equal(t, u.Filters, back.Topics, name)
	}
}

// PINGREQ and DISCONNECT, the client's packets without a body.
func TestPaho311NoBody(t *testing.T) {
	assert.Equal(t, pahoBytes(t, mqtt3.NewControlPacket(mqtt3.Pingreq)), Pingreq)
	_ = pahoRead(t, Pingreq).(*mqtt3.PingreqPacket)

	ours, err := AppendDisconnect(nil, V311, &Disconnect{})
	require.NoError(t, err)
	assert.Equal(t, pahoBytes(t, mqtt3.NewControlPacket(mqtt3.Disconnect)), ours)
	_ = pahoRead(t, ours).(*mqtt3.DisconnectPacket)

	theirs := pahoBytes(t, mqtt3.NewControlPacket(mqtt3.Pingresp))
	typ, _, body := read(t, theirs)
	require.Equal(t, PINGRESP, typ)
	assert.NoError(t, CheckPingresp(V311, body))
}

// What a server sends: paho's encoding decodes to the same fields.
func TestPaho311ServerPackets(t *testing.T) {
	for rc := range byte(6) {
		for _, sp := range []bool{false, true} {
			if rc != 0 && sp {
				continue // refused with Session Present: see TestV311DecodeRejects
			}
			pc := mqtt3.NewControlPacket(mqtt3.Connack).(*mqtt3.ConnackPacket)
			pc.ReturnCode, pc.SessionPresent = rc, sp
			typ, _, body := read(t, pahoBytes(t, pc))
			require.Equal(t, CONNACK, typ)
			got, err := DecodeConnack(V311, body)
			require.NoError(t, err, "return code %d", rc)
			want, _ := ReasonForReturnCode(rc)
			assert.Equal(t, Connack{SessionPresent: sp, Reason: want, ReturnCode: rc}, got)
		}
	}

	many := make([]byte, 500)
	for i := range many {
		many[i] = []byte{0, 1, 2, 0x80}[i%4]
	}
	for _, codes := range [][]byte{{0}, {1}, {2}, {0x80}, {0, 1, 2, 0x80}, many} {
		ps := mqtt3.NewControlPacket(mqtt3.Suback).(*mqtt3.SubackPacket)
		ps.MessageID, ps.ReturnCodes = 65535, codes
		typ, _, body := read(t, pahoBytes(t, ps))
		require.Equal(t, SUBACK, typ)
		got, err := DecodeSubAck(V311, typ, body)
		require.NoError(t, err)
		assert.Equal(t, SubAck{Type: SUBACK, PacketID: 65535, Reasons: codes}, got)
		assert.NoError(t, got.CheckCount(V311, len(codes)))
	}

	pu := mqtt3.NewControlPacket(mqtt3.Unsuback).(*mqtt3.UnsubackPacket)
	pu.MessageID = 4242
	typ, _, body := read(t, pahoBytes(t, pu))
	require.Equal(t, UNSUBACK, typ)
	got, err := DecodeSubAck(V311, typ, body)
	require.NoError(t, err)
	assert.Equal(t, SubAck{Type: UNSUBACK, PacketID: 4242}, got)
	assert.NoError(t, got.CheckCount(V311, 3), "a 3.1.1 UNSUBACK answers any number of filters")
}

// FuzzPaho311Publish encodes a PUBLISH with paho and with us: we decode
// paho's bytes exactly when we would send the same PUBLISH, and then to
// the same fields, our bytes being paho's.
func FuzzPaho311Publish(f *testing.F) {
	f.Add("a/b", []byte("x"), byte(1), false, false, uint16(1))
	f.Add("", []byte{}, byte(0), true, false, uint16(0))
	f.Add("a/+", []byte(nil), byte(2), false, true, uint16(65535))
	f.Add("t", []byte(nil), byte(0), false, true, uint16(0))
	f.Add("é\x00", []byte{0}, byte(3), true, true, uint16(0))
	f.Fuzz(func(t *testing.T, topic string, payload []byte, qos byte, retain, dup bool, id uint16) {
		if len(topic) > MaxString {
			t.Skip("paho cuts the topic to 65,535 bytes; we refuse it")
		}
		p := Publish{Topic: topic, Payload: payload, QoS: qos & 3, Retain: retain, Dup: dup}
		if p.QoS > 0 {
			p.PacketID = id
		}
		var b bytes.Buffer
		if err := pahoPublish(&p).Write(&b); err != nil {
			t.Fatal(err)
		}
		theirs := b.Bytes()
		ours, encErr := AppendPublish(nil, V311, &p)
		var got Publish
		_, flags, body, decErr := NewReader(bytes.NewReader(theirs), 0).Next()
		if decErr == nil {
			decErr = DecodePublish(V311, flags, body, &got)
		}
		if (encErr == nil) != (decErr == nil) {
			t.Fatalf("we encode %+v with %v but decode paho's % x with %v", p, encErr, theirs, decErr)
		}
		if encErr != nil {
			return
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("ours % x, paho's % x", ours, theirs)
		}
		if got.Topic != p.Topic || !bytes.Equal(got.Payload, p.Payload) || got.QoS != p.QoS || got.Retain != p.Retain || got.Dup != p.Dup || got.PacketID != p.PacketID {
			t.Fatalf("decoded %+v from %+v", got, p)
		}
	})
}
