package filestore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// scanResult is what scanning a segment found.
type scanResult struct {
	flags      byte     // from the header; 0 if the header is damaged
	end        int64    // where the readable part ends: past the last whole frame or damaged range; in the tail, where a torn write begins
	torn       bool     // tail only: from end on there is no whole frame, as a crash during a write leaves
	damage     []Damage // the ranges that hold no whole frame, a torn tail aside, in offset order
	steps      int      // whole frames
	stepsAfter int      // whole frames after the first damaged range
}

// scanSegment reads the segment file f (path, number num, size bytes) and
// calls step for every whole frame, in order, with the frame's offset, its
// payload (valid only during the call) and its decoded ops. A frame is
// whole when its length fits, its step decodes and its checksum matches.
//
// Where a frame is not whole, scanSegment looks for the next whole frame
// at every later offset (see nextWhole) and goes on from there: the bytes
// in between are a damaged range. Only in the last segment (tail set),
// when no whole frame follows, is it a torn write (scanResult.torn)
// rather than damage. A header whose checksum fails is a damaged range of
// its own (the frames start after it all the same), except in the tail,
// where a header of zeros with no whole frame after it is a segment whose
// creation a crash interrupted (torn, end 0).
//
// An error is returned for what no damage explains and Salvage must not
// touch (a whole header of an unknown version or of another segment), and
// for failed reads.
func scanSegment(f *os.File, path string, num uint64, size int64, tail bool, step func(off int64, payload []byte, ops []op) error) (scanResult, error) {
	if size < headerSize {
		if tail { // the crash came while the segment was being created
			return scanResult{torn: size > 0}, nil
		}
		return scanResult{end: size, damage: []Damage{{Path: path, Length: size, Reason: "segment shorter than its header"}}}, nil
	}
	var res scanResult
	var hdr [headerSize]byte
	if err := readFullAt(f, hdr[:], 0); err != nil {
		return res, fmt.Errorf("filestore: read %s: %w", path, err)
	}
	h, err := parseHeader(hdr[:])
	switch {
	case errors.Is(err, errUnknownVersion):
		return res, corruptf(path, 4, "%v", err)
	case err != nil:
		res.damage = append(res.damage, Damage{Path: path, Length: headerSize, Reason: err.Error()})
	case h.number != num:
		return res, corruptf(path, 8, "header says segment %d", h.number)
	default:
		res.flags = h.flags
	}
	whole := func(off int64, payload []byte, ops []op) error {
		res.steps++
		if len(res.damage) > 0 {
			res.stepsAfter++
		}
		return step(off, payload, ops)
	}
	off, reason, err := scanWhole(f, path, headerSize, size, whole)
	if err != nil {
		return res, err
	}
	if off < size {
		// Damage or a torn tail. What follows is read from memory, where
		// trying every offset for a frame is cheap.
		rest := make([]byte, size-off)
		if err := readFullAt(f, rest, off); err != nil {
			return res, fmt.Errorf("filestore: read %s at %d: %w", path, off, err)
		}
		if off, err = scanDamaged(rest, off, tail, path, reason, &res, whole); err != nil {
			return res, err
		}
	}
	res.end = off
	if tail && res.steps == 0 && len(res.damage) == 1 && res.damage[0].Offset == 0 && allZero(hdr[:]) {
		return scanResult{torn: true}, nil
	}
	return res, nil
}

// scanWhole calls step for each whole frame from off on, read in order,
// and returns the offset of the first frame that is not whole (size if
// there is none) and what is wrong with it.
func scanWhole(f *os.File, path string, off, size int64, step func(off int64, payload []byte, ops []op) error) (int64, string, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, off, size-off), int(min(256<<10, size-off)))
	var (
		fh      [frameHeaderSize]byte
		payload []byte
		ops     []op
	)
	for off < size {
		if _, err := io.ReadFull(r, fh[:]); err != nil {
			if !isEOF(err) {
				return off, "", fmt.Errorf("filestore: read %s at %d: %w", path, off, err)
			}
			return off, "incomplete frame header", nil
		}
		n := int64(binary.LittleEndian.Uint32(fh[0:4]))
		if n == 0 || n > maxStepSize || n > size-off-frameHeaderSize {
			return off, fmt.Sprintf("frame length %d does not fit", n), nil
		}
		if int64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			if !isEOF(err) {
				return off, "", fmt.Errorf("filestore: read %s at %d: %w", path, off, err)
			}
			return off, "incomplete frame", nil
		}
		if !frameCRCOK(fh[:], payload) {
			return off, "frame checksum mismatch", nil
		}
		var err error
		if ops, err = decodeStep(payload, ops); err != nil {
			return off, "step does not decode: " + err.Error(), nil
		}
		if err := step(off, payload, ops); err != nil {
			return off, "", err
		}
		off += frameHeaderSize + n
	}
	return off, "", nil
}

// scanDamaged goes on where scanWhole stopped, at base, with rest the
// bytes of the file from base to its end; reason is what is wrong at
// base. Each range that holds no whole frame is added to res.damage,
// unless it runs to the end of the tail (res.torn). It calls step for
// the whole frames between and returns where the readable part ends.
func scanDamaged(rest []byte, base int64, tail bool, path, reason string, res *scanResult, step func(off int64, payload []byte, ops []op) error) (int64, error) {
	var ops []op
	for i := 0; i < len(rest); {
		if n, ok := wholeAt(rest, i); ok {
			payload := rest[i+frameHeaderSize : i+frameHeaderSize+n]
			var err error
			if ops, err = decodeStep(payload, ops); err != nil {
				return 0, err // wholeAt checked it
			}
			if err := step(base+int64(i), payload, ops); err != nil {
				return 0, err
			}
			i += frameHeaderSize + n
			continue
		}
		problem, n, summed := frameProblem(rest, i)
		if reason == "" {
			reason = problem
		}
		if summed {
			// Its checksum matches, so its length is the one written and
			// no crash left it: the damage is this frame, in the tail too.
			res.damage = append(res.damage, Damage{Path: path, Offset: base + int64(i), Length: int64(frameHeaderSize + n), Reason: reason})
			reason = ""
			i += frameHeaderSize + n
			continue
		}
		j := nextWhole(rest, i+1)
		if j < 0 && tail {
			res.torn = true
			return base + int64(i), nil
		}
		if j < 0 {
			j = len(rest)
		}
		res.damage = append(res.damage, Damage{Path: path, Offset: base + int64(i), Length: int64(j - i), Reason: reason})
		reason = ""
		i = j
	}
	return base + int64(len(rest)), nil
}

// nextWhole returns the first offset at or after from in b at which a
// whole frame begins, -1 if there is none. It tries every offset in turn,
// so that a damaged length cannot make it pass over a whole frame.
func nextWhole(b []byte, from int) int {
	for i := from; i+frameHeaderSize+2 <= len(b); i++ {
		if _, ok := wholeAt(b, i); ok {
			return i
		}
	}
	return -1
}

// wholeAt reports whether a whole frame begins at b[i:] and its payload
// length. The checks go from cheap to dear: the length fits, the step
// decodes (a walk that jumps over the values), and last the checksum, so
// that trying every offset of a long run of damage costs little more than
// the checksums of the frames really there.
func wholeAt(b []byte, i int) (int, bool) {
	if len(b)-i < frameHeaderSize+2 {
		return 0, false
	}
	n := int64(binary.LittleEndian.Uint32(b[i:]))
	if n < 2 || n > maxStepSize || n > int64(len(b)-i-frameHeaderSize) {
		return 0, false
	}
	payload := b[i+frameHeaderSize : i+frameHeaderSize+int(n)]
	if checkStep(payload) != nil || !frameCRCOK(b[i:], payload) {
		return 0, false
	}
	return int(n), true
}

// frameProblem says what is wrong with the frame at b[i:], which is not
// whole; summed reports that its length fits and its checksum matches
// (so only its step does not decode), n is then its payload length.
func frameProblem(b []byte, i int) (problem string, n int, summed bool) {
	if len(b)-i < frameHeaderSize {
		return "incomplete frame header", 0, false
	}
	m := int64(binary.LittleEndian.Uint32(b[i:]))
	payload := b[i+frameHeaderSize:]
	switch {
	case m == 0 || m > maxStepSize || m > int64(len(payload)):
		return fmt.Sprintf("frame length %d does not fit", m), 0, false
	case !frameCRCOK(b[i:], payload[:m]):
		return "frame checksum mismatch", 0, false
	}
	if err := checkStep(payload[:m]); err != nil {
		return "step does not decode: " + err.Error(), int(m), true
	}
	return "not a frame", 0, false // not reached: the frame is whole
}

// readFullAt reads len(b) bytes at off; a short read is an error.
func readFullAt(f io.ReaderAt, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
