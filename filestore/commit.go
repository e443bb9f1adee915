package filestore

import (
	"fmt"
	"sync"
	"time"
)

// commit is the group commit state of a Store, guarded by Store.mu.
//
// A durable Apply that finds no sync under way becomes the leader: it
// writes the pending frames, takes the waiters so far and syncs the file
// without the lock. Durable Applies arriving meanwhile queue as waiters.
// When the sync returns, the leader wakes the waiters it took (their steps
// were written before the sync began) and hands the lead to the first of
// the new ones, which syncs for all of them. So each durable Apply waits
// for at most the sync under way when it arrived plus its own, every
// waiter is woken directly (no convoy on a lock), and no goroutine runs
// syncs for others after its own step is durable.
type commit struct {
	synced  uint64    // number of the last step known to be durable
	syncing bool      // a leader exists
	syncSeg *segment  // the segment being synced, nil between syncs
	waiters []*waiter // durable Applies waiting for the next sync
	spare   []*waiter // the previous batch, reused
	pool    sync.Pool // of *waiter
}

// waiter is one durable Apply waiting for a sync: lead or done arrives on
// ch; with done, err is the sync's outcome.
type waiter struct {
	ch  chan bool // true: you lead the next sync; false: done
	err error
}

// syncLocked returns once step seq is durable. s.mu is held on entry and
// released on return.
func (s *Store) syncLocked(seq uint64) error {
	if s.synced >= seq {
		s.mu.Unlock()
		return nil
	}
	if s.syncing {
		w, _ := s.pool.Get().(*waiter)
		if w == nil {
			w = &waiter{ch: make(chan bool, 1)}
		}
		s.waiters = append(s.waiters, w)
		s.mu.Unlock()
		lead := <-w.ch
		if !lead {
			err := w.err
			w.err = nil
			s.pool.Put(w)
			return err
		}
		s.pool.Put(w)
		s.mu.Lock()
	}
	s.syncing = true
	err := s.err // the lead passes on after Close too: Close waits for it
	if err == nil {
		err = s.flushLocked()
	}
	batch := s.waiters
	s.waiters = s.spare[:0]
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
		if err != nil {
			err = s.failLocked(fmt.Errorf("filestore: sync %s: %w", seg.path, err))
		} else {
			s.synced = max(s.synced, target)
		}
	}
	for _, w := range batch {
		w.err = err
		w.ch <- false
	}
	clear(batch)
	s.spare = batch[:0]
	if len(s.waiters) > 0 {
		next := s.waiters[0]
		s.waiters = append(s.waiters[:0], s.waiters[1:]...)
		next.ch <- true
	} else {
		s.syncing = false
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	return err
}
