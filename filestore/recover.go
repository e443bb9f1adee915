package filestore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// recover reads the directory into s (Open's work). It first reads every
// segment in force into the index without changing a file; if that found
// damage and s.opts.salvage is off, it returns a *CorruptError and the
// files are as they were. Otherwise it removes what an interrupted
// compaction left, cuts a torn tail off the last segment, makes that the
// active segment and, when salvaging, copies every damaged range aside
// (s.salvaged holds the report).
func (s *Store) recover() error {
	nums, tmps, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	if len(nums) == 0 {
		if err := removeAll(s.dir, tmps, nil); err != nil {
			return err
		}
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
	var superseded []string
	for _, seg := range files[:start] {
		seg.f.Close()
		superseded = append(superseded, seg.path)
	}
	files = files[start:]
	for _, seg := range files {
		s.segs[seg.num] = seg
	}

	var (
		damage     []Damage
		stepsAfter int
		steps      int
		tail       scanResult
	)
	for i, seg := range files {
		res, err := s.replay(seg, i == len(files)-1)
		if err != nil {
			return err // the caller closes s.segs
		}
		if len(damage) > 0 {
			stepsAfter += res.steps
		} else {
			stepsAfter += res.stepsAfter
		}
		steps += res.steps
		damage = append(damage, res.damage...)
		seg.damaged = len(res.damage) > 0
		tail = res
	}
	if len(damage) > 0 && !s.opts.salvage {
		return &CorruptError{Damage: damage, StepsAfter: stepsAfter}
	}

	// Nothing has changed on disk so far; from here on the files change.
	if err := removeAll(s.dir, tmps, superseded); err != nil {
		return err
	}
	if err := s.finishTail(files[len(files)-1], tail); err != nil {
		return err
	}
	if len(damage) == 0 {
		return nil
	}
	for i := range damage {
		saved, err := saveDamage(damage[i])
		if err != nil {
			return err
		}
		damage[i].SavedTo = saved
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.salvaged = &SalvageReport{Damage: damage, Steps: steps, StepsAfterDamage: stepsAfter}
	return nil
}

// replay scans one segment into the index (tail: it is the last one),
// changing no file.
func (s *Store) replay(seg *segment, tail bool) (scanResult, error) {
	fi, err := seg.f.Stat()
	if err != nil {
		return scanResult{}, fmt.Errorf("filestore: %w", err)
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
		return res, err
	}
	seg.compacted = res.flags&flagCompacted != 0
	seg.liveAfter = seg.live
	seg.size = fi.Size()
	return res, nil
}

// finishTail makes the last segment, scanned into res, the active one: it
// cuts a torn write off its end (counted in Stats.TornBytes) and syncs it.
func (s *Store) finishTail(seg *segment, res scanResult) error {
	switch {
	case res.end < headerSize: // the header itself was torn: the segment is new
		s.stats.TornBytes = seg.size
		if err := seg.f.Truncate(0); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
		if err := writeHeader(seg.f, seg.num, 0); err != nil {
			return err
		}
		res.end = headerSize
	case res.torn:
		s.stats.TornBytes = seg.size - res.end
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

// removeAll removes the files a crash left behind (temporary files, and
// segments a compacted one supersedes) and syncs the directory if there
// were any.
func removeAll(dir string, tmps, superseded []string) error {
	if len(tmps)+len(superseded) == 0 {
		return nil
	}
	for _, p := range append(tmps, superseded...) {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("filestore: %w", err)
		}
	}
	return syncDir(dir)
}

func closeAll(segs []*segment) {
	for _, seg := range segs {
		seg.f.Close()
	}
}
