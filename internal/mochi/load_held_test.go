// mqttkeep patch 07: messages restored from a storage hook go out in the
// store's order, within the client's Receive Maximum, as DUP.

package mqtt

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/mochi/hooks/storage"
	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
	"github.com/mqttkeep/mqttkeep/internal/mochi/system"
	"github.com/stretchr/testify/require"
)

// A session restored with 5 QoS 1 messages reconnects with a Receive
// Maximum of 2: it gets the first 2 (DUP: they may have been sent before
// the restart), the others as it acknowledges, in the store's order.
// Upstream wrote all of them at once, without DUP, in any order.
func TestLoadInflightSendsWithinReceiveMaximumInOrder(t *testing.T) {
	s := newServer()
	s.Options.Capabilities.ReceiveMaximum = 10 // mochi's default is 1024; newServer's 0 keeps no quotas
	defer s.Close()
	s.loadClients([]storage.Client{{ID: "zen", ProtocolVersion: 5,
		Properties: storage.ClientProperties{SessionExpiryInterval: 60, SessionExpiryIntervalFlag: true}}})
	const n = 5
	ids := []uint16{9, 4, 7, 1, 5} // the store's order
	var msgs []storage.Message
	now := time.Now().Unix()
	for _, id := range ids {
		msgs = append(msgs, storage.Message{Client: "zen", PacketID: id, Created: now, TopicName: "a/b/c",
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, Payload: []byte{byte(id)}})
	}
	s.loadInflight(msgs)

	r, w := net.Pipe()
	defer w.Close()
	go func() { _ = s.EstablishConnection("tcp", r) }()
	_, err := w.Write([]byte{
		packets.Connect << 4, 24,
		0, 4, 'M', 'Q', 'T', 'T', 5,
		0,     // Clean Start 0
		0, 30, // keep alive
		8,               // properties
		17, 0, 0, 0, 60, // Session Expiry Interval 60
		33, 0, 2, // Receive Maximum 2
		0, 3, 'z', 'e', 'n',
	})
	require.NoError(t, err)

	got := make(chan packets.Packet, 2*n)
	go func() { // reads what the broker sends, until the pipe closes
		defer close(got)
		rc := newClient(w, &ops{info: new(system.Info), hooks: new(Hooks), log: logger, options: &Options{Capabilities: NewDefaultServerCapabilities()}})
		rc.Properties.ProtocolVersion = 5
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
	next := func() packets.Packet {
		select {
		case pk := <-got:
			return pk
		case <-time.After(10 * time.Second):
			t.Fatal("nothing more came")
		}
		return packets.Packet{}
	}
	require.Equal(t, packets.Connack, next().FixedHeader.Type)

	for i, id := range ids {
		pk := next()
		require.Equal(t, packets.Publish, pk.FixedHeader.Type)
		require.Equal(t, id, pk.PacketID, "message %d out of the store's order", i)
		require.True(t, pk.FixedHeader.Dup)
		if i == 1 { // the window is full: the other 3 wait
			cl, ok := s.Clients.Get("zen")
			require.True(t, ok)
			require.Equal(t, int32(n-2), atomic.LoadInt32(&cl.State.Inflight.held))
		}
		if i >= 1 {
			_, err := w.Write([]byte{packets.Puback << 4, 2, 0, byte(ids[i-1])})
			require.NoError(t, err)
		}
	}
}
