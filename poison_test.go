package mqttkeep_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// malformedEcho is what a broker with a broken property encoder forwards
// for a QoS 1 message to topic: its Content Type claims 16 bytes where the
// property block holds 2 ([MQTT-2.2.2]: malformed).
func malformedEcho(topic string, id uint16) []byte {
	body := []byte{0, byte(len(topic))}
	body = append(body, topic...)
	body = append(body, byte(id>>8), byte(id), 5, 0x03, 0x00, 0x10, 'a', 'b', 'x')
	return append([]byte{0x32, byte(len(body))}, body...)
}

// A message that poisons its own sender: the broker forwards the client's
// QoS 1 publish back to it (it subscribes to the topic) malformed, before
// its PUBACK, on every connection. Before: the client re-sent it on every
// new connection and session for ever (76 losses in 45 s, reconnecting at
// once each time). Now the losses back off, and after WithMaxFailedResumes
// (3) losses in a row that named it the message is given up: Publish fails
// with ErrMessagePoisoned, the loss's DisconnectEvent says so, and the
// connection that follows lasts.
func TestSelfPoisoningPublishIsGivenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		var mu sync.Mutex
		var connAt []time.Time
		go func() {
			for {
				var sc *scriptConn
				select {
				case sc = <-srv.conns:
				case <-srv.stop:
					return
				}
				cp := sc.read()
				if cp == nil {
					continue
				}
				mu.Lock()
				connAt = append(connAt, time.Now())
				mu.Unlock()
				ca := packets.NewControlPacket(packets.CONNACK)
				ca.Content.(*packets.Connack).SessionPresent = !cp.Content.(*packets.Connect).CleanStart
				ca.Content.(*packets.Connack).Properties = &packets.Properties{}
				sc.send(ca)
				go sc.serve(func(cp *packets.ControlPacket) {
					if p, ok := cp.Content.(*packets.Publish); ok && p.QoS == 1 {
						sc.raw(malformedEcho(p.Topic, 1)) // forwarded first, PUBACK after (mochi's order)
						pa := packets.NewControlPacket(packets.PUBACK)
						pa.Content.(*packets.Puback).PacketID = p.PacketID
						sc.send(pa)
					}
				})
			}
		}()
		ev := newEvents()
		c, err := mqttkeep.New(append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Hour),
			mqttkeep.WithSubscription("poison/t", 1, func(*mqttkeep.Message) {}))...)
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		err = c.Publish(ctx, "poison/t", []byte("x"), mqttkeep.WithQoS(1), mqttkeep.WithContentType("température"))
		require.ErrorIs(t, err, mqttkeep.ErrMessagePoisoned)
		assert.ErrorIs(t, err, mqttkeep.ErrMalformedPacket, "the cause is kept")
		lost := ev.disconnectEvent(t, 2)
		assert.ErrorIs(t, lost.Err, mqttkeep.ErrMessagePoisoned, "the third loss's event names the poisoned message")
		assert.ErrorIs(t, lost.Err, mqttkeep.ErrMalformedPacket)

		// Given up: the next connection is not poisoned again.
		time.Sleep(10 * time.Minute)
		st := c.Stats()
		require.NoError(t, c.Close(context.Background()))
		assert.EqualValues(t, 1, st.OutPoisoned)
		assert.Equal(t, mqttkeep.StateClosed, c.State())
		_, disconnects := ev.counts()
		assert.Equal(t, 4, disconnects, "three poisoned connections, then the one Close ended")

		mu.Lock()
		defer mu.Unlock()
		require.Len(t, connAt, 4)
		for i := 1; i < len(connAt); i++ {
			gap := connAt[i].Sub(connAt[i-1])
			t.Logf("connection %d %v after the one before", i+1, gap)
			assert.Positive(t, gap, "a poisoned loss waits before reconnecting")
		}
	})
}
