package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/mqttkeep/mqttkeep"
)

// The on-disk format (all integers little-endian; the package doc has the
// overview):
//
//	segment header, 20 bytes:
//	  [0:4]   magic "MQKL"
//	  [4]     format version (1)
//	  [5]     flags: bit 0 set = compacted, supersedes every lower segment
//	  [6:8]   zero
//	  [8:16]  segment number (the same as in the file name)
//	  [16:20] CRC-32C of bytes [0:16]
//
//	frame (one Apply step), 8 + n bytes:
//	  [0:4]   n, the payload length
//	  [4:8]   CRC-32C of bytes [0:4] followed by the payload
//	  payload: uvarint puts, uvarint deletes,
//	           puts × (uvarint key, uvarint value length, value),
//	           deletes × uvarint key
const (
	headerSize      = 20
	frameHeaderSize = 8
	formatVersion   = 1
	flagCompacted   = 1

	// maxStepSize bounds one encoded step (frame payload): a longer length
	// read from a file is corruption, and a longer step is refused.
	maxStepSize = 512 << 20
)

var (
	magic = [4]byte{'M', 'Q', 'K', 'L'}

	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// ErrCorrupt is matched (errors.Is) by the error [Open] returns for a file
// whose contents are damaged in a way a crash cannot explain; the message
// names the file and the byte offset. For damaged bytes in a segment the
// error is a [*CorruptError], which [Salvage] repairs; for a file that is
// not a segment of this store (a name that is not a segment's, a whole
// header of another segment or of an unknown format version) it is not,
// and Salvage returns it too.
var ErrCorrupt = errors.New("filestore: corrupt store file")

// corruptf returns an error matching ErrCorrupt that names path and off.
func corruptf(path string, off int64, format string, args ...any) error {
	return fmt.Errorf("%w %s at offset %d: %s", ErrCorrupt, path, off, fmt.Sprintf(format, args...))
}

// header is a decoded segment header.
type header struct {
	flags  byte
	number uint64
}

// appendHeader appends the encoded header h to b.
func appendHeader(b []byte, h header) []byte {
	start := len(b)
	b = append(b, magic[:]...)
	b = append(b, formatVersion, h.flags, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, h.number)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// parseHeader decodes a segment header from b (at least headerSize bytes).
func parseHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, errors.New("short segment header")
	}
	if [4]byte(b[0:4]) != magic {
		return header{}, errors.New("not a store segment (bad magic)")
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:20]) {
		return header{}, errors.New("segment header checksum mismatch")
	}
	if b[4] != formatVersion {
		return header{}, fmt.Errorf("%w %d", errUnknownVersion, b[4])
	}
	return header{flags: b[5], number: binary.LittleEndian.Uint64(b[8:16])}, nil
}

// errUnknownVersion is matched by parseHeader's error for a whole header
// (its checksum matches) of a format this code does not read: not damage,
// so Salvage does not touch it.
var errUnknownVersion = errors.New("unknown format version")

// stepSize returns the payload length of the step (puts, deletes).
func stepSize(puts []mqttkeep.Record, deletes []uint64) int {
	n := uvarintLen(uint64(len(puts))) + uvarintLen(uint64(len(deletes)))
	for _, r := range puts {
		n += recordSize(r.Key, len(r.Value))
	}
	for _, k := range deletes {
		n += uvarintLen(k)
	}
	return n
}

// recordSize is the payload bytes one put takes.
func recordSize(key uint64, n int) int {
	return uvarintLen(key) + uvarintLen(uint64(n)) + n
}

// appendFrame appends the frame of one step to b. valueOffs, if not nil,
// receives the offset of each put's value relative to the frame's start.
// The caller has checked the size with stepSize.
func appendFrame(b []byte, puts []mqttkeep.Record, deletes []uint64, size int, valueOffs []int) []byte {
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = append(b, 0, 0, 0, 0) // CRC, filled in below
	b = binary.AppendUvarint(b, uint64(len(puts)))
	b = binary.AppendUvarint(b, uint64(len(deletes)))
	for i, r := range puts {
		b = binary.AppendUvarint(b, r.Key)
		b = binary.AppendUvarint(b, uint64(len(r.Value)))
		if valueOffs != nil {
			valueOffs[i] = len(b) - start
		}
		b = append(b, r.Value...)
	}
	for _, k := range deletes {
		b = binary.AppendUvarint(b, k)
	}
	crc := crc32.Update(crc32.Checksum(b[start:start+4], castagnoli), castagnoli, b[start+frameHeaderSize:])
	binary.LittleEndian.PutUint32(b[start+4:], crc)
	return b
}

// frameCRCOK reports whether the frame header hdr (frameHeaderSize bytes)
// matches payload.
func frameCRCOK(hdr, payload []byte) bool {
	crc := crc32.Update(crc32.Checksum(hdr[:4], castagnoli), castagnoli, payload)
	return crc == binary.LittleEndian.Uint32(hdr[4:8])
}

// op is one decoded operation of a step: a put (value = payload[off:off+n])
// or a delete.
type op struct {
	del bool
	key uint64
	off int // offset of the value in the payload
	n   int
}

// decodeStep decodes a payload whose checksum matched into ops (appended to
// ops[:0]). It never allocates more than the payload's length justifies.
func decodeStep(payload []byte, ops []op) ([]op, error) {
	return walkStep(payload, ops[:0], true)
}

// checkStep reports whether payload decodes as a step, as decodeStep
// would, without allocating: it walks the counts, keys and value lengths
// and jumps over the values, so it costs a few operations per put or
// delete however long the values are.
func checkStep(payload []byte) error {
	_, err := walkStep(payload, nil, false)
	return err
}

// walkStep is decodeStep (fill set: ops are appended) and checkStep.
func walkStep(payload []byte, ops []op, fill bool) ([]op, error) {
	p := 0
	next := func() (uint64, error) {
		v, n := binary.Uvarint(payload[p:])
		if n <= 0 {
			return 0, errors.New("bad varint in step")
		}
		p += n
		return v, nil
	}
	nputs, err := next()
	if err != nil {
		return nil, err
	}
	ndels, err := next()
	if err != nil {
		return nil, err
	}
	// Every put takes at least 2 bytes and every delete 1.
	rest := uint64(len(payload) - p)
	if nputs > rest/2 || ndels > rest || 2*nputs+ndels > rest {
		return nil, fmt.Errorf("step claims %d puts and %d deletes in %d bytes", nputs, ndels, rest)
	}
	for range nputs {
		key, err := next()
		if err != nil {
			return nil, err
		}
		n, err := next()
		if err != nil {
			return nil, err
		}
		if n > uint64(len(payload)-p) {
			return nil, fmt.Errorf("value of %d bytes overruns the step", n)
		}
		if fill {
			ops = append(ops, op{key: key, off: p, n: int(n)})
		}
		p += int(n)
	}
	for range ndels {
		key, err := next()
		if err != nil {
			return nil, err
		}
		if fill {
			ops = append(ops, op{del: true, key: key})
		}
	}
	if p != len(payload) {
		return nil, fmt.Errorf("%d trailing bytes after the step", len(payload)-p)
	}
	return ops, nil
}

// uvarintLen is the length of v as a uvarint.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
