// mqttkeep patch 06: a resumed session's messages are re-sent in the
// order they were first sent.

package mqtt

import (
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
	"github.com/stretchr/testify/require"
)

// Messages in flight, all created in the same second, come back in the
// order they were sent [MQTT-4.6.0-1]. Upstream sorted them by the low 16
// bits of their creation time with an unstable sort, so ties came back in
// the map's order: any order.
func TestResendInflightMessagesInOrder(t *testing.T) {
	cl, r, _ := newTestClient(t)
	cl.State.Inflight.ResetSendQuota(100)
	const n = 20
	now := time.Now().Unix()
	for id := n; id > 0; id-- { // identifiers in descending order, so that their order is not the answer
		cl.State.Inflight.Set(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName:   "a/b/c",
			Payload:     []byte{byte(id)},
			PacketID:    uint16(id),
			Created:     now,
		})
	}

	got := make(chan uint16, n)
	go func() { // reads what cl is sent, until the pipe closes
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
			got <- pk.PacketID
		}
	}()
	require.NoError(t, cl.ResendInflightMessages(true))
	for want := n; want > 0; want-- {
		select {
		case id := <-got:
			require.Equal(t, uint16(want), id, "re-sent out of order")
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not re-sent", want)
		}
	}
}
