package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stream returns n PUBLISH packets with payloads of size bytes, encoded
// back to back, and the payloads.
func stream(t *testing.T, n, size int) ([]byte, [][]byte) {
	t.Helper()
	var b []byte
	var payloads [][]byte
	for i := range n {
		p := Publish{Topic: "a/b", Payload: bytes.Repeat([]byte{byte(i)}, size)}
		var err error
		b, err = AppendPublish(b, V5, &p)
		require.NoError(t, err)
		payloads = append(payloads, p.Payload)
	}
	return b, payloads
}

// readAll reads the packets of want from r, then the end of the stream.
func readAll(t *testing.T, r *Reader, want [][]byte) {
	t.Helper()
	readN(t, r, want)
	_, _, _, err := r.Next()
	assert.ErrorIs(t, err, io.EOF)
}

// readN reads len(want) packets from r and checks their payloads.
func readN(t *testing.T, r *Reader, want [][]byte) {
	t.Helper()
	for i, w := range want {
		typ, flags, body, err := r.Next()
		require.NoError(t, err, "packet %d", i)
		require.Equal(t, PUBLISH, typ)
		var p Publish
		require.NoError(t, DecodePublish(V5, flags, body, &p))
		require.Equal(t, w, p.Payload, "packet %d", i)
	}
}

// Packets read the same however the stream cuts them: one byte per read,
// half reads, reads that return the data with the error, and packets
// larger than the biggest buffer, read past it.
func TestReaderChunks(t *testing.T) {
	for _, size := range []int{0, 10, minBuffer, 3 * minBuffer, maxBuffer + 100} {
		b, payloads := stream(t, 20, size)
		readers := map[string]io.Reader{
			"whole":    bytes.NewReader(b),
			"one byte": iotest.OneByteReader(bytes.NewReader(b)),
			"half":     iotest.HalfReader(bytes.NewReader(b)),
			"data+err": iotest.DataErrReader(bytes.NewReader(b)),
		}
		for name, src := range readers {
			r := NewReader(src, 0)
			readAll(t, r, payloads)
			r.Release()
			if t.Failed() {
				t.Fatalf("%s reads of %d-byte payloads", name, size)
			}
		}
	}
}

// The buffer grows while reads fill it and shrinks back once they are
// small again.
func TestReaderAdapts(t *testing.T) {
	b, payloads := stream(t, 2000, 100)
	r := NewReader(io.MultiReader(bytes.NewReader(b), iotest.OneByteReader(bytes.NewReader(b))), 0)
	assert.Equal(t, minBuffer, len(*r.bufp))
	readN(t, r, payloads[:1000])
	assert.Equal(t, maxBuffer, len(*r.bufp), "a stream that fills every read grows the buffer to the maximum")
	readAll(t, r, append(payloads[1000:], payloads...))
	assert.Equal(t, minBuffer, len(*r.bufp), "one-byte reads shrink it back")
	r.Release()
	assert.Nil(t, r.bufp)
}

// A read error comes after the bytes that came with it, once; a stream
// that returns nothing and no error is given up on.
func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	b, payloads := stream(t, 1, 10)
	r := NewReader(io.MultiReader(bytes.NewReader(b), iotest.ErrReader(boom)), 0)
	_, _, _, err := r.Next()
	require.NoError(t, err)
	_, _, _, err = r.Next()
	assert.ErrorIs(t, err, boom)

	// A timeout is reported and forgotten: the next read may succeed.
	r = NewReader(iotest.TimeoutReader(io.MultiReader(bytes.NewReader(b), bytes.NewReader(b))), 0)
	readN(t, r, payloads)
	_, _, _, err = r.Next()
	assert.ErrorIs(t, err, iotest.ErrTimeout)
	readAll(t, r, payloads)

	r = NewReader(emptyReader{}, 0)
	_, _, _, err = r.Next()
	assert.ErrorIs(t, err, io.ErrNoProgress)

	// A cut body is a cut connection, also when read past the buffer.
	big, _ := stream(t, 1, 4*maxBuffer)
	_, _, _, err = NewReader(bytes.NewReader(big[:len(big)-1]), 0).Next()
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// An acknowledgement is read without allocating, its body the reader's
// own bytes; every other body is the caller's, intact however many
// packets are read after it.
func TestReaderAckBodies(t *testing.T) {
	var in []byte
	var pubs [][]byte
	for i := range 300 {
		var err error
		in, err = AppendAck(in, V5, &Ack{Type: PUBACK + byte(i%4), PacketID: uint16(i + 1)})
		require.NoError(t, err)
		if i%50 == 0 {
			p := Publish{Topic: "t", Payload: bytes.Repeat([]byte{byte(i)}, 10)}
			in, err = AppendPublish(in, V5, &p)
			require.NoError(t, err)
			pubs = append(pubs, p.Payload)
		}
	}
	r := NewReader(chunkReader{bytes.NewReader(in), 100}, 0)
	defer r.Release()
	var kept [][]byte
	acks := 0
	for {
		typ, flags, body, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if typ == PUBLISH {
			var p Publish
			require.NoError(t, DecodePublish(V5, flags, body, &p))
			kept = append(kept, p.Payload)
			continue
		}
		a, err := DecodeAck(V5, typ, body)
		require.NoError(t, err)
		acks++
		require.Equal(t, uint16(acks), a.PacketID)
		require.Equal(t, PUBACK+byte((acks-1)%4), a.Type)
	}
	assert.Equal(t, 300, acks)
	assert.Equal(t, pubs, kept, "PUBLISH payloads outlive the reads after them")

	in = nil
	for i := range 1000 {
		in, _ = AppendAck(in, V5, &Ack{Type: PUBACK, PacketID: uint16(i + 1)})
	}
	r2 := NewReader(chunkReader{bytes.NewReader(in), 100}, 0)
	defer r2.Release()
	var err error
	if n := testing.AllocsPerRun(500, func() { _, _, _, err = r2.Next() }); n != 0 {
		t.Errorf("reading a PUBACK: %v allocations, want 0", n)
	}
	require.NoError(t, err)
}
