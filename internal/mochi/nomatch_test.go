// mqttkeep patch 05: PUBACK and PUBREC carry 0x10 (no matching
// subscribers) when nobody is subscribed, and 0x00, not 0x01, otherwise.

package mqtt

import (
	"io"
	"testing"

	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
	"github.com/stretchr/testify/require"
)

// ackOf returns what processPublish writes to an MQTT v5 client for a
// QoS qos message on a/b/c with props, with or without a subscriber.
func ackOf(t *testing.T, qos byte, props packets.Properties, subscribed bool) []byte {
	t.Helper()
	s := newServer()
	_ = s.Serve()
	defer s.Close()

	cl, r, w := newTestClient(t)
	cl.ID = "pub"
	cl.Properties.ProtocolVersion = 5
	s.Clients.Add(cl)
	if subscribed {
		sub, _, _ := newTestClient(t)
		sub.ID = "sub"
		s.Clients.Add(sub)
		require.True(t, s.Topics.Subscribe(sub.ID, packets.Subscription{Filter: "a/+/c"}))
	}

	errc := make(chan error, 1)
	go func() {
		errc <- s.processPublish(cl, packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: qos},
			ProtocolVersion: 5,
			TopicName:       "a/b/c",
			Payload:         []byte("hello"),
			PacketID:        7,
			Properties:      props,
		})
		_ = w.Close()
	}()
	buf, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, <-errc)
	return buf
}

func TestServerProcessPublishNoMatchingSubscribers(t *testing.T) {
	// Upstream wrote 0x40 2 0 7 and 0x50 2 0 7: success.
	require.Equal(t, []byte{packets.Puback << 4, 3, 0, 7, 0x10}, ackOf(t, 1, packets.Properties{}, false))
	require.Equal(t, []byte{packets.Pubrec << 4, 3, 0, 7, 0x10}, ackOf(t, 2, packets.Properties{}, false))

	require.Equal(t, []byte{packets.Puback << 4, 2, 0, 7}, ackOf(t, 1, packets.Properties{}, true))
	require.Equal(t, []byte{packets.Pubrec << 4, 2, 0, 7}, ackOf(t, 2, packets.Properties{}, true))
}

// The acknowledgement inherits the message's user properties, so it
// carries its reason code: 0x00 for success. Upstream wrote 0x01 (granted
// QoS 1, a SUBACK code) in the PUBACK.
func TestServerProcessPublishSuccessReasonWithProperties(t *testing.T) {
	props := packets.Properties{User: []packets.UserProperty{{Key: "k", Val: "v"}}}
	for _, qos := range []byte{1, 2} {
		buf := ackOf(t, qos, props, true)
		require.Greater(t, len(buf), 4, "QoS %d: % x", qos, buf)
		require.Equal(t, byte(0x00), buf[4], "QoS %d: reason code in % x", qos, buf)
	}
}
