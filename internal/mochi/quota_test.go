// mqttkeep patch 03: the messages held back for a client's Receive
// Maximum are all sent, in order, as its acknowledgements free the quota.

package mqtt

import (
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
	"github.com/stretchr/testify/require"
)

// A subscriber with a Receive Maximum of 2 that acknowledges every
// message gets all of them. Upstream, each PUBACK of a message sent from
// the held ones found nothing in flight and freed no quota: after two
// windows the quota stayed at 0 and the rest were held for good.
func TestServerSendQuotaSendsEveryHeldMessage(t *testing.T) {
	s := newServer()
	_ = s.Serve()
	defer s.Close()

	cl, r, _ := newTestClient(t)
	cl.State.Inflight.ResetSendQuota(2)
	s.Clients.Add(cl)
	require.True(t, s.Topics.Subscribe(cl.ID, packets.Subscription{Filter: "a/b/c", Qos: 1}))

	got := make(chan packets.Packet, 10)
	go func() { // reads what the broker sends cl, until the pipe closes
		defer close(got)
		rc := newClient(r, cl.ops)
		for {
			fh := new(packets.FixedHeader)
			if err := rc.ReadFixedHeader(fh); err != nil {
				return
			}
			pk, err := rc.ReadPacket(fh)
			if err != nil {
				return
			}
			got <- pk
		}
	}()

	n := int(cl.ops.options.Capabilities.MaximumInflight) // more are dropped
	for i := range n {
		s.publishToSubscribers(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName:   "a/b/c",
			Payload:     []byte{byte(i)},
		})
	}
	for i := range n {
		select {
		case pk, ok := <-got:
			require.True(t, ok)
			require.Equal(t, packets.Publish, pk.FixedHeader.Type)
			require.Equal(t, []byte{byte(i)}, pk.Payload, "in the order published")
			require.NoError(t, s.processPacket(cl, packets.Packet{
				FixedHeader: packets.FixedHeader{Type: packets.Puback},
				PacketID:    pk.PacketID,
			}))
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d messages sent; the others are held for good", i, n)
		}
	}
}
