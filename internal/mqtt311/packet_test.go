package mqtt311

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The CONNECT of MQTT 3.1.1 section 3.1, byte by byte: protocol name
// "MQTT", level 4, flags, keep alive, then the payload's fields in order.
func TestConnectBytes(t *testing.T) {
	b, err := Connect{ClientID: "probe", CleanSession: true, KeepAlive: 30}.Bytes()
	require.NoError(t, err)
	assert.Equal(t, []byte{
		0x10, 17, // CONNECT, remaining length
		0, 4, 'M', 'Q', 'T', 'T', 4, // protocol name and level
		0x02,  // Clean Session
		0, 30, // keep alive
		0, 5, 'p', 'r', 'o', 'b', 'e',
	}, b)

	b, err = Connect{ClientID: "c", KeepAlive: 0x0102, Username: "u", Password: []byte("pw"),
		WillTopic: "w", WillPayload: []byte("bye"), WillQoS: 1, WillRetain: true}.Bytes()
	require.NoError(t, err)
	assert.Equal(t, []byte{
		0x10, 28,
		0, 4, 'M', 'Q', 'T', 'T', 4,
		0x80 | 0x40 | 0x20 | 1<<3 | 0x04, // user name, password, Will retain, Will QoS 1, Will
		1, 2,
		0, 1, 'c',
		0, 1, 'w', 0, 3, 'b', 'y', 'e',
		0, 1, 'u',
		0, 2, 'p', 'w',
	}, b)
}

func TestEncodeRefusesWhatMQTTCannotCarry(t *testing.T) {
	long := strings.Repeat("x", 0x10000)
	for name, f := range map[string]func() ([]byte, error){
		"password without user": func() ([]byte, error) { return Connect{ClientID: "c", Password: []byte("p")}.Bytes() },
		"Will QoS 3":            func() ([]byte, error) { return Connect{ClientID: "c", WillTopic: "w", WillQoS: 3}.Bytes() },
		"long client ID":        func() ([]byte, error) { return Connect{ClientID: long}.Bytes() },
		"QoS 3":                 func() ([]byte, error) { return Publish("t", nil, 3, 1, false, false) },
		"QoS 1 without id":      func() ([]byte, error) { return Publish("t", nil, 1, 0, false, false) },
		"long topic":            func() ([]byte, error) { return Publish(long, nil, 0, 0, false, false) },
		"subscribe no filter":   func() ([]byte, error) { return Subscribe(1) },
		"subscribe id 0":        func() ([]byte, error) { return Subscribe(0, Filter{"t", 0}) },
		"subscribe QoS 3":       func() ([]byte, error) { return Subscribe(1, Filter{"t", 3}) },
		"unsubscribe nothing":   func() ([]byte, error) { return Unsubscribe(1) },
		"ack of a PUBLISH":      func() ([]byte, error) { return Ack(PUBLISH, 1) },
	} {
		b, err := f()
		assert.ErrorIs(t, err, ErrInvalid, name)
		assert.Nil(t, b, name)
	}
}

func TestPacketsRoundTrip(t *testing.T) {
	payload := bytes.Repeat([]byte("p"), 200) // a two-byte remaining length
	pub, err := Publish("a/b", payload, 1, 0x1234, true, true)
	require.NoError(t, err)
	assert.Equal(t, byte(0x3B), pub[0], "PUBLISH, DUP, QoS 1, RETAIN")
	assert.Equal(t, []byte{0x80 | 79, 0x01}, pub[1:3], "remaining length 207 (2+3 topic, 2 id, 200 payload) in two bytes")
	sub, err := Subscribe(7, Filter{"a/#", 1}, Filter{"b", 2})
	require.NoError(t, err)
	assert.Equal(t, byte(0x82), sub[0], "SUBSCRIBE has flags 0010")
	unsub, err := Unsubscribe(8, "a/#")
	require.NoError(t, err)
	rel, err := Ack(PUBREL, 9)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x62, 2, 0, 9}, rel)
	puback, err := Ack(PUBACK, 0xABCD)
	require.NoError(t, err)

	var stream bytes.Buffer
	for _, b := range [][]byte{pub, sub, unsub, rel, puback, Pingreq(), Disconnect()} {
		stream.Write(b)
	}
	p, err := ReadPacket(&stream, 0)
	require.NoError(t, err)
	m, err := p.Publish()
	require.NoError(t, err)
	assert.Equal(t, Message{Topic: "a/b", Payload: payload, QoS: 1, Retain: true, Dup: true, PacketID: 0x1234}, m)

	p, err = ReadPacket(&stream, 0)
	require.NoError(t, err)
	assert.Equal(t, SUBSCRIBE, p.Type)
	assert.Equal(t, []byte{0, 7, 0, 3, 'a', '/', '#', 1, 0, 1, 'b', 2}, p.Body)
	p, err = ReadPacket(&stream, 0)
	require.NoError(t, err)
	assert.Equal(t, UNSUBSCRIBE, p.Type)
	id, err := p.PacketID()
	assert.ErrorIs(t, err, ErrMalformed, "UNSUBSCRIBE is not read as an acknowledgement")
	assert.Zero(t, id)
	for _, want := range []struct {
		t  Type
		id uint16
	}{{PUBREL, 9}, {PUBACK, 0xABCD}} {
		p, err = ReadPacket(&stream, 0)
		require.NoError(t, err)
		assert.Equal(t, want.t, p.Type)
		id, err := p.PacketID()
		require.NoError(t, err)
		assert.Equal(t, want.id, id)
	}
	for _, want := range []Type{PINGREQ, DISCONNECT} {
		p, err = ReadPacket(&stream, 0)
		require.NoError(t, err)
		assert.Equal(t, want, p.Type)
		assert.Empty(t, p.Body)
	}
	_, err = ReadPacket(&stream, 0)
	assert.Equal(t, io.EOF, err, "a clean end between packets is io.EOF")
}

func TestReadPacketRefusesBadInput(t *testing.T) {
	cases := map[string]struct {
		in   []byte
		max  int
		want error
	}{
		"five length bytes": {[]byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, ErrMalformed},
		"header cut":        {[]byte{0x30, 0x80}, 0, io.ErrUnexpectedEOF},
		"body cut":          {[]byte{0x40, 2, 0}, 0, io.ErrUnexpectedEOF},
		"over the limit":    {[]byte{0x30, 0x81, 0x01}, 128, ErrTooLarge},
		"over the default":  {[]byte{0x30, 0x81, 0x80, 0x80, 0x01}, 0, ErrTooLarge},
	}
	for name, c := range cases {
		_, err := ReadPacket(bytes.NewReader(c.in), c.max)
		assert.ErrorIs(t, err, c.want, name)
		if errors.Is(c.want, io.ErrUnexpectedEOF) {
			assert.ErrorIs(t, err, ErrMalformed, name)
		}
	}
	p, err := ReadPacket(bytes.NewReader([]byte{0x30, 0x80, 0x01}), 128)
	require.Error(t, err)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "exactly the limit is read, and here cut short")
	assert.Zero(t, p)
}

func TestDecodeRefusesOtherPacketsAndBadBodies(t *testing.T) {
	_, _, err := Packet{Type: CONNACK, Body: []byte{0, 0, 0}}.Connack()
	assert.ErrorIs(t, err, ErrMalformed)
	_, _, err = Packet{Type: CONNACK, Body: []byte{2, 0}}.Connack()
	assert.ErrorIs(t, err, ErrMalformed, "reserved acknowledge flags")
	_, _, err = Packet{Type: PUBACK, Body: []byte{0, 1}}.Connack()
	assert.ErrorIs(t, err, ErrMalformed)
	present, code, err := Packet{Type: CONNACK, Body: []byte{1, 5}}.Connack()
	require.NoError(t, err)
	assert.True(t, present)
	assert.EqualValues(t, 5, code)

	for name, p := range map[string]Packet{
		"not a PUBLISH": {Type: PUBACK, Body: []byte{0, 1}},
		"QoS 3":         {Type: PUBLISH, Flags: 6, Body: []byte{0, 1, 't'}},
		"topic cut":     {Type: PUBLISH, Body: []byte{0, 5, 't'}},
		"no topic":      {Type: PUBLISH, Body: []byte{0}},
		"packet id cut": {Type: PUBLISH, Flags: 2, Body: []byte{0, 1, 't', 0}},
	} {
		_, err := p.Publish()
		assert.ErrorIs(t, err, ErrMalformed, name)
	}
	_, _, err = Packet{Type: SUBACK, Body: []byte{0, 1}}.Suback()
	assert.ErrorIs(t, err, ErrMalformed, "SUBACK without a return code")
	_, _, err = Packet{Type: UNSUBACK, Body: []byte{0, 1}}.Suback()
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = Packet{Type: PUBACK, Body: []byte{0, 1, 2}}.PacketID()
	assert.ErrorIs(t, err, ErrMalformed)
	id, codes, err := Packet{Type: SUBACK, Body: []byte{0, 9, 1, 0x80}}.Suback()
	require.NoError(t, err)
	assert.EqualValues(t, 9, id)
	assert.Equal(t, []byte{1, 0x80}, codes)
}

func TestRefusedErrorNamesTheCode(t *testing.T) {
	err := error(&RefusedError{Code: 5})
	assert.ErrorIs(t, err, ErrRefused)
	assert.Equal(t, "mqtt311: connection refused: CONNACK return code 5 (not authorized)", err.Error())
	assert.Contains(t, (&RefusedError{Code: 9}).Error(), "return code 9 (reserved)")
	assert.Equal(t, "PUBACK", PUBACK.String())
	assert.Equal(t, "Type(16)", Type(16).String())
}
