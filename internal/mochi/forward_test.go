// mqttkeep patch 04: a QoS 1/2 message is forwarded before it is
// acknowledged.

package mqtt

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
	"github.com/stretchr/testify/require"
)

// When the PUBACK cannot be written (the publisher's connection is
// going), the message must still reach the subscribers: the PUBACK stays
// in the session, is re-sent when it resumes, and the publisher then
// counts the message delivered. Upstream returned before forwarding it.
func TestServerProcessPublishAckFailureStillForwards(t *testing.T) {
	s := newServer()
	_ = s.Serve()
	defer s.Close()

	pub, _, w := newTestClient(t)
	pub.ID = "pub"
	s.Clients.Add(pub)
	sub, r2, _ := newTestClient(t)
	sub.ID = "sub"
	sub.State.packetID = 6 // the fixture's packet id (7) is the next one
	s.Clients.Add(sub)
	require.True(t, s.Topics.Subscribe(sub.ID, packets.Subscription{Filter: "a/b/c", Qos: 1}))

	want := packets.TPacketData[packets.Publish].Get(packets.TPublishQos1).RawBytes
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, len(want))
		n, _ := io.ReadFull(r2, buf)
		got <- buf[:n]
	}()

	_ = w.Close()
	pk := *packets.TPacketData[packets.Publish].Get(packets.TPublishQos1).Packet
	err := s.processPublish(pub, pk)
	require.ErrorIs(t, err, io.ErrClosedPipe)
	select {
	case buf := <-got:
		require.Equal(t, want, buf)
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber never got the message")
	}

	// The PUBACK is kept, for the session to send when it resumes.
	ack, ok := pub.State.Inflight.Get(pk.PacketID)
	require.True(t, ok)
	require.Equal(t, packets.Puback, ack.FixedHeader.Type)
}

// qosRecorder records the OnQosPublish calls a storage hook gets.
type qosRecorder struct {
	HookBase
	mu    sync.Mutex
	calls []string
}

func (h *qosRecorder) ID() string { return "qos-recorder" }

func (h *qosRecorder) Provides(b byte) bool { return b == OnQosPublish }

func (h *qosRecorder) OnQosPublish(cl *Client, pk packets.Packet, _ int64, _ int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, cl.ID+" "+packets.PacketNames[pk.FixedHeader.Type])
}

// A storage hook is given the subscribers' copies of a QoS 1/2 message
// before the acknowledgement to its publisher, so that it can make them
// durable before the publisher hears that the broker has the message.
// Upstream the PUBACK was written, and then the message forwarded.
func TestServerProcessPublishHooksSeeCopiesBeforeAck(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		s := newServer()
		rec := new(qosRecorder)
		require.NoError(t, s.AddHook(rec, nil))
		_ = s.Serve()

		pub, r, _ := newTestClient(t)
		pub.ID = "pub"
		s.Clients.Add(pub)
		sub, _, _ := newTestClient(t)
		sub.ID = "sub"
		s.Clients.Add(sub)
		require.True(t, s.Topics.Subscribe(sub.ID, packets.Subscription{Filter: "a/b/c", Qos: 2}))

		go func() { _, _ = io.Copy(io.Discard, r) }()
		pk := packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos},
			TopicName:   "a/b/c",
			Payload:     []byte("hello"),
			PacketID:    7,
		}
		require.NoError(t, s.processPublish(pub, pk))

		ack := "Puback"
		if qos == 2 {
			ack = "Pubrec"
		}
		rec.mu.Lock()
		require.Equal(t, []string{"sub Publish", "pub " + ack}, rec.calls, "QoS %d", qos)
		rec.mu.Unlock()
		_ = s.Close()
	}
}
