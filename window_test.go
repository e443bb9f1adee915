package mqttkeep_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// windowServer is a scripted broker that ignores the client's Receive
// Maximum, as Mosquitto 2.0.11 does under load: it answers SUBSCRIBE, then
// sends n QoS 1 messages without waiting for a PUBACK. Every server write
// goes through one goroutine, so that a client that stops reading stalls
// only those writes; the client's packets keep being read.
type windowServer struct {
	acks       chan uint16 // PUBACK packet identifiers, in the order received
	disconnect chan byte   // reason code of the client's DISCONNECT
	sent       chan int    // after each PUBLISH written: how many so far
}

func startWindowServer(t *testing.T, srv *scripted, n int) *windowServer {
	ws := &windowServer{acks: make(chan uint16, n), disconnect: make(chan byte, 1), sent: make(chan int, n)}
	go func() {
		sc := srv.accept()
		if sc.handshake(nil) == nil {
			return
		}
		out := make(chan *packets.ControlPacket, n+64)
		go func() {
			for cp := range out {
				if !sc.send(cp) {
					return
				}
				if cp.Type == packets.PUBLISH {
					ws.sent <- int(cp.Content.(*packets.Publish).PacketID)
				}
			}
		}()
		defer close(out)
		for cp := sc.read(); cp != nil; cp = sc.read() {
			switch p := cp.Content.(type) {
			case *packets.Subscribe:
				sa := packets.NewControlPacket(packets.SUBACK)
				sa.Content.(*packets.Suback).PacketID = p.PacketID
				sa.Content.(*packets.Suback).Reasons = []byte{1}
				out <- sa
				for i := 1; i <= n; i++ {
					pp := packets.NewControlPacket(packets.PUBLISH)
					m := pp.Content.(*packets.Publish)
					m.QoS, m.PacketID, m.Topic, m.Payload = 1, uint16(i), "window/t", fmt.Appendf(nil, "m%d", i)
					out <- pp
				}
			case *packets.Pingreq:
				out <- packets.NewControlPacket(packets.PINGRESP)
			case *packets.Puback:
				ws.acks <- p.PacketID
			case *packets.Disconnect:
				ws.disconnect <- p.ReasonCode
				sc.Close()
				return
			}
		}
	}()
	return ws
}

// A broker that sends more unacknowledged QoS 1 messages than the
// client's Receive Maximum is not disconnected: the client keeps the
// message over the window, stops reading until its handlers catch up, and
// then takes the rest. Every message is handled, in order, once, and
// acknowledged in order; what the client holds stays within the window
// plus one; the keepalive does not take the pause for a dead link.
// Before: more than twice the window closed the connection with 0x93, and
// Mosquitto 2.0.11 did that on every reconnect (the benchmark's inbound
// QoS 1 run took 60 to 90 s instead of 1 s in 3 runs of 10).
func TestBrokerOverReceiveMaximumIsHeldBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rm, n = 4, 12
		srv := newScripted(t)
		defer srv.close()
		ws := startWindowServer(t, srv, n)
		release := make(chan struct{})
		handled := make(chan string, n)
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithKeepAlive(2*time.Second), mqttkeep.WithWriteTimeout(5*time.Minute),
			mqttkeep.WithReceiveMaximum(rm),
			mqttkeep.WithSubscription("window/#", 1, func(m *mqttkeep.Message) {
				<-release
				handled <- string(m.Payload)
			}))
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))

		// The handler holds the first message: the client reads the window
		// and one more, then waits; the server's next write stalls.
		synctest.Wait()
		st := c.Stats()
		assert.EqualValues(t, rm+1, st.InPublishes, "messages read while the handlers were stuck")
		assert.EqualValues(t, 1, st.InOverReceiveMaximum)
		assert.Len(t, ws.sent, rm+1)

		// Thirty keep-alive periods pass paused: no ping timeout, no
		// disconnect.
		time.Sleep(30 * 2 * time.Second)
		st = c.Stats()
		assert.Equal(t, mqttkeep.StateConnected, st.State)
		assert.EqualValues(t, 0, st.Disconnects)
		assert.EqualValues(t, rm+1, st.InPublishes)

		close(release)
		for i := 1; i <= n; i++ {
			select {
			case m := <-handled:
				assert.Equal(t, fmt.Sprintf("m%d", i), m)
			case <-time.After(time.Minute):
				t.Fatalf("message %d not handled within a minute", i)
			}
			select {
			case id := <-ws.acks:
				assert.EqualValues(t, i, id, "PUBACKs in arrival order")
			case <-time.After(time.Minute):
				t.Fatalf("no PUBACK for message %d within a minute", i)
			}
		}
		st = c.Stats()
		assert.EqualValues(t, n, st.InPublishes)
		assert.EqualValues(t, n, st.InHandlerCalls)
		assert.EqualValues(t, 0, st.Disconnects)
		require.NoError(t, c.Close(context.Background()))
	})
}

// A window that stays over for the write timeout (here because the
// handler never returns) ends the connection with DISCONNECT 0x93, named
// by ErrProtocolViolation, at the write timeout and not before.
func TestBrokerOverReceiveMaximumTooLongDisconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rm, n = 2, 6
		const writeTimeout = 5 * time.Second
		srv := newScripted(t)
		defer srv.close()
		ws := startWindowServer(t, srv, n)
		release := make(chan struct{})
		lost := make(chan error, 1)
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithKeepAlive(2*time.Second), mqttkeep.WithWriteTimeout(writeTimeout),
			mqttkeep.WithReceiveMaximum(rm),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: time.Hour, Max: time.Hour, Multiplier: 1}}),
			mqttkeep.HooksForTest(nil, func(e mqttkeep.DisconnectEvent) {
				select {
				case lost <- e.Err:
				default:
				}
			}, nil, nil),
			mqttkeep.WithSubscription("window/#", 1, func(*mqttkeep.Message) { <-release }))
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		synctest.Wait()
		paused := time.Now()
		require.EqualValues(t, rm+1, c.Stats().InPublishes)

		select {
		case reason := <-ws.disconnect:
			assert.Equal(t, byte(0x93), reason)
			assert.Equal(t, writeTimeout, time.Since(paused), "disconnected at the write timeout")
		case <-time.After(time.Minute):
			t.Fatal("no DISCONNECT within a minute")
		}
		select {
		case err := <-lost:
			assert.True(t, errors.Is(err, mqttkeep.ErrProtocolViolation), "cause: %v", err)
			assert.ErrorContains(t, err, "Receive Maximum")
		case <-time.After(time.Minute):
			t.Fatal("no OnDisconnect within a minute")
		}
		close(release)
		require.NoError(t, c.Close(context.Background()))
	})
}
