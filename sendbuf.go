package mqttkeep

import "sync"

// Send buffers. A link's send buffer grows by appending while it is
// small; a burst that needs more than maxKeptSendBuffer gets a buffer of
// pooledSendBuffer bytes from a pool shared by every link, and gives it
// back when its writer goes idle. So an idle link keeps at most
// maxKeptSendBuffer per buffer, and a sustained burst does not grow a
// fresh buffer from nothing for every batch: dropping large buffers after
// each write made growslice and the garbage collector a fifth of the
// publisher's time with QoS 0 at full speed.
const (
	// maxKeptSendBuffer caps the capacity a link keeps while its writer
	// is idle.
	maxKeptSendBuffer = 64 << 10
	// pooledSendBuffer is the capacity of the pooled buffers: the send
	// buffer limit plus room for the packet that crosses it.
	pooledSendBuffer = sendBufferLimit + 64<<10
)

var sendBufferPool = sync.Pool{New: func() any {
	b := make([]byte, 0, pooledSendBuffer)
	return &b
}}

// reserveLocked makes room in the send buffer for n more bytes. s.mu
// held.
func (l *link) reserveLocked(n int) {
	if cap(l.out)-len(l.out) >= n {
		return
	}
	need := len(l.out) + n
	if need > pooledSendBuffer {
		return // one packet larger than a pooled buffer: append grows it
	}
	if need <= maxKeptSendBuffer {
		// Doubling, but never past what an idle link may keep.
		b := make([]byte, len(l.out), min(max(2*cap(l.out), need, 512), maxKeptSendBuffer))
		copy(b, l.out)
		l.out = b
		return
	}
	bp := sendBufferPool.Get().(*[]byte)
	b := append((*bp)[:0], l.out...)
	l.out = releaseSendBuffer(l.out[:0])
	*bp = nil
	l.out = b
}

// releaseSendBuffer returns the capacity a link keeps of an empty
// buffer b: b itself when small, else nil, after giving a pooled one
// back.
func releaseSendBuffer(b []byte) []byte {
	if cap(b) <= maxKeptSendBuffer {
		return b
	}
	if cap(b) == pooledSendBuffer {
		b = b[:0]
		sendBufferPool.Put(&b)
	}
	return nil
}
