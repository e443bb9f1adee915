package mqttkeep

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
)

// writeCounter is a net.Conn that records each Write call.
type writeCounter struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func newTestConn(t *testing.T) (*conn, *writeCounter) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	wc := &writeCounter{Conn: a}
	return newConn(wc, &counters{}, 0), wc
}

// paho writes a PUBLISH as 3-4 pieces; the wrapper must send one write per
// packet, byte for byte what paho meant to send.
func TestConnOneWritePerPacket(t *testing.T) {
	for _, size := range []int{0, 64, 4096, maxCoalesce + 1} {
		c, wc := newTestConn(t)
		pub := packets.NewControlPacket(packets.PUBLISH)
		p := pub.Content.(*packets.Publish)
		p.Topic, p.QoS, p.PacketID, p.Payload = "a/b", 1, 7, bytes.Repeat([]byte{'x'}, size)
		var want bytes.Buffer
		if _, err := pub.WriteTo(&want); err != nil {
			t.Fatal(err)
		}
		if _, err := pub.WriteTo(c); err != nil {
			t.Fatal(err)
		}
		got := bytes.Join(wc.writes, nil)
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("size %d: bytes differ", size)
		}
		if size <= maxCoalesce && len(wc.writes) != 1 {
			t.Errorf("size %d: %d write calls, want 1", size, len(wc.writes))
		}
		if c.stats.packetsOut.Load() != 1 || c.stats.bytesOut.Load() != uint64(want.Len()) {
			t.Errorf("size %d: stats %d packets %d bytes", size, c.stats.packetsOut.Load(), c.stats.bytesOut.Load())
		}
	}
}

// A PINGREQ requested while another packet holds the write lock goes out
// right behind that packet, in the same write, without waiting.
func TestConnPendingPingRidesAlong(t *testing.T) {
	c, wc := newTestConn(t)
	c.Lock()
	c.sendPing(time.Time{}) // lock held: must not block, must not write yet
	if len(wc.writes) != 0 {
		t.Fatal("PINGREQ written while another packet held the lock")
	}
	if _, err := c.Write([]byte{0x30, 0x03, 0x00, 0x01, 'a'}); err != nil { // QoS 0 PUBLISH "a", no payload
		t.Fatal(err)
	}
	c.Unlock()
	if len(wc.writes) != 1 || !bytes.Equal(wc.writes[0], []byte{0x30, 0x03, 0x00, 0x01, 'a', 0xC0, 0x00}) {
		t.Fatalf("writes %x, want one write: PUBLISH then PINGREQ", wc.writes)
	}
	c.sendPing(time.Time{}) // lock free: written at once
	if len(wc.writes) != 2 || !bytes.Equal(wc.writes[1], pingreqPacket) {
		t.Fatalf("writes %x, want a lone PINGREQ", wc.writes)
	}
}

func TestPacketLength(t *testing.T) {
	for _, tc := range []struct {
		header []byte
		want   int
	}{
		{[]byte{0xC0, 0x00}, 2},
		{[]byte{0x30, 0x7F}, 129},
		{[]byte{0x30, 0x80, 0x01}, 131},
		{[]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, 5 + 268435455},
		{[]byte{0x30}, -1},
		{[]byte{0x30, 0x80}, -1},
	} {
		if got := packetLength(tc.header); got != tc.want {
			t.Errorf("packetLength(%x) = %d, want %d", tc.header, got, tc.want)
		}
	}
}

// publishSize, used to refuse a packet over the broker's Maximum Packet
// Size before sending, is the exact size of what goes on the wire.
func TestPublishSizeMatchesWire(t *testing.T) {
	for _, m := range []Message{
		{Topic: "a", QoS: 0},
		{Topic: "a/b", Payload: bytes.Repeat([]byte{'x'}, 200), QoS: 1},
		{Topic: "t", Payload: bytes.Repeat([]byte{'y'}, 20000), QoS: 2, ContentType: "text/plain",
			UserProperties: []UserProperty{{"k", "v"}}, MessageExpiry: time.Minute},
	} {
		pb := m.packet()
		size := publishSize(pb)
		if m.QoS > 0 {
			pb.PacketID = 7 // assigned by the session just before the write
		}
		var wire bytes.Buffer
		if _, err := pb.WriteTo(&wire); err != nil {
			t.Fatal(err)
		}
		if size != wire.Len() {
			t.Errorf("%s QoS %d: publishSize %d, wire %d", m.Topic, m.QoS, size, wire.Len())
		}
	}
}
