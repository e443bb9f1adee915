package wire

import (
	"fmt"
	"io"
	"sync"
)

// The read buffer of a Reader adapts to the traffic: it starts at
// minBuffer, doubles (up to maxBuffer) whenever a read filled it, and
// shrinks back, to the smallest size at least twice the last read, when
// it is empty and the last read used at most a quarter of it. An idle
// connection, which receives a PINGRESP now and then, thus holds
// minBuffer bytes, while one under load reads up to maxBuffer bytes per
// system call. Buffers come from and go back to one pool per size, so a
// connection whose load comes and goes does not allocate every time.
const (
	minBuffer = 256
	maxBuffer = 32 << 10
	// maxEmptyReads is how many reads in a row may return no byte and no
	// error before Next gives up with io.ErrNoProgress (as bufio does).
	maxEmptyReads = 100
)

// bufferSizes is the number of buffer sizes: minBuffer << 0 to maxBuffer.
const bufferSizes = 8

var bufferPools [bufferSizes]sync.Pool

func init() {
	if minBuffer<<(bufferSizes-1) != maxBuffer {
		panic("wire: bufferSizes does not span minBuffer to maxBuffer")
	}
	for i := range bufferPools {
		size := minBuffer << i
		bufferPools[i].New = func() any {
			b := make([]byte, size)
			return &b
		}
	}
}

// getBuffer returns a buffer of minBuffer << class bytes.
func getBuffer(class int) *[]byte { return bufferPools[class].Get().(*[]byte) }

// Reader reads whole packets from a stream, refusing a packet larger than
// its limit before anything is allocated for it. It reads through a
// buffer of its own, sized by the traffic (see minBuffer above). A Reader
// is not safe for concurrent use.
type Reader struct {
	src   io.Reader
	max   int
	bufp  *[]byte // the buffer, from bufferPools[class]; nil after Release
	class int
	r, w  int   // unread bytes: (*bufp)[r:w]
	last  int   // bytes the last read into the buffer returned
	full  bool  // the last read into the buffer filled it
	err   error // the error of a read that also returned bytes, reported once they are used
}

// NewReader reads packets from r; a packet whose fixed header announces
// more than max bytes in all (0: MaxPacket) is refused with ErrTooLarge.
// Bytes are read from r only as Next needs them, at most one buffer's
// worth past the packet it returns.
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 || max > MaxPacket {
		max = MaxPacket
	}
	return &Reader{src: r, max: max, bufp: getBuffer(0)}
}

// Release gives the reader's buffer back for other readers to use. The
// reader must not be used after it.
func (r *Reader) Release() {
	if r.bufp != nil {
		bufferPools[r.class].Put(r.bufp)
		r.bufp = nil
	}
}

// Next reads one packet: its type, the flags of its fixed header, and its
// body (the bytes after the fixed header). The caller owns the body,
// except that of a PUBACK, PUBREC, PUBREL or PUBCOMP, which [DecodeAck]
// keeps nothing of: that body may be the reader's own bytes, valid only
// until the next call of Next or Release (an acknowledgement thus costs
// no allocation).
func (r *Reader) Next() (typ, flags byte, body []byte, err error) {
	first, err := r.readByte()
	if err != nil {
		return 0, 0, nil, err
	}
	typ, flags = first>>4, first&0x0F
	if typ == 0 {
		return 0, 0, nil, malformed("packet type 0")
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		b, err := r.readByte()
		if err != nil {
			return 0, 0, nil, unexpectedEOF(err)
		}
		n += int(b&0x7F) * mult
		if b&0x80 == 0 {
			if i > 0 && b == 0 {
				return 0, 0, nil, malformed("remaining length not in its shortest form")
			}
			if total := 1 + i + 1 + n; total > r.max {
				return 0, 0, nil, fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, TypeName(typ), total, r.max)
			}
			break
		}
		if i == 3 {
			return 0, 0, nil, malformed("remaining length longer than 4 bytes")
		}
		mult *= 128
	}
	if err := checkFlags(typ, flags); err != nil {
		return 0, 0, nil, err
	}
	if typ >= PUBACK && typ <= PUBCOMP && n <= r.w-r.r {
		body = (*r.bufp)[r.r : r.r+n : r.r+n]
		r.r += n
		return typ, flags, body, nil
	}
	body = make([]byte, n)
	if err := r.readFull(body); err != nil {
		return 0, 0, nil, unexpectedEOF(err)
	}
	return typ, flags, body, nil
}

// readByte returns the next byte, reading when the buffer is empty.
func (r *Reader) readByte() (byte, error) {
	if r.r == r.w {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	b := (*r.bufp)[r.r]
	r.r++
	return b, nil
}

// readFull fills p: first from the buffer, then, for what is left, either
// straight from the stream (at least a buffer's worth left: no copy) or
// through the buffer (less: the read may bring the next packets along).
func (r *Reader) readFull(p []byte) error {
	for {
		k := copy(p, (*r.bufp)[r.r:r.w])
		r.r += k
		p = p[k:]
		if len(p) == 0 {
			return nil
		}
		if r.err != nil {
			return r.takeErr()
		}
		if len(p) >= len(*r.bufp) {
			_, err := io.ReadFull(r.src, p)
			return err
		}
		if err := r.fill(); err != nil {
			return err
		}
	}
}

// takeErr returns the pending read error and forgets it.
func (r *Reader) takeErr() error {
	err := r.err
	r.err = nil
	return err
}

// fill reads into the empty buffer, after resizing it, until the read
// returns at least one byte; it returns the read's error only when no byte
// came with it (else that error waits until the bytes are used).
func (r *Reader) fill() error {
	if r.err != nil {
		return r.takeErr()
	}
	r.r, r.w = 0, 0
	r.resize()
	buf := *r.bufp
	for range maxEmptyReads {
		n, err := r.src.Read(buf)
		if n < 0 || n > len(buf) {
			return fmt.Errorf("wire: the stream's Read returned %d for %d bytes", n, len(buf))
		}
		if n > 0 {
			r.w, r.last, r.full, r.err = n, n, n == len(buf), err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// resize grows the empty buffer after a read that filled it, or shrinks it
// after a read that used at most a quarter of it (see minBuffer).
func (r *Reader) resize() {
	class := r.class
	switch size := minBuffer << class; {
	case r.full && class < bufferSizes-1:
		class++
	case r.last*4 <= size && class > 0:
		class = 0
		for minBuffer<<class < 2*r.last {
			class++
		}
	}
	if class != r.class {
		bufferPools[r.class].Put(r.bufp)
		r.bufp, r.class = getBuffer(class), class
	}
	r.full = false
}
