package mqtt311

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
)

// The embedded broker (mochi) speaks MQTT 3.1.1 too: these tests run the
// raw packets against a real broker over real sockets.
func startMochi(t *testing.T) *embedbroker.Broker {
	t.Helper()
	b, err := embedbroker.New()
	require.NoError(t, err)
	t.Cleanup(b.Close)
	require.NoError(t, b.ListenTCP())
	return b
}

func TestConnPublishSubscribeQoS1(t *testing.T) {
	b := startMochi(t)
	sub, present, err := Dial(b.Addr(), Connect{ClientID: "sub", CleanSession: true, KeepAlive: 30}, 5*time.Second)
	require.NoError(t, err)
	defer sub.Close()
	assert.False(t, present)
	codes, err := sub.Subscribe(1, Filter{"t/#", 1}, Filter{"u", 0})
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 0}, codes)

	pub, _, err := Dial(b.Addr(), Connect{ClientID: "pub", CleanSession: true}, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, pub.Publish("t/1", []byte("hello"), 1, 42, false))
	p, err := pub.Expect(PUBACK)
	require.NoError(t, err)
	id, err := p.PacketID()
	require.NoError(t, err)
	assert.EqualValues(t, 42, id)

	p, err = sub.Expect(PUBLISH)
	require.NoError(t, err)
	m, err := p.Publish()
	require.NoError(t, err)
	assert.Equal(t, "t/1", m.Topic)
	assert.Equal(t, []byte("hello"), m.Payload)
	assert.EqualValues(t, 1, m.QoS)
	assert.NotZero(t, m.PacketID)
	require.NoError(t, sub.Ack(PUBACK, m.PacketID))

	require.NoError(t, sub.Send(Pingreq()))
	_, err = sub.Expect(PINGRESP)
	require.NoError(t, err)
	require.NoError(t, pub.Disconnect())

	// Expect names what came instead.
	require.NoError(t, sub.Send(Pingreq()))
	_, err = sub.Expect(SUBACK)
	assert.ErrorIs(t, err, ErrMalformed)
	assert.ErrorContains(t, err, "want SUBACK, got PINGRESP")
}

func TestDialRefusedAndProbe(t *testing.T) {
	b := startMochi(t)
	require.NoError(t, Probe(b.Addr(), Connect{ClientID: "probe", CleanSession: true}, 5*time.Second))

	// MQTT 5 "server unavailable", which mochi sends to a 3.1.1 client as
	// return code 3. (It sends some other codes untranslated: 0x87 "not
	// authorized" arrives as 0x87, not 5.)
	b.Refuse(0x88)
	conn, _, err := Dial(b.Addr(), Connect{ClientID: "x", CleanSession: true}, 5*time.Second)
	assert.Nil(t, conn)
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	assert.EqualValues(t, 3, refused.Code)
	assert.ErrorIs(t, Probe(b.Addr(), Connect{ClientID: "x", CleanSession: true}, 5*time.Second), ErrRefused)
}

func TestDialWithoutCONNACK(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = ReadPacket(c, 0) // the CONNECT
		_ = c.Close()
	}()
	_, _, err = Dial(ln.Addr().String(), Connect{ClientID: "x", CleanSession: true}, 5*time.Second)
	assert.ErrorIs(t, err, io.EOF)
	assert.ErrorContains(t, err, "no CONNACK")
	<-done

	// Nothing listening: the dial's error.
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, _, err = Dial(addr, Connect{ClientID: "x", CleanSession: true}, time.Second)
	var opErr *net.OpError
	assert.True(t, errors.As(err, &opErr), "%v", err)

	_, _, err = Dial(addr, Connect{Password: []byte("p")}, time.Second)
	assert.ErrorIs(t, err, ErrInvalid, "nothing is dialled for a packet that cannot be encoded")
}

func TestReadTimesOut(t *testing.T) {
	b := startMochi(t)
	c, _, err := Dial(b.Addr(), Connect{ClientID: "quiet", CleanSession: true}, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	c.SetTimeout(50 * time.Millisecond)
	_, err = c.Read()
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
	assert.NotNil(t, c.NetConn())
}
