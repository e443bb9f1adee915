package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeAll311 reads one packet and decodes it by type for MQTT 3.1.1,
// as a 3.1.1 client does.
func decodeAll311(in []byte) error {
	typ, flags, body, err := NewReader(bytes.NewReader(in), 0).Next()
	if err != nil {
		return err
	}
	return decodeByType(V311, typ, flags, body)
}

// decodeByType decodes body as the packet type a client receives.
func decodeByType(v Version, typ, flags byte, body []byte) error {
	var err error
	switch typ {
	case PUBLISH:
		var p Publish
		err = DecodePublish(v, flags, body, &p)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		_, err = DecodeAck(v, typ, body)
	case CONNACK:
		_, err = DecodeConnack(v, body)
	case SUBACK, UNSUBACK:
		_, err = DecodeSubAck(v, typ, body)
	case DISCONNECT:
		_, err = DecodeDisconnect(v, body)
	case AUTH:
		_, err = DecodeAuth(v, body)
	case PINGRESP:
		err = CheckPingresp(v, body)
	default:
		err = protocolErr("a client does not receive %s", TypeName(typ))
	}
	return err
}

// Every rule MQTT 3.1.1 makes for a packet a client receives is enforced,
// with the error class the client acts on.
func TestV311DecodeRejects(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"PUBLISH QoS 3", []byte{0x36, 0x03, 0, 1, 't'}, ErrMalformed},
		{"QoS 0 with DUP", []byte{0x38, 0x03, 0, 1, 't'}, ErrMalformed},
		{"PUBLISH topic runs past the end", []byte{0x30, 0x03, 0, 9, 't'}, ErrMalformed},
		{"PUBLISH without a topic length", []byte{0x30, 0x01, 0}, ErrMalformed},
		{"PUBLISH topic not UTF-8", []byte{0x30, 0x03, 0, 1, 0xFF}, ErrMalformed},
		{"PUBLISH topic a UTF-16 surrogate", []byte{0x30, 0x05, 0, 3, 0xED, 0xA0, 0x80}, ErrMalformed},
		{"PUBLISH topic with U+0000", []byte{0x30, 0x04, 0, 2, 'a', 0x00}, ErrMalformed},
		{"PUBLISH topic with +", []byte{0x30, 0x05, 0, 3, 'a', '/', '+'}, ErrProtocol},
		{"PUBLISH topic with #", []byte{0x30, 0x03, 0, 1, '#'}, ErrProtocol},
		{"PUBLISH empty topic", []byte{0x30, 0x04, 0, 0, 'p', 'l'}, ErrProtocol},
		{"QoS 1 PUBLISH with id 0", []byte{0x32, 0x05, 0, 1, 't', 0, 0}, ErrProtocol},
		{"QoS 2 PUBLISH without an id", []byte{0x34, 0x04, 0, 1, 't', 0}, ErrMalformed},
		{"PUBACK with flags", []byte{0x41, 0x02, 0, 1}, ErrMalformed},
		{"PUBREL without its flags", []byte{0x60, 0x02, 0, 1}, ErrMalformed},
		{"PUBACK id 0", []byte{0x40, 0x02, 0, 0}, ErrProtocol},
		{"PUBACK with a reason code", []byte{0x40, 0x03, 0, 1, 0}, ErrMalformed},
		{"PUBREC of 1 byte", []byte{0x50, 0x01, 0}, ErrMalformed},
		{"PUBCOMP with properties", []byte{0x70, 0x04, 0, 1, 0, 0}, ErrMalformed},
		{"CONNACK reserved flags", []byte{0x20, 0x02, 0x02, 0}, ErrMalformed},
		{"CONNACK of 1 byte", []byte{0x20, 0x01, 0}, ErrMalformed},
		{"CONNACK with properties", []byte{0x20, 0x03, 0, 0, 0}, ErrMalformed},
		{"CONNACK return code 6", []byte{0x20, 0x02, 0, 6}, ErrProtocol},
		{"CONNACK MQTT 5 reason code", []byte{0x20, 0x02, 0, 0x87}, ErrProtocol},
		{"CONNACK refusal with session present", []byte{0x20, 0x02, 1, 5}, ErrProtocol},
		{"SUBACK without return codes", []byte{0x90, 0x02, 0, 1}, ErrProtocol},
		{"SUBACK id 0", []byte{0x90, 0x03, 0, 0, 0}, ErrProtocol},
		{"SUBACK return code 3", []byte{0x90, 0x04, 0, 1, 0, 3}, ErrProtocol},
		{"SUBACK MQTT 5 reason code", []byte{0x90, 0x03, 0, 1, 0x87}, ErrProtocol},
		{"SUBACK with flags", []byte{0x92, 0x03, 0, 1, 0}, ErrMalformed},
		{"UNSUBACK with a reason code", []byte{0xB0, 0x03, 0, 1, 0}, ErrMalformed},
		{"UNSUBACK id 0", []byte{0xB0, 0x02, 0, 0}, ErrProtocol},
		{"UNSUBACK of 1 byte", []byte{0xB0, 0x01, 0}, ErrMalformed},
		{"PINGRESP with a body", []byte{0xD0, 0x01, 0}, ErrMalformed},
		{"DISCONNECT from the server", []byte{0xE0, 0x00}, ErrProtocol},
		{"DISCONNECT with a reason code", []byte{0xE0, 0x01, 0x8E}, ErrProtocol},
		{"AUTH", []byte{0xF0, 0x00}, ErrProtocol},
		{"remaining length of 5 bytes", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, ErrMalformed},
		{"remaining length not minimal", []byte{0xD0, 0x80, 0x00}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := decodeAll311(c.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, c.want)
		})
	}
	// What MQTT 5 reads as a PUBLISH property block is payload in 3.1.1.
	var p Publish
	require.NoError(t, DecodePublish(V311, 0, []byte{0, 1, 't', 2, 0x01, 1}, &p))
	assert.Equal(t, Publish{Topic: "t", Payload: []byte{2, 0x01, 1}}, p)
}

// Each MQTT 5 feature asked of the 3.1.1 codec is refused with an error
// that names it, before anything is written.
func TestV311EncodeRejectsV5Features(t *testing.T) {
	withProp := func(id byte) Props {
		var p Props
		p.Mark(id)
		switch id {
		case PropContentType:
			p.ContentType = "text/plain"
		case PropUser:
			p.User = []UserProperty{{"k", "v"}}
		case PropSessionExpiry:
			p.SessionExpiry = 60
		case PropReasonString:
			p.ReasonString = "why"
		case PropSubscriptionID:
			p.SubscriptionIDs = []int{1}
		case PropWillDelay:
			p.WillDelay = 5
		}
		return p
	}
	pub := Publish{Topic: "t", QoS: 1, PacketID: 1}
	pub.Props = withProp(PropContentType)
	aliased := Publish{Topic: "", QoS: 0}
	aliased.Props.Mark(PropTopicAlias)
	aliased.Props.TopicAlias = 1
	will := &Will{Topic: "w", Props: withProp(PropWillDelay)}
	cases := []struct {
		name   string
		encode func(dst []byte) ([]byte, error)
		names  string // in the error
	}{
		{"PUBLISH property", func(dst []byte) ([]byte, error) { return AppendPublish(dst, V311, &pub) }, "Content Type"},
		{"PUBLISH property, checked", func(dst []byte) ([]byte, error) { return AppendCheckedPublish(dst, V311, &pub) }, "Content Type"},
		{"PUBLISH property, size", func(dst []byte) ([]byte, error) { _, err := PublishSize(V311, &pub); return dst, err }, "Content Type"},
		{"PUBLISH topic alias", func(dst []byte) ([]byte, error) { return AppendPublish(dst, V311, &aliased) }, "Topic Alias"},
		{"PUBACK reason code", func(dst []byte) ([]byte, error) {
			return AppendAck(dst, V311, &Ack{Type: PUBACK, PacketID: 1, Reason: 0x10})
		}, "reason code 0x10"},
		{"PUBREL reason code", func(dst []byte) ([]byte, error) {
			return AppendAck(dst, V311, &Ack{Type: PUBREL, PacketID: 1, Reason: 0x92})
		}, "reason code 0x92"},
		{"PUBCOMP property", func(dst []byte) ([]byte, error) {
			return AppendAck(dst, V311, &Ack{Type: PUBCOMP, PacketID: 1, Props: withProp(PropReasonString)})
		}, "Reason String"},
		{"CONNECT property", func(dst []byte) ([]byte, error) {
			return AppendConnect(dst, V311, &Connect{ClientID: "c", CleanStart: true, Props: withProp(PropSessionExpiry)})
		}, "Session Expiry Interval"},
		{"will property", func(dst []byte) ([]byte, error) {
			return AppendConnect(dst, V311, &Connect{ClientID: "c", CleanStart: true, Will: will})
		}, "Will Delay Interval"},
		{"SUBSCRIBE property", func(dst []byte) ([]byte, error) {
			return AppendSubscribe(dst, V311, &Subscribe{PacketID: 1, Props: withProp(PropSubscriptionID), Subscriptions: []Subscription{{Filter: "a"}}})
		}, "Subscription Identifier"},
		{"No Local", func(dst []byte) ([]byte, error) {
			return AppendSubscribe(dst, V311, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a"}, {Filter: "b", NoLocal: true}}})
		}, "No Local"},
		{"Retain As Published", func(dst []byte) ([]byte, error) {
			return AppendSubscribe(dst, V311, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", RetainAsPublished: true}}})
		}, "Retain As Published"},
		{"Retain Handling", func(dst []byte) ([]byte, error) {
			return AppendSubscribe(dst, V311, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", RetainHandling: 2}}})
		}, "Retain Handling"},
		{"UNSUBSCRIBE property", func(dst []byte) ([]byte, error) {
			return AppendUnsubscribe(dst, V311, &Unsubscribe{PacketID: 1, Props: withProp(PropUser), Filters: []string{"a"}})
		}, "User Property"},
		{"DISCONNECT reason code", func(dst []byte) ([]byte, error) {
			return AppendDisconnect(dst, V311, &Disconnect{Reason: 0x81})
		}, "reason code 0x81"},
		{"DISCONNECT property", func(dst []byte) ([]byte, error) {
			return AppendDisconnect(dst, V311, &Disconnect{Props: withProp(PropSessionExpiry)})
		}, "Session Expiry Interval"},
		{"AUTH", func(dst []byte) ([]byte, error) { return AppendAuth(dst, V311, &Auth{}) }, "AUTH"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.encode([]byte("keep"))
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), c.names)
			assert.Contains(t, err.Error(), "MQTT 5")
			assert.Equal(t, []byte("keep"), b, "nothing appended on error")
		})
	}
}

// What MQTT 3.1.1 forbids a client to send is refused.
func TestV311EncodeRejects(t *testing.T) {
	_, err := AppendConnect(nil, V311, &Connect{ClientID: "", CleanStart: false})
	assert.ErrorIs(t, err, ErrInvalid, "an empty client identifier needs Clean Session [MQTT-3.1.3-7]")
	_, err = AppendConnect(nil, V5, &Connect{ClientID: "", CleanStart: false})
	assert.NoError(t, err, "which MQTT 5 allows")

	_, err = AppendConnect(nil, V311, &Connect{ClientID: "c", CleanStart: true, Password: []byte("secret"), HasPassword: true})
	require.ErrorIs(t, err, ErrInvalid, "a password needs a user name [MQTT-3.1.2-22]")
	assert.NotContains(t, err.Error(), "secret")
	_, err = AppendConnect(nil, V5, &Connect{ClientID: "c", CleanStart: true, Password: []byte("secret"), HasPassword: true})
	assert.NoError(t, err, "which MQTT 5 allows")

	_, err = AppendConnect(nil, V311, &Connect{ClientID: "c", CleanStart: true, Will: &Will{Topic: "w", QoS: 3}})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = AppendConnect(nil, V311, &Connect{ClientID: "c\x00", CleanStart: true})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = AppendConnect(nil, V311, &Connect{ClientID: "c", CleanStart: true, Username: "\xff", HasUsername: true})
	assert.ErrorIs(t, err, ErrInvalid)

	_, err = AppendSubscribe(nil, V311, &Subscribe{PacketID: 1})
	assert.ErrorIs(t, err, ErrInvalid, "SUBSCRIBE without a filter [MQTT-3.8.3-3]")
	_, err = AppendUnsubscribe(nil, V311, &Unsubscribe{PacketID: 1})
	assert.ErrorIs(t, err, ErrInvalid, "UNSUBSCRIBE without a filter [MQTT-3.10.3-2]")
	_, err = AppendSubscribe(nil, V311, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 3}}})
	assert.ErrorIs(t, err, ErrInvalid)
}

// The rules both versions share for what a client sends: topic names and
// filters ([MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.3-1], [MQTT-3.3.2-2]),
// UTF-8 ([MQTT-1.5.3-1/2]), non-zero packet identifiers ([MQTT-2.3.1-1]).
func TestEncodeTopicAndIDRules(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		for _, topic := range []string{"", "a/+", "#", "a/#/b", "a\x00", "\xc3\x28", "\xed\xa0\x80"} {
			_, err := AppendPublish(nil, v, &Publish{Topic: topic})
			assert.ErrorIs(t, err, ErrInvalid, "%s PUBLISH to %q", v, topic)
			_, err = PublishSize(v, &Publish{Topic: topic})
			assert.ErrorIs(t, err, ErrInvalid, "%s PublishSize of %q", v, topic)
			_, err = AppendConnect(nil, v, &Connect{ClientID: "c", CleanStart: true, Will: &Will{Topic: topic}})
			assert.ErrorIs(t, err, ErrInvalid, "%s will topic %q", v, topic)
		}
		for _, filter := range []string{"", "a/b#", "a/#/b", "#/a", "a+", "+a/b", "a/b+/c", "a\x00", "\xff"} {
			_, err := AppendSubscribe(nil, v, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: filter}}})
			assert.ErrorIs(t, err, ErrInvalid, "%s SUBSCRIBE to %q", v, filter)
			_, err = AppendUnsubscribe(nil, v, &Unsubscribe{PacketID: 1, Filters: []string{"ok", filter}})
			assert.ErrorIs(t, err, ErrInvalid, "%s UNSUBSCRIBE from %q", v, filter)
		}
		for _, filter := range []string{"#", "+", "/", "+/+", "a/+/b", "a/#", "/#", "$SYS/#", "$share/g/a/+"} {
			_, err := AppendSubscribe(nil, v, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: filter}}})
			assert.NoError(t, err, "%s SUBSCRIBE to %q", v, filter)
		}
		_, err := AppendPublish(nil, v, &Publish{Topic: "t", Dup: true})
		assert.ErrorIs(t, err, ErrInvalid, "%s QoS 0 PUBLISH with DUP [MQTT-3.3.1-2]", v)
		_, err = AppendPublish(nil, v, &Publish{Topic: "t", QoS: 1})
		assert.ErrorIs(t, err, ErrInvalid, "%s QoS 1 PUBLISH with packet identifier 0", v)
		_, err = PublishSize(v, &Publish{Topic: "t", QoS: 1})
		assert.NoError(t, err, "%s: PublishSize comes before the packet identifier", v)
		_, err = AppendAck(nil, v, &Ack{Type: PUBACK})
		assert.ErrorIs(t, err, ErrInvalid, "%s PUBACK with packet identifier 0", v)
		_, err = AppendAck(nil, v, &Ack{Type: PUBLISH, PacketID: 1})
		assert.ErrorIs(t, err, ErrInvalid, "%s: AppendAck of a PUBLISH", v)
		_, err = AppendSubscribe(nil, v, &Subscribe{Subscriptions: []Subscription{{Filter: "a"}}})
		assert.ErrorIs(t, err, ErrInvalid, "%s SUBSCRIBE with packet identifier 0", v)
		_, err = AppendUnsubscribe(nil, v, &Unsubscribe{Filters: []string{"a"}})
		assert.ErrorIs(t, err, ErrInvalid, "%s UNSUBSCRIBE with packet identifier 0", v)
	}
	// An MQTT 5 PUBLISH may leave its topic empty for a Topic Alias.
	p := Publish{}
	p.Props.Mark(PropTopicAlias)
	p.Props.TopicAlias = 1
	_, err := AppendPublish(nil, V5, &p)
	assert.NoError(t, err)
}

// A Version other than 4 and 5 is refused by every function that takes
// one, with ErrInvalid.
func TestUnknownVersion(t *testing.T) {
	for _, v := range []Version{0, 3, 6, 255} {
		assert.Contains(t, v.String(), "protocol level")
		errs := map[string]error{}
		_, errs["PublishSize"] = PublishSize(v, &Publish{Topic: "t"})
		_, errs["AppendPublish"] = AppendPublish(nil, v, &Publish{Topic: "t"})
		_, errs["AppendCheckedPublish"] = AppendCheckedPublish(nil, v, &Publish{Topic: "t"})
		errs["DecodePublish"] = DecodePublish(v, 0, []byte{0, 1, 't'}, &Publish{})
		_, errs["AppendAck"] = AppendAck(nil, v, &Ack{Type: PUBACK, PacketID: 1})
		_, errs["DecodeAck"] = DecodeAck(v, PUBACK, []byte{0, 1})
		_, errs["AppendConnect"] = AppendConnect(nil, v, &Connect{ClientID: "c", CleanStart: true})
		_, errs["DecodeConnack"] = DecodeConnack(v, []byte{0, 0})
		_, errs["AppendSubscribe"] = AppendSubscribe(nil, v, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a"}}})
		_, errs["AppendUnsubscribe"] = AppendUnsubscribe(nil, v, &Unsubscribe{PacketID: 1, Filters: []string{"a"}})
		_, errs["DecodeSubAck"] = DecodeSubAck(v, SUBACK, []byte{0, 1, 0})
		_, errs["AppendDisconnect"] = AppendDisconnect(nil, v, &Disconnect{})
		_, errs["DecodeDisconnect"] = DecodeDisconnect(v, nil)
		_, errs["AppendAuth"] = AppendAuth(nil, v, &Auth{})
		_, errs["DecodeAuth"] = DecodeAuth(v, nil)
		errs["CheckPingresp"] = CheckPingresp(v, nil)
		errs["CheckCount"] = (&SubAck{Type: UNSUBACK, PacketID: 1}).CheckCount(v, 1)
		for name, err := range errs {
			assert.ErrorIs(t, err, ErrInvalid, "%s for %s", name, v)
		}
	}
	assert.Equal(t, "MQTT 3.1.1", V311.String())
	assert.Equal(t, "MQTT 5", V5.String())
}

// A 3.1.1 CONNACK refusal reads as the MQTT 5 reason code that says the
// same, with the return code kept.
func TestConnackReturnCodes(t *testing.T) {
	want := map[byte]byte{0: 0x00, 1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}
	for rc := 0; rc < 256; rc++ {
		reason, ok := ReasonForReturnCode(byte(rc))
		w, known := want[byte(rc)]
		assert.Equal(t, known, ok, "return code %d", rc)
		assert.Equal(t, w, reason, "return code %d", rc)
		c, err := DecodeConnack(V311, []byte{0, byte(rc)})
		if !known {
			assert.ErrorIs(t, err, ErrProtocol, "return code %d", rc)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, Connack{Reason: w, ReturnCode: byte(rc)}, c)
	}
	// In MQTT 5 the reason code is the byte received, ReturnCode 0.
	c, err := DecodeConnack(V5, []byte{0, 0x87, 0})
	require.NoError(t, err)
	assert.Equal(t, Connack{Reason: 0x87}, c)
}

// A SUBACK answers each filter of its SUBSCRIBE; a 3.1.1 UNSUBACK carries
// no reason code to count.
func TestSubAckCheckCount(t *testing.T) {
	for _, v := range []Version{V311, V5} {
		body := []byte{0, 1, 0, 1}
		if v == V5 {
			body = []byte{0, 1, 0, 0, 1}
		}
		a, err := DecodeSubAck(v, SUBACK, body)
		require.NoError(t, err)
		assert.NoError(t, a.CheckCount(v, 2))
		assert.ErrorIs(t, a.CheckCount(v, 1), ErrProtocol, "%s: two codes for one filter", v)
		assert.ErrorIs(t, a.CheckCount(v, 3), ErrProtocol, "%s: two codes for three filters", v)
	}
	a, err := DecodeSubAck(V5, UNSUBACK, []byte{0, 1, 0, 0x11})
	require.NoError(t, err)
	assert.NoError(t, a.CheckCount(V5, 1))
	assert.ErrorIs(t, a.CheckCount(V5, 2), ErrProtocol)
}

// FuzzDecode311 feeds arbitrary bytes to the reader and every MQTT 3.1.1
// decoder: no panic, and every error is one of the package's classes or a
// cut stream. A PUBLISH that decodes re-encodes to the same bytes.
func FuzzDecode311(f *testing.F) {
	for _, p := range publishes311()[:9] {
		b, _ := AppendPublish(nil, V311, &p)
		f.Add(b)
	}
	for _, seed := range [][]byte{
		{0x20, 0x02, 0, 0}, {0x20, 0x02, 1, 0}, {0x20, 0x02, 0, 5},
		{0x40, 0x02, 0, 1}, {0x50, 0x02, 0xFF, 0xFF}, {0x62, 0x02, 0, 1}, {0x70, 0x02, 1, 0},
		{0x90, 0x05, 0, 1, 0, 1, 0x80}, {0xB0, 0x02, 0, 1}, {0xD0, 0x00}, {0xE0, 0x00}, {0xF0, 0x00},
	} {
		f.Add(seed)
	}
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
			derr := decodeByType(V311, typ, flags, body)
			if derr != nil && !errors.Is(derr, ErrMalformed) && !errors.Is(derr, ErrProtocol) {
				t.Fatalf("%s decode error of no class: %v", TypeName(typ), derr)
			}
			if derr != nil {
				continue
			}
			// What decodes re-encodes to the bytes it came from.
			whole := append(appendHeader(nil, typ, flags, len(body)), body...)
			var again []byte
			switch typ {
			case PUBLISH:
				var p Publish
				if err := DecodePublish(V311, flags, body, &p); err != nil {
					t.Fatal(err)
				}
				again, err = AppendPublish(nil, V311, &p)
			case PUBACK, PUBREC, PUBREL, PUBCOMP:
				a, _ := DecodeAck(V311, typ, body)
				again, err = AppendAck(nil, V311, &a)
			default:
				continue
			}
			if err != nil {
				t.Fatalf("decoded %s does not re-encode: %v", TypeName(typ), err)
			}
			if !bytes.Equal(again, whole) {
				t.Fatalf("%s re-encoded to % x, from % x", TypeName(typ), again, whole)
			}
		}
	})
}
