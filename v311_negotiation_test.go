package mqttkeep_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawPacket reads one MQTT packet (fixed header, remaining length, body)
// without decoding it: the scripted servers below speak both versions.
func rawPacket(r io.Reader) (typ byte, body []byte, err error) {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, nil, err
	}
	typ = b[0] >> 4
	n, mult := 0, 1
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n += int(b[0]&0x7F) * mult
		if b[0]&0x80 == 0 {
			break
		}
		mult *= 128
	}
	body = make([]byte, n)
	_, err = io.ReadFull(r, body)
	return typ, body, err
}

// connectSeen is what a scripted server read from one CONNECT.
type connectSeen struct {
	level byte // protocol level: 5 or 4
	clean bool
	at    time.Time
}

func parseConnect(body []byte) connectSeen {
	// "MQTT" with its length (6 bytes), then the level, then the flags.
	return connectSeen{level: body[6], clean: body[7]&0x02 != 0, at: time.Now()}
}

// serve311 plays a minimal MQTT 3.1.1 broker on one connection after its
// CONNACK: PINGRESP for PINGREQ and SUBACK granting what was asked, until
// the client goes.
func serve311(conn net.Conn) {
	for {
		typ, body, err := rawPacket(conn)
		if err != nil {
			return
		}
		switch typ {
		case 12: // PINGREQ
			_, _ = conn.Write([]byte{0xD0, 0})
		case 8: // SUBSCRIBE: id, then (filter, options) pairs
			id := body[:2]
			var codes []byte
			for rest := body[2:]; len(rest) >= 3; {
				n := int(binary.BigEndian.Uint16(rest))
				codes = append(codes, rest[2+n]&0x03)
				rest = rest[3+n:]
			}
			_, _ = conn.Write(append([]byte{0x90, byte(2 + len(codes)), id[0], id[1]}, codes...))
		case 14: // DISCONNECT
			return
		}
	}
}

// A broker that speaks only MQTT 3.1.1 and refuses a level-5 CONNECT in
// one of the three ways brokers do: closing the connection at once
// (RabbitMQ 3.10), CONNACK 0x84 in MQTT 5's format, or a 3.1.1 CONNACK
// with return code 1. ProtocolAuto tries MQTT 3.1.1 at once, with no
// backoff; since 3.1.1 has no session expiry, a fresh session that must
// survive a lost connection takes a Clean Session connection and then a
// persistent one; a reconnect goes straight to 3.1.1.
func TestNegotiatesMQTT311WithABrokerThatRefuses5(t *testing.T) {
	for _, refusal := range []struct {
		name   string
		answer []byte // nil: close the connection
	}{
		{"connection closed", nil},
		{"CONNACK 0x84", []byte{0x20, 0x03, 0x00, 0x84, 0x00}},
		{"3.1.1 return code 1", []byte{0x20, 0x02, 0x00, 0x01}},
	} {
		t.Run(refusal.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newScripted(t)
				defer srv.close()
				var mu sync.Mutex
				var seen []connectSeen
				drop := make(chan net.Conn, 8)
				go func() {
					for {
						var sc *scriptConn
						select {
						case sc = <-srv.conns:
						case <-srv.stop:
							return
						}
						typ, body, err := rawPacket(sc)
						if err != nil || typ != 1 {
							_ = sc.Close()
							continue
						}
						cs := parseConnect(body)
						mu.Lock()
						seen = append(seen, cs)
						mu.Unlock()
						if cs.level != 4 {
							if refusal.answer != nil {
								_, _ = sc.Write(refusal.answer)
							}
							_ = sc.Close()
							continue
						}
						present := byte(0)
						if !cs.clean {
							present = 1
						}
						_, _ = sc.Write([]byte{0x20, 0x02, present, 0x00})
						drop <- sc.Conn
						go serve311(sc.Conn)
					}
				}()
				ev := newEvents()
				c := newClient(t, append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
					mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Second }}))...)
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				require.NoError(t, c.Connect(ctx))
				caps, _ := c.Capabilities()
				assert.Equal(t, mqttkeep.MQTT311, caps.ProtocolVersion)
				assert.Equal(t, mqttkeep.MQTT311, ev.connectEvent(t, 0).Capabilities.ProtocolVersion, "the connect event says it too")
				mu.Lock()
				first := append([]connectSeen(nil), seen...)
				mu.Unlock()
				require.Len(t, first, 3, "CONNECT at level 5, then 3.1.1 with Clean Session, then 3.1.1 persistent")
				assert.Equal(t, []byte{5, 4, 4}, []byte{first[0].level, first[1].level, first[2].level})
				assert.Equal(t, []bool{true, true, false}, []bool{first[0].clean, first[1].clean, first[2].clean})
				for _, cs := range first {
					assert.Equal(t, start, cs.at, "no backoff between the attempts of a negotiation")
				}

				<-drop // the clean connection, closed by the client
				(<-drop).Close()
				<-ev.lost
				require.NoError(t, c.AwaitConnected(context.Background()))
				mu.Lock()
				again := seen[3:]
				mu.Unlock()
				require.Len(t, again, 1, "the reconnect goes straight to 3.1.1")
				assert.Equal(t, byte(4), again[0].level)
				assert.False(t, again[0].clean)
				require.NoError(t, c.Close(context.Background()))
			})
		})
	}
}

// A broker that speaks MQTT 5 is asked once: negotiation costs nothing
// there.
func TestMQTT5BrokerGetsOneConnect(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, c)
	caps, _ := c.Capabilities()
	assert.Equal(t, mqttkeep.MQTT5, caps.ProtocolVersion)
	assert.Equal(t, 1, b.Connects())
	assert.EqualValues(t, 1, c.Stats().PacketsOut-c.Stats().PingsSent, "one CONNECT, nothing else yet")
}

// With negotiation off, a broker that closes the connection on a level-5
// CONNECT gets an error that says why, not a bare EOF, and no 3.1.1
// attempt.
func TestMQTT5OnlyNamesTheLikelyCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		var mu sync.Mutex
		var levels []byte
		go func() {
			for {
				var sc *scriptConn
				select {
				case sc = <-srv.conns:
				case <-srv.stop:
					return
				}
				if _, body, err := rawPacket(sc); err == nil {
					mu.Lock()
					levels = append(levels, parseConnect(body).level)
					mu.Unlock()
				}
				_ = sc.Close()
			}
		}()
		c := newClient(t, mqttkeep.WithServer("mqtt://pipe"), srv.dialer(), mqttkeep.WithProtocolVersion(mqttkeep.MQTT5),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Second }}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := c.Connect(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the broker closed the connection before CONNACK: it may not speak MQTT 5")
		require.NoError(t, c.Close(context.Background()))
		mu.Lock()
		defer mu.Unlock()
		require.NotEmpty(t, levels)
		for _, l := range levels {
			assert.Equal(t, byte(5), l, "no MQTT 3.1.1 CONNECT with WithProtocolVersion(MQTT5)")
		}
	})
}
