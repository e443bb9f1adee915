package filestore

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/mqttkeep/mqttkeep"
)

// Compact starts a new segment, then rewrites the records still live in
// every older segment into one compacted segment, in key order, and
// removes the older ones. Apply, Get and Load go on meanwhile (they wait
// only for the start and for the final swap, both in memory). A crash at
// any point leaves either the old segments or the new one in force, never
// a mix. With [WithAutoCompact] (the default) the store calls it by
// itself; an error leaves the store as it was.
func (s *Store) Compact() error {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	return s.compact()
}

// compactor runs Compact whenever a new segment asks for it, until Close.
func (s *Store) compactor() {
	defer s.wg.Done()
	for range s.compactQ {
		err := s.Compact()
		if err != nil && !errors.Is(err, mqttkeep.ErrClosed) {
			s.mu.Lock()
			s.stats.CompactionErr = err
			s.mu.Unlock()
		}
	}
}

// worthCompactingLocked reports whether at least half of the bytes in the
// sealed segments are dead.
func (s *Store) worthCompactingLocked() bool {
	var total, live int64
	for _, seg := range s.segs {
		if seg != s.active {
			total += seg.size - headerSize
			live += seg.live
		}
	}
	return total > 0 && 2*live <= total
}

// item is a live record to move.
type item struct {
	key uint64
	l   loc
}

// compact does Compact's work; s.compactMu is held.
func (s *Store) compact() error {
	s.mu.Lock()
	if err := s.usableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	if s.active.size > headerSize {
		if err := s.rollLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	var sealed []*segment
	for _, seg := range s.segs {
		if seg != s.active {
			sealed = append(sealed, seg)
		}
	}
	slices.SortFunc(sealed, func(a, b *segment) int { return cmp.Compare(a.num, b.num) })
	if len(sealed) == 0 || len(sealed) == 1 && sealed[0].compacted && sealed[0].live == sealed[0].liveAfter && !sealed[0].damaged {
		s.mu.Unlock()
		return nil
	}
	var items []item
	for k, l := range s.index {
		if l.seg != s.active.num {
			items = append(items, item{k, l})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.key, b.key) })

	// Sealed segments do not change and only compaction closes them, so
	// they are read without the lock.
	last := sealed[len(sealed)-1]
	byNum := make(map[uint64]*segment, len(sealed))
	for _, seg := range sealed {
		byNum[seg.num] = seg
	}
	seg, newLocs, err := s.writeCompacted(last.num, items, byNum)
	if err != nil {
		return err
	}
	var errs []error
	if err := syncDir(s.dir); err != nil {
		errs = append(errs, err)
	}
	for _, old := range sealed[:len(sealed)-1] {
		if err := os.Remove(old.path); err != nil {
			errs = append(errs, fmt.Errorf("filestore: %w", err))
		}
	}
	if err := syncDir(s.dir); err != nil {
		errs = append(errs, err)
	}

	s.mu.Lock()
	// A group commit may still be syncing a segment closed here.
	for s.syncSeg != nil && byNum[s.syncSeg.num] == s.syncSeg {
		s.cond.Wait()
	}
	for i, it := range items {
		if cur, ok := s.index[it.key]; ok && cur == it.l {
			s.index[it.key] = newLocs[i]
			seg.live += newLocs[i].rec
		}
	}
	seg.liveAfter = seg.live
	for _, old := range sealed {
		if err := old.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("filestore: %w", err))
		}
		delete(s.segs, old.num)
	}
	s.segs[seg.num] = seg
	s.stats.Compactions++
	s.stats.Syncs += 3
	s.mu.Unlock()
	return errors.Join(errs...)
}

// compactFrameBytes is how many bytes of values a frame of a compacted
// segment takes records until (the last one can take it past that: a
// long value shares a frame with the records before it). A frame is what
// a checksum covers, so damage to a byte of it loses every record in it:
// with 64-byte values, 64 records, for 11 bytes of framing and counts.
const compactFrameBytes = 4 << 10

// writeCompacted writes items into a new compacted segment num (a
// temporary file, synced, then renamed over the old segment num) and
// returns it with the items' new locations. sealed holds the segments the
// items are in.
func (s *Store) writeCompacted(num uint64, items []item, sealed map[uint64]*segment) (*segment, []loc, error) {
	final := filepath.Join(s.dir, segmentName(num))
	tmp := final + tmpExt
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("filestore: %w", err)
	}
	fail := func(err error) (*segment, []loc, error) {
		f.Close()
		os.Remove(tmp)
		return nil, nil, err
	}
	const batchBytes = 1 << 20 // written at a time
	est := int64(headerSize)
	for _, it := range items {
		est += it.l.rec
	}
	var (
		out     = appendHeader(make([]byte, 0, min(2*batchBytes, est+est/64+64)), header{flags: flagCompacted, number: num})
		written int64
		vals    []byte
		recs    []mqttkeep.Record
		offs    []int
		newLocs = make([]loc, len(items))
	)
	for i := 0; i < len(items); {
		// One step per compactFrameBytes of values.
		vals, recs = vals[:0], recs[:0]
		j := i
		for ; j < len(items) && (j == i || len(vals) < compactFrameBytes); j++ {
			l := items[j].l
			start := len(vals)
			vals = slices.Grow(vals, int(l.n))[:start+int(l.n)]
			old := sealed[l.seg]
			if _, err := old.f.ReadAt(vals[start:], l.off); err != nil {
				return fail(fmt.Errorf("filestore: read %s at %d: %w", old.path, l.off, err))
			}
		}
		start := 0
		for k := i; k < j; k++ {
			n := int(items[k].l.n)
			recs = append(recs, mqttkeep.Record{Key: items[k].key, Value: vals[start : start+n]})
			start += n
		}
		offs = slices.Grow(offs[:0], len(recs))[:len(recs)]
		frameOff := written + int64(len(out))
		size := stepSize(recs, nil)
		out = appendFrame(out, recs, nil, size, offs)
		for k := range recs {
			it := items[i+k]
			newLocs[i+k] = loc{seg: num, off: frameOff + int64(offs[k]), n: it.l.n, rec: it.l.rec}
		}
		if len(out) >= batchBytes {
			if _, err := f.Write(out); err != nil {
				return fail(fmt.Errorf("filestore: %w", err))
			}
			written += int64(len(out))
			out = out[:0]
		}
		i = j
	}
	if _, err := f.Write(out); err != nil {
		return fail(fmt.Errorf("filestore: %w", err))
	}
	written += int64(len(out))
	if err := syncData(f); err != nil {
		return fail(fmt.Errorf("filestore: %w", err))
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(fmt.Errorf("filestore: %w", err))
	}
	seg := &segment{num: num, path: final, f: f, size: written, compacted: true}
	return seg, newLocs, nil
}
