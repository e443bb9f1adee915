package filestore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// recover reads the directory into s (Open's work): it removes what an
// interrupted compaction left, replays every segment into the index, cuts
// a torn tail off the last one and makes it the active segment.
func (s *Store) recover() error {
	nums, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	if len(nums) == 0 {
		seg, err := createSegment(s.dir, 1, 0)
		if err != nil {
			return err
		}
		s.segs[seg.num] = seg
		s.active, s.written = seg, headerSize
		return nil
	}
	var files []*segment
	for _, n := range nums {
		path := filepath.Join(s.dir, segmentName(n))
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			closeAll(files)
			return fmt.Errorf("filestore: %w", err)
		}
		files = append(files, &segment{num: n, path: path, f: f})
	}
	// The newest compacted segment holds everything its predecessors
	// did: they are what a compaction had still to remove.
	start := 0
	for i := len(files) - 1; i >= 0 && start == 0; i-- {
		var b [headerSize]byte
		if _, err := files[i].f.ReadAt(b[:], 0); err != nil && !errors.Is(err, io.EOF) {
			closeAll(files)
			return fmt.Errorf("filestore: %w", err)
		}
		if h, err := parseHeader(b[:]); err == nil && h.flags&flagCompacted != 0 && h.number == files[i].num {
			start = i
		}
	}
	if start > 0 {
		for _, seg := range files[:start] {
			seg.f.Close()
			if err := os.Remove(seg.path); err != nil {
				closeAll(files[start:])
				return fmt.Errorf("filestore: %w", err)
			}
		}
		files = files[start:]
		if err := syncDir(s.dir); err != nil {
			closeAll(files)
			return err
		}
	}
	for _, seg := range files {
		s.segs[seg.num] = seg
	}
	for i, seg := range files {
		if err := s.replay(seg, i == len(files)-1); err != nil {
			return err // the caller closes s.segs
		}
	}
	return nil
}

// replay scans one segment into the index; the last one (tail) becomes the
// active segment, its torn end cut off.
func (s *Store) replay(seg *segment, tail bool) error {
	fi, err := seg.f.Stat()
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	res, err := scanSegment(seg.f, seg.path, seg.num, fi.Size(), tail, func(off int64, payload []byte, ops []op) error {
		for _, o := range ops {
			if o.del {
				s.deleteLocked(o.key)
				continue
			}
			s.setLocked(o.key, loc{
				seg: seg.num,
				off: off + frameHeaderSize + int64(o.off),
				n:   int64(o.n),
				rec: int64(recordSize(o.key, o.n)),
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	seg.compacted = res.flags&flagCompacted != 0
	seg.liveAfter = seg.live
	if !tail {
		seg.size = fi.Size()
		return nil
	}
	switch {
	case res.end == 0: // the header itself was torn: the segment is new
		s.stats.TornBytes = fi.Size()
		if err := seg.f.Truncate(0); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		if err := writeHeader(seg.f, seg.num, 0); err != nil {
			return err
		}
		res.end = headerSize
	case res.torn:
		s.stats.TornBytes = fi.Size() - res.end
		if err := seg.f.Truncate(res.end); err != nil {
			return fmt.Errorf("filestore: truncate torn tail of %s at %d: %w", seg.path, res.end, err)
		}
		fallthrough
	default:
		// What a killed process left in the page cache is now the
		// store's state: make it durable before anything follows it.
		if err := syncData(seg.f); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
	}
	s.stats.Syncs++
	seg.size = res.end
	s.active, s.written = seg, res.end
	return nil
}

func closeAll(segs []*segment) {
	for _, seg := range segs {
		seg.f.Close()
	}
}
