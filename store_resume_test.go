package mqttkeep_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A broker resuming a session may re-send the PUBREC of a QoS 2 message
// that the previous process had published, before the restarted process
// has sent that message again (mochi v2.7.9 re-sends every PUBREC it
// holds right after CONNACK). The client must take it as "the broker has
// the message": PUBREL, and no second PUBLISH. Answering it as unknown
// (PUBREL 0x92) made mochi drop its state and forward the re-sent PUBLISH
// as a new message: a QoS 2 duplicate, seen once in ten crash-test runs.
//
// The second connection grants a Receive Maximum of 1, so that the first
// restored message takes the only slot and the second is still queued
// when its PUBREC arrives.
func TestResumedPubrecForRestoredMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := mqttkeep.NewMemoryStore()
		srv := newScripted(t)
		defer srv.close()
		opts := []mqttkeep.Option{mqttkeep.WithServer("mqtt://pipe"), srv.dialer(), mqttkeep.WithStore(store),
			mqttkeep.WithClientID("resumer"), mqttkeep.WithCleanStart(false), mqttkeep.WithKeepAlive(0)}

		// The first process publishes two QoS 2 messages; the server
		// reads them and never answers.
		ids := make(chan uint16, 2)
		go func() {
			sc := srv.accept()
			sc.handshake(nil)
			sc.serve(func(cp *packets.ControlPacket) {
				if p, ok := cp.Content.(*packets.Publish); ok {
					ids <- p.PacketID
				}
			})
		}()
		first, err := mqttkeep.New(opts...)
		require.NoError(t, err)
		require.NoError(t, first.Connect(ctx))
		for _, payload := range []string{"a", "b"} {
			_, err := first.PublishAsync(ctx, "resume/t", []byte(payload), mqttkeep.WithQoS(2))
			require.NoError(t, err)
		}
		idA, idB := <-ids, <-ids
		require.NoError(t, first.Close(ctx)) // the messages stay in the store

		// The second process resumes; the broker holds b past PUBREC.
		type seen struct {
			typ    byte
			id     uint16
			reason byte
		}
		log := make(chan seen, 16)
		served := make(chan struct{})
		go func() {
			defer close(served)
			sc := srv.accept()
			if cp := sc.read(); cp == nil || cp.Type != packets.CONNECT {
				t.Errorf("want CONNECT, got %v", cp)
				return
			}
			ca := packets.NewControlPacket(packets.CONNACK)
			ca.Content.(*packets.Connack).SessionPresent = true
			one := uint16(1)
			ca.Content.(*packets.Connack).Properties = &packets.Properties{ReceiveMaximum: &one}
			sc.send(ca)
			rec := packets.NewControlPacket(packets.PUBREC)
			rec.Content.(*packets.Pubrec).PacketID = idB
			sc.send(rec)
			sc.serve(func(cp *packets.ControlPacket) {
				switch p := cp.Content.(type) {
				case *packets.Publish:
					log <- seen{packets.PUBLISH, p.PacketID, 0}
					ack := packets.NewControlPacket(packets.PUBREC)
					ack.Content.(*packets.Pubrec).PacketID = p.PacketID
					sc.send(ack)
				case *packets.Pubrel:
					log <- seen{packets.PUBREL, p.PacketID, p.ReasonCode}
					comp := packets.NewControlPacket(packets.PUBCOMP)
					comp.Content.(*packets.Pubcomp).PacketID = p.PacketID
					sc.send(comp)
				}
			})
		}()
		second, err := mqttkeep.New(opts...)
		require.NoError(t, err)
		require.NoError(t, second.Connect(ctx))
		require.NoError(t, second.Flush(ctx), "both restored messages complete")
		assert.EqualValues(t, 2, second.Stats().OutRestored)
		require.NoError(t, second.Close(ctx))
		<-served
		close(log)
		var got []seen
		for s := range log {
			got = append(got, s)
		}
		assert.ElementsMatch(t, []seen{
			{packets.PUBLISH, idA, 0}, {packets.PUBREL, idA, 0}, // a: re-sent, then released
			{packets.PUBREL, idB, 0}, // b: released at once, never published again
		}, got)
	})
}

// gatedStore is a memory store whose durable steps that store something
// wait for the test to open its gate.
type gatedStore struct {
	mqttkeep.Store
	gate chan struct{}
}

func (g *gatedStore) Apply(puts []mqttkeep.Record, deletes []uint64, durable bool) error {
	if durable && len(puts) > 0 {
		<-g.gate
	}
	return g.Store.Apply(puts, deletes, durable)
}

// With a store, a QoS 1/2 message is written to the broker only once its
// record is durable, by Publish as by PublishAsync: a PUBLISH the broker
// got while the store did not know the message would leave its packet
// identifier in the broker's session, unknown to a restarted process,
// which could reuse it for a QoS 2 message the broker then takes for a
// duplicate and drops. (Both wrote it at once, before this test.)
func TestStoredMessageWrittenOnlyWhenDurable(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(map[bool]string{false: "Publish", true: "PublishAsync"}[async], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := mqttkeeptest.StartPipeBroker()
				require.NoError(t, err)
				defer b.Close()
				st := &gatedStore{Store: mqttkeep.NewMemoryStore(), gate: make(chan struct{})}
				c := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
					mqttkeep.WithClientID("gated"), mqttkeep.WithStore(st))
				connect(t, c)
				ctx := context.Background()
				done := make(chan error, 1)
				go func() {
					if async {
						r, err := c.PublishAsync(ctx, "gated/t", []byte("x"), mqttkeep.WithQoS(2))
						if err == nil {
							err = r.Wait(ctx)
						}
						done <- err
						return
					}
					done <- c.Publish(ctx, "gated/t", []byte("x"), mqttkeep.WithQoS(2))
				}()
				synctest.Wait() // everything blocked: the store step waits at the gate
				assert.Zero(t, b.Packets("gated", packets.PUBLISH), "PUBLISH written before its record was durable")
				close(st.gate)
				require.NoError(t, <-done)
				assert.Equal(t, 1, b.Packets("gated", packets.PUBLISH))
			})
		})
	}
}
