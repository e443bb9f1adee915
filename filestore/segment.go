package filestore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	segmentExt = ".seg"
	tmpExt     = ".tmp"
	lockName   = "LOCK"
)

// segment is one file of the log.
type segment struct {
	num  uint64
	path string
	f    *os.File
	size int64 // bytes in the file, header included (for the active segment: written + pending)
	live int64 // payload bytes of the records in it that are still current

	compacted bool  // written by a compaction
	liveAfter int64 // live when it was written or opened: nothing died since if live == liveAfter
}

// segmentName is the file name of segment num: 16 hex digits.
func segmentName(num uint64) string {
	return fmt.Sprintf("%016x%s", num, segmentExt)
}

// listSegments returns the numbers of the segment files in dir, ascending,
// and removes files a crash left behind (compaction output not renamed).
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	var nums []uint64
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, tmpExt):
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("filestore: %w", err)
			}
		case strings.HasSuffix(name, segmentExt):
			hex := strings.TrimSuffix(name, segmentExt)
			n, err := strconv.ParseUint(hex, 16, 64)
			if err != nil || len(hex) != 16 || n == 0 {
				return nil, fmt.Errorf("%w: unexpected file %s", ErrCorrupt, filepath.Join(dir, name))
			}
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return nums, nil
}

// createSegment creates segment num in dir with its header, synced, and
// the directory synced, so that the file survives a crash.
func createSegment(dir string, num uint64, flags byte) (*segment, error) {
	path := filepath.Join(dir, segmentName(num))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if err := writeHeader(f, num, flags); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return &segment{num: num, path: path, f: f, size: headerSize}, nil
}

// writeHeader writes and syncs the header of segment num at the start of f.
func writeHeader(f *os.File, num uint64, flags byte) error {
	if _, err := f.WriteAt(appendHeader(nil, header{flags: flags, number: num}), 0); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if err := syncData(f); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	return nil
}

// scanResult is what scanning a segment found.
type scanResult struct {
	flags byte
	end   int64 // offset just past the last valid frame
	torn  bool  // the file goes on past end with bytes that are not a valid frame
}

// scanSegment reads the segment file f (path, number num, size bytes) and
// calls step for every frame, in order, with the frame's offset, its
// payload (valid only during the call) and its decoded ops. In the last
// segment (tail set) an incomplete or damaged frame ends the scan: what
// follows is a torn write, reported in scanResult.torn. Elsewhere it is
// corruption. A frame whose checksum matches but does not decode is
// corruption anywhere.
func scanSegment(f *os.File, path string, num uint64, size int64, tail bool, step func(off int64, payload []byte, ops []op) error) (scanResult, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 256<<10)
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if tail && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
			return scanResult{end: 0, torn: size > 0}, nil
		}
		return scanResult{}, corruptf(path, 0, "segment header: %v", err)
	}
	h, err := parseHeader(hdr[:])
	if err != nil {
		if tail && allZero(hdr[:]) {
			return scanResult{end: 0, torn: true}, nil
		}
		return scanResult{}, corruptf(path, 0, "%v", err)
	}
	if h.number != num {
		return scanResult{}, corruptf(path, 8, "header says segment %d", h.number)
	}
	res := scanResult{flags: h.flags, end: headerSize}
	var (
		fh      [frameHeaderSize]byte
		payload []byte
		ops     []op
	)
	off := int64(headerSize)
	bad := func(format string, args ...any) (scanResult, error) {
		if tail {
			res.torn = true
			return res, nil
		}
		return scanResult{}, corruptf(path, off, format, args...)
	}
	for off < size {
		if _, err := io.ReadFull(r, fh[:]); err != nil {
			return bad("incomplete frame header")
		}
		n := int64(binary.LittleEndian.Uint32(fh[0:4]))
		if n == 0 || n > maxStepSize || n > size-off-frameHeaderSize {
			return bad("frame length %d does not fit", n)
		}
		if int64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return bad("incomplete frame: %v", err)
		}
		if !frameCRCOK(fh[:], payload) {
			return bad("frame checksum mismatch")
		}
		ops, err = decodeStep(payload, ops)
		if err != nil {
			return scanResult{}, corruptf(path, off, "%v", err)
		}
		if err := step(off, payload, ops); err != nil {
			return scanResult{}, err
		}
		off += frameHeaderSize + n
		res.end = off
	}
	return res, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
