package filestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// Store is a [mqttkeep.Store] kept in a directory of log segments. It is
// safe for concurrent use; concurrent durable Applies share one fsync.
// Open it with [Open]; the zero value is not usable.
type Store struct {
	dir  string
	opts options
	lock *os.File

	// compactMu lets one compaction run at a time. Lock order: compactMu,
	// mu.
	compactMu sync.Mutex

	mu       sync.Mutex
	cond     sync.Cond // on mu: a group sync ended (syncSeg changed)
	commit             // group commit state, see commit.go
	index    map[uint64]loc
	bytes    int64               // sum of the live values' lengths
	segs     map[uint64]*segment // every segment, the active one included
	active   *segment
	written  int64  // bytes of the active segment written to its file
	pending  []byte // frames appended after written, not yet written
	seq      uint64 // number of the last step appended
	err      error  // sticky: a failed write or sync leaves the store unusable
	closed   bool
	stats    Stats
	valOffs  []int          // scratch for Apply
	salvaged *SalvageReport // what recovery skipped, with opts.salvage only
	compactQ chan struct{}  // a token: compaction requested (autoCompact)
	wg       sync.WaitGroup
}

// loc is where a live record's value is.
type loc struct {
	seg uint64 // segment number
	off int64  // offset of the value in the segment file
	n   int64  // value length
	rec int64  // payload bytes of the whole record (key, length, value)
}

// Stats is a snapshot of a [Store]'s counters, from [Store.Stats].
type Stats struct {
	// Records and Bytes are the live records and the sum of their values'
	// lengths (what the limits count).
	Records int
	Bytes   int64
	// Segments and FileBytes are the segment files and their total size.
	Segments  int
	FileBytes int64
	// Steps counts Apply calls that changed something since Open; Syncs
	// counts the fsyncs (fdatasync on Linux) the store made since Open,
	// including those of new segments and compactions; Compactions counts
	// finished compactions.
	Steps       uint64
	Syncs       uint64
	Compactions uint64
	// SyncTime is the time the group commits spent in fsync since Open
	// (SyncTime / GroupSyncs is what one took on average); GroupSyncs
	// counts them (Syncs less those of new segments, compactions and Open).
	SyncTime   time.Duration
	GroupSyncs uint64
	// MaxWaitRounds is the most group-commit rounds (a write and an
	// fsync each) that one durable Apply has waited for: the round under
	// way when it arrived and its own, so at most 2.
	MaxWaitRounds uint64
	// TornBytes is how many bytes of a torn last write (a crash in the
	// middle of one) Open cut off the end of the log: bytes at the end of
	// the last segment with no whole frame after them; 0 after a clean
	// stop. Damage with whole frames after it is never counted here:
	// Open returns a *CorruptError for it.
	TornBytes int64
	// CompactionErr is the error of the last background compaction that
	// failed, nil if none did; the store goes on without it.
	CompactionErr error
}

// ErrLocked is matched by the error [Open] returns when another Store, in
// this process or another, has the directory open.
var ErrLocked = errors.New("filestore: store is in use by another Store")

// errClosed is returned after Close.
var errClosed = fmt.Errorf("filestore: store closed: %w", mqttkeep.ErrClosed)

// flushThreshold is how many pending bytes a non-durable Apply lets build
// up before it writes them to the file.
const flushThreshold = 256 << 10

var _ mqttkeep.Store = (*Store)(nil)

// Open opens the store in directory path, creating the directory if
// needed, and recovers its contents (the package doc has the details). A
// torn tail, bytes at the end of the last segment with no whole frame
// after them (what a crash during a write leaves), is cut off and counted
// in [Stats].TornBytes. Any other damage, in particular a damaged frame
// with whole ones after it, returns a [*CorruptError] matching
// [ErrCorrupt] that names each damaged range's file, offset and length
// and counts the whole steps after the first; Open then has changed no
// file, and [Salvage] keeps those steps. Only one Store may have a
// directory open at a time: a second Open returns an error matching
// [ErrLocked].
func Open(path string, opts ...Option) (*Store, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return open(path, o)
}

// open is Open with its options applied (and Salvage's).
func open(path string, o options) (*Store, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(path, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if err := lockFile(lf); err != nil {
		lf.Close()
		return nil, err
	}
	s := &Store{
		dir:      path,
		opts:     o,
		lock:     lf,
		index:    make(map[uint64]loc),
		segs:     make(map[uint64]*segment),
		compactQ: make(chan struct{}, 1),
	}
	s.cond.L = &s.mu
	s.kick = make(chan struct{}, 1)
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.wg.Add(1)
	go s.syncer()
	if o.autoCompact {
		s.wg.Add(1)
		go s.compactor()
		s.mu.Lock()
		if s.worthCompactingLocked() { // a compaction the last process did not get to
			s.compactQ <- struct{}{}
		}
		s.mu.Unlock()
	}
	return s, nil
}

// Load implements [mqttkeep.Store]: fn gets every record in ascending key
// order. It reads the values in batches of about 1 MiB and calls fn
// without holding the store's lock, so fn may call the store. With Applies
// running meanwhile, Load gives the keys present when it began, each as it
// is when its batch is read (a key deleted by then is skipped).
func (s *Store) Load(fn func(key uint64, value []byte) error) error {
	s.mu.Lock()
	if err := s.usableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	keys := make([]uint64, 0, len(s.index))
	for k := range s.index {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	slices.Sort(keys)

	const batchBytes = 1 << 20
	var (
		buf  []byte
		locs []loc
		got  []uint64
		offs []int
	)
	for len(keys) > 0 {
		locs, got = locs[:0], got[:0]
		s.mu.Lock()
		if err := s.usableLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
		i, size := 0, int64(0)
		for ; i < len(keys) && (i == 0 || size < batchBytes); i++ {
			if l, ok := s.index[keys[i]]; ok {
				locs = append(locs, l)
				got = append(got, keys[i])
				size += l.n
			}
		}
		var err error
		buf, offs, err = s.readBatchLocked(locs, buf[:0], offs[:0])
		s.mu.Unlock()
		if err != nil {
			return err
		}
		keys = keys[i:]
		for j, k := range got {
			v := buf[offs[j] : offs[j]+int(locs[j].n) : offs[j]+int(locs[j].n)]
			if err := fn(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// readBatchLocked reads the values at locs into buf and returns it with
// each value's offset in it. Values close together in one segment (the
// usual case: keys grow with the log) are read with one ReadAt per run.
func (s *Store) readBatchLocked(locs []loc, buf []byte, offs []int) ([]byte, []int, error) {
	const maxGap = 4 << 10
	for i := 0; i < len(locs); {
		first := locs[i]
		end := first.off + first.n
		j := i + 1
		for ; j < len(locs); j++ {
			l := locs[j]
			if l.seg != first.seg || l.off < end || l.off-end > maxGap || l.off+l.n-first.off > 1<<20 {
				break
			}
			end = l.off + l.n
		}
		start := len(buf)
		buf = slices.Grow(buf, int(end-first.off))[:start+int(end-first.off)]
		if err := s.readLocked(loc{seg: first.seg, off: first.off, n: end - first.off}, buf[start:]); err != nil {
			return nil, nil, err
		}
		for k := i; k < j; k++ {
			offs = append(offs, start+int(locs[k].off-first.off))
		}
		i = j
	}
	return buf, offs, nil
}

// Get implements [mqttkeep.Store]: the value under key, in a new slice, or
// an error matching [mqttkeep.ErrNotFound].
func (s *Store) Get(key uint64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return nil, err
	}
	l, ok := s.index[key]
	if !ok {
		return nil, fmt.Errorf("filestore: key %d: %w", key, mqttkeep.ErrNotFound)
	}
	v := make([]byte, l.n)
	if err := s.readLocked(l, v); err != nil {
		return nil, err
	}
	return v, nil
}

// readLocked reads the value at l into v (len l.n). s.mu is held.
func (s *Store) readLocked(l loc, v []byte) error {
	if l.seg == s.active.num && l.off+l.n > s.written {
		if err := s.flushLocked(); err != nil {
			return err
		}
	}
	seg := s.segs[l.seg]
	if _, err := seg.f.ReadAt(v, l.off); err != nil {
		return fmt.Errorf("filestore: read %s at %d: %w", seg.path, l.off, err)
	}
	return nil
}

// Apply implements [mqttkeep.Store]. The step is one frame in the log;
// with durable set, Apply returns after an fsync that covers it, shared
// with every other Apply waiting at the time. A step over the limits
// returns an error matching [mqttkeep.ErrQueueFull] that names the limit.
// After a failed write or sync every call returns that error: reopen the
// store to recover what reached the disk.
func (s *Store) Apply(puts []mqttkeep.Record, deletes []uint64, durable bool) error {
	size := stepSize(puts, deletes)
	if size > maxStepSize {
		return fmt.Errorf("filestore: a step of %d bytes is over the %d-byte limit", size, maxStepSize)
	}
	s.mu.Lock()
	if err := s.usableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	if len(puts) == 0 && len(deletes) == 0 {
		if durable {
			return s.syncLocked(s.seq)
		}
		s.mu.Unlock()
		return nil
	}
	if err := s.checkLimitsLocked(puts, deletes); err != nil {
		s.mu.Unlock()
		return err
	}
	frameLen := int64(frameHeaderSize + size)
	if s.active.size > headerSize && s.active.size+frameLen > s.opts.segmentSize {
		if err := s.rollLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	off := s.active.size
	s.valOffs = slices.Grow(s.valOffs[:0], len(puts))[:len(puts)]
	s.pending = appendFrame(s.pending, puts, deletes, size, s.valOffs)
	s.active.size += frameLen
	s.seq++
	seq := s.seq
	s.stats.Steps++
	for i, r := range puts {
		s.setLocked(r.Key, loc{seg: s.active.num, off: off + int64(s.valOffs[i]), n: int64(len(r.Value)), rec: int64(recordSize(r.Key, len(r.Value)))})
	}
	for _, k := range deletes {
		s.deleteLocked(k)
	}
	if durable {
		return s.syncLocked(seq)
	}
	var err error
	if len(s.pending) >= flushThreshold {
		err = s.flushLocked()
	}
	s.mu.Unlock()
	return err
}

// checkLimitsLocked returns an error matching ErrQueueFull if the step
// would leave the store over a limit.
func (s *Store) checkLimitsLocked(puts []mqttkeep.Record, deletes []uint64) error {
	records, bytes := int64(len(s.index)), s.bytes
	var seen map[uint64]int64 // keys this step touched: their new length, -1 if deleted
	if len(puts)+len(deletes) > 1 {
		seen = make(map[uint64]int64, len(puts)+len(deletes))
	}
	current := func(k uint64) (int64, bool) {
		if n, ok := seen[k]; ok {
			return n, n >= 0
		}
		l, ok := s.index[k]
		return l.n, ok
	}
	for _, r := range puts {
		if n, ok := current(r.Key); ok {
			bytes -= n
		} else {
			records++
		}
		bytes += int64(len(r.Value))
		if seen != nil {
			seen[r.Key] = int64(len(r.Value))
		}
	}
	for _, k := range deletes {
		if n, ok := current(k); ok {
			records--
			bytes -= n
			if seen != nil {
				seen[k] = -1
			}
		}
	}
	switch {
	case records > int64(len(s.index)) && records > int64(s.opts.maxRecords):
		return fmt.Errorf("filestore: %d records would exceed WithMaxRecords(%d): %w", records, s.opts.maxRecords, mqttkeep.ErrQueueFull)
	case bytes > s.bytes && bytes > s.opts.maxBytes:
		return fmt.Errorf("filestore: %d bytes of values would exceed WithMaxBytes(%d): %w", bytes, s.opts.maxBytes, mqttkeep.ErrQueueFull)
	}
	return nil
}

// setLocked makes l the location of key.
func (s *Store) setLocked(key uint64, l loc) {
	if old, ok := s.index[key]; ok {
		s.bytes -= old.n
		if seg := s.segs[old.seg]; seg != nil {
			seg.live -= old.rec
		}
	}
	s.index[key] = l
	s.bytes += l.n
	s.segs[l.seg].live += l.rec
}

// deleteLocked forgets key, if present.
func (s *Store) deleteLocked(key uint64) {
	old, ok := s.index[key]
	if !ok {
		return
	}
	delete(s.index, key)
	s.bytes -= old.n
	if seg := s.segs[old.seg]; seg != nil {
		seg.live -= old.rec
	}
}

// flushLocked writes the pending frames to the active segment's file.
func (s *Store) flushLocked() error {
	if len(s.pending) == 0 {
		return nil
	}
	n, err := s.active.f.WriteAt(s.pending, s.written)
	s.written += int64(n)
	if err != nil {
		return s.failLocked(fmt.Errorf("filestore: %w", err))
	}
	if cap(s.pending) > 4*flushThreshold {
		s.pending = nil
	} else {
		s.pending = s.pending[:0]
	}
	return nil
}

// rollLocked seals the active segment (written and synced, so that no
// later step can survive a crash that this one does not) and starts the
// next one.
func (s *Store) rollLocked() error {
	if err := s.flushLocked(); err != nil {
		return err
	}
	old := s.active
	if err := syncData(old.f); err != nil {
		return s.failLocked(fmt.Errorf("filestore: %w", err))
	}
	seg, err := createSegment(s.dir, old.num+1, 0)
	s.stats.Syncs += 3
	if err != nil {
		return s.failLocked(err)
	}
	s.segs[seg.num] = seg
	s.active = seg
	s.written = headerSize
	if s.opts.autoCompact && s.worthCompactingLocked() {
		select {
		case s.compactQ <- struct{}{}:
		default:
		}
	}
	return nil
}

// failLocked makes err sticky and returns it.
func (s *Store) failLocked(err error) error {
	if s.err == nil {
		s.err = err
	}
	return s.err
}

// usableLocked returns why the store cannot be used, or nil.
func (s *Store) usableLocked() error {
	if s.closed {
		return errClosed
	}
	return s.err
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Records = len(s.index)
	st.Bytes = s.bytes
	st.Segments = len(s.segs)
	for _, seg := range s.segs {
		st.FileBytes += seg.size
	}
	return st
}

// Close writes and syncs what is pending, stops the background
// compaction and releases the files and the directory lock. Calls after
// Close return an error matching [mqttkeep.ErrClosed].
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	s.closed = true
	close(s.compactQ)
	close(s.kick)
	s.mu.Unlock()
	s.wg.Wait() // the syncer has answered every durable Apply
	// Compaction has stopped; lock in the usual order for the last sync.
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.err
	if err == nil && (len(s.pending) > 0 || s.synced < s.seq) {
		if err = s.flushLocked(); err == nil {
			if err = syncData(s.active.f); err != nil {
				err = fmt.Errorf("filestore: %w", err)
			}
		}
	}
	if cerr := s.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

// closeFiles closes every segment file and the lock file.
func (s *Store) closeFiles() error {
	var errs []error
	for _, seg := range s.segs {
		if err := seg.f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.segs = nil
	if err := s.lock.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
