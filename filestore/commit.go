package filestore

import (
	"fmt"
	"sync"
	"time"
)

// commit is the group commit state of a Store, guarded by Store.mu.
//
// One goroutine per Store, the syncer, does every sync for durable
// Applies. A durable Apply queues itself as a waiter and wakes the syncer.
// The syncer takes the waiters queued so far, writes the pending frames
// and syncs the file without the lock; Applies arriving meanwhile queue
// for the next round, which starts as soon as this one ends. So each
// durable Apply waits for at most the sync under way when it arrived plus
// its own, every waiter is woken directly (no convoy on a lock), and the
// disk is never idle while someone waits.
type commit struct {
	synced  uint64        // number of the last step known to be durable
	rounds  uint64        // rounds finished
	syncSeg *segment      // the segment being synced, nil between syncs
	waiters []*waiter     // durable Applies waiting for the next sync
	spare   []*waiter     // the previous round's, reused
	kick    chan struct{} // wakes the syncer; closed by Close
	pool    sync.Pool     // of *waiter
}

// waiter is one durable Apply waiting for a sync; done carries the sync's
// outcome.
type waiter struct {
	done  chan error
	start uint64 // rounds when it queued
}

// syncLocked returns once step seq is durable. s.mu is held on entry and
// released on return.
func (s *Store) syncLocked(seq uint64) error {
	if s.synced >= seq {
		s.mu.Unlock()
		return nil
	}
	w, _ := s.pool.Get().(*waiter)
	if w == nil {
		w = &waiter{done: make(chan error, 1)}
	}
	w.start = s.rounds
	s.waiters = append(s.waiters, w)
	if len(s.waiters) == 1 {
		select {
		case s.kick <- struct{}{}:
		default: // already kicked
		}
	}
	s.mu.Unlock()
	err := <-w.done
	s.pool.Put(w)
	return err
}

// syncer runs the rounds of group commit until Close.
func (s *Store) syncer() {
	defer s.wg.Done()
	for range s.kick {
		s.mu.Lock()
		for len(s.waiters) > 0 {
			s.syncRoundLocked()
		}
		s.mu.Unlock()
	}
	// Close queues nothing after closing kick, but a waiter may have
	// queued just before.
	s.mu.Lock()
	for len(s.waiters) > 0 {
		s.syncRoundLocked()
	}
	s.mu.Unlock()
}

// syncRoundLocked writes the pending frames, syncs them and wakes the
// waiters queued before the write. s.mu is held, and released meanwhile.
func (s *Store) syncRoundLocked() {
	batch := s.waiters
	s.waiters = s.spare[:0]
	err := s.err
	if err == nil {
		err = s.flushLocked()
	}
	if err == nil {
		target, seg := s.seq, s.active
		s.syncSeg = seg
		s.stats.Syncs++
		s.stats.GroupSyncs++
		s.mu.Unlock()
		// Earlier segments were synced when they were sealed.
		t0 := time.Now()
		err = syncData(seg.f)
		d := time.Since(t0)
		s.mu.Lock()
		s.stats.SyncTime += d
		s.syncSeg = nil
		s.cond.Broadcast() // a compaction may wait to close seg
		if err != nil {
			err = s.failLocked(fmt.Errorf("filestore: %w", err))
		} else {
			s.synced = max(s.synced, target)
		}
	}
	s.rounds++
	for _, w := range batch {
		s.stats.MaxWaitRounds = max(s.stats.MaxWaitRounds, s.rounds-w.start)
		w.done <- err
	}
	clear(batch)
	s.spare = batch[:0]
}
