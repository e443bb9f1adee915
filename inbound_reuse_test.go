package mqttkeep_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A broker that resumes a session but lost part of its state (Mosquitto
// restarted from a database saved before the last messages went out) may
// reuse a packet identifier whose acknowledgement never reached it. The
// new PUBLISH has no DUP flag, so it is a new message and must reach the
// handler; a re-delivery (DUP set) of a message still being handled, or
// of a QoS 2 message already handled, must not. Found by
// TestMosquittoKillRestartWithPersistence under load: one QoS 1 message
// in 500 was acknowledged and never handled.
func TestReusedPacketIDIsANewMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		publish := func(sc *scriptConn, qos byte, id uint16, dup bool, payload string) {
			pp := packets.NewControlPacket(packets.PUBLISH)
			p := pp.Content.(*packets.Publish)
			p.QoS, p.PacketID, p.Duplicate, p.Topic, p.Payload = qos, id, dup, "reuse/t", []byte(payload)
			sc.send(pp)
		}
		type ack struct {
			typ byte
			id  uint16
		}
		release := make(chan struct{})
		handled := make(chan string, 16)
		acks := make(chan ack, 16)
		second := make(chan *scriptConn, 1)
		go func() {
			// First connection: QoS 1 id 7, whose handler is still running
			// when the link dies, and QoS 2 id 9, handled and PUBRECed but
			// never released.
			sc := srv.accept()
			if sc.handshake(nil) == nil {
				return
			}
			publish(sc, 1, 7, false, "q1-old")
			publish(sc, 2, 9, false, "q2-old")
			for cp := sc.read(); cp != nil; cp = sc.read() {
				if r, ok := cp.Content.(*packets.Pubrec); ok && r.PacketID == 9 {
					break
				}
			}
			sc.Close()
			// Second connection, session present.
			sc = srv.accept()
			if cp := sc.read(); cp == nil || cp.Type != packets.CONNECT {
				t.Errorf("want CONNECT, got %v", cp)
				return
			}
			ca := packets.NewControlPacket(packets.CONNACK)
			ca.Content.(*packets.Connack).SessionPresent = true
			ca.Content.(*packets.Connack).Properties = &packets.Properties{}
			sc.send(ca)
			second <- sc
			sc.serve(func(cp *packets.ControlPacket) {
				switch p := cp.Content.(type) {
				case *packets.Puback:
					acks <- ack{packets.PUBACK, p.PacketID}
				case *packets.Pubrec:
					acks <- ack{packets.PUBREC, p.PacketID}
				}
			})
		}()
		// Waits are bounded on the bubble's clock (keep alive pings move
		// it), so a message that never comes fails the test.
		nextHandled := func() string {
			t.Helper()
			select {
			case m := <-handled:
				return m
			case <-time.After(time.Minute):
				t.Fatal("no handler call within a minute")
				return ""
			}
		}
		nextAck := func() ack {
			t.Helper()
			select {
			case a := <-acks:
				return a
			case <-time.After(time.Minute):
				t.Fatal("no acknowledgement within a minute")
				return ack{}
			}
		}
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithClientID("reuse"), mqttkeep.WithCleanStart(false),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 1}}),
			mqttkeep.WithSubscription("reuse/#", 2, func(m *mqttkeep.Message) {
				handled <- string(m.Payload)
				if string(m.Payload) == "q1-old" {
					<-release
				}
			}, mqttkeep.WithConcurrency(4)))
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		sc := <-second
		assert.ElementsMatch(t, []string{"q1-old", "q2-old"}, []string{nextHandled(), nextHandled()})

		// Re-deliveries: neither is handled again; the QoS 2 one is
		// answered with PUBREC at once.
		publish(sc, 2, 9, true, "q2-old")
		assert.Equal(t, ack{packets.PUBREC, 9}, nextAck())
		publish(sc, 1, 7, true, "q1-old")
		synctest.Wait()
		assert.Empty(t, handled, "a re-delivery was handled twice")

		// New messages on both identifiers: handled, then acknowledged
		// (acknowledgements go in arrival order; the superseded message
		// waiting for its handler no longer holds the others back).
		publish(sc, 1, 7, false, "q1-new")
		assert.Equal(t, "q1-new", nextHandled())
		assert.Equal(t, ack{packets.PUBACK, 7}, nextAck())
		publish(sc, 2, 9, false, "q2-new")
		assert.Equal(t, "q2-new", nextHandled())
		assert.Equal(t, ack{packets.PUBREC, 9}, nextAck())

		// The superseded message's handler ends: nothing more is sent
		// for identifier 7.
		close(release)
		synctest.Wait()
		assert.Empty(t, acks, "an acknowledgement for the superseded message")
		require.NoError(t, c.Close(context.Background()))
	})
}
