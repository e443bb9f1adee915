package mqttkeep

import "testing"

// A burst through the send buffer keeps one large buffer instead of
// regrowing one from nothing (the cost that made growslice a tenth of a
// QoS 0 publisher's time), and an idle writer lets it go back to the
// pool: what a link keeps idle stays small.
func TestSendBufferKeptThroughABurstAndReleasedIdle(t *testing.T) {
	l := &link{}
	packet := make([]byte, 100)
	arrays := map[*byte]bool{}
	for len(l.out) < sendBufferLimit {
		l.reserveLocked(len(packet))
		l.out = append(l.out, packet...)
		if cap(l.out) > maxKeptSendBuffer {
			arrays[&l.out[:1][0]] = true
		}
	}
	if cap(l.out) != pooledSendBuffer {
		t.Fatalf("after %d bytes the buffer's capacity is %d, want the pooled %d", len(l.out), cap(l.out), pooledSendBuffer)
	}
	if len(arrays) != 1 {
		t.Errorf("the burst past %d bytes used %d large buffers, want 1 (no regrowth)", maxKeptSendBuffer, len(arrays))
	}
	for i := range 1000 {
		if l.out[i*100] != 0 {
			t.Fatal("bytes lost when the buffer moved to the pooled one")
		}
	}

	// The writer idles: the large buffer goes, a small one stays.
	if got := releaseSendBuffer(l.out[:0]); got != nil {
		t.Errorf("an idle link keeps a %d-byte buffer, want none over %d", cap(got), maxKeptSendBuffer)
	}
	small := make([]byte, 0, 4096)
	if got := releaseSendBuffer(small); cap(got) != 4096 {
		t.Errorf("a small buffer was let go (capacity %d after release)", cap(got))
	}

	// A packet larger than a pooled buffer is appended as it is.
	l = &link{}
	l.reserveLocked(pooledSendBuffer + 1)
	if cap(l.out) != 0 {
		t.Errorf("a %d-byte packet took a pooled buffer", pooledSendBuffer+1)
	}
}
