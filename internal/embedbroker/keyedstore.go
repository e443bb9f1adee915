package embedbroker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/mqttkeep/mqttkeep"
)

// Bounds of the changes a keyedStore keeps in memory between syncs: past
// either, the change that crosses it syncs at once.
const (
	maxPendingChanges = 16384
	maxPendingBytes   = 4 << 20
)

// errStoreClosed is returned by a keyedStore after close.
var errStoreClosed = errors.New("broker store is closed")

// keyedStore keeps records under string keys in a mqttkeep.Store, whose
// keys are numbers, and commits them in groups. put and del queue a change
// in memory; sync makes every change queued so far durable with one
// Store.Apply, which concurrent callers of sync share (group commit); a
// put and a del of one record between two syncs cost nothing on disk.
// Every record keeps the number it was first stored under, so load gives
// the records in the order they were first stored. It is safe for
// concurrent use.
type keyedStore struct {
	st mqttkeep.Store

	mu         sync.Mutex
	cond       sync.Cond                  // signalled when a commit ends
	ids        map[string]uint64          // live keys and their numbers
	byClient   map[string]map[string]bool // a client's live keys (see clientOfKey), for deleting a session
	next       uint64                     // the number the next new key gets
	pending    map[uint64]change          // queued changes, by record number
	pendBytes  int                        // bytes of the queued values
	queued     uint64                     // changes queued since open
	committed  uint64                     // changes durable since open
	committing bool
	err        error // the first failed commit; every later sync returns it
	closed     bool
}

// change is a queued put (value) or delete (del).
type change struct {
	value []byte // the record: key and value, see encodeRecord
	del   bool
}

// openKeyed reads every record of st and calls fn with each key and value
// in the order they were first stored; the value is only valid during the
// call. An error from fn or from reading closes st.
func openKeyed(st mqttkeep.Store, fn func(key string, value []byte) error) (*keyedStore, error) {
	s := &keyedStore{
		st:       st,
		ids:      make(map[string]uint64),
		byClient: make(map[string]map[string]bool),
		next:     1,
		pending:  make(map[uint64]change),
	}
	s.cond.L = &s.mu
	err := st.Load(func(id uint64, rec []byte) error {
		key, value, err := decodeRecord(rec)
		if err != nil {
			return fmt.Errorf("record %d: %w", id, err)
		}
		s.ids[key] = id
		s.index(key)
		s.next = max(s.next, id+1)
		return fn(key, value)
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return s, nil
}

// put queues storing value under key and reports whether the queue is
// full, when the caller should sync.
func (s *keyedStore) put(key string, value []byte) (full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.ids[key]
	if !ok {
		id = s.next
		s.next++
		s.ids[key] = id
		s.index(key)
	}
	rec := encodeRecord(key, value)
	s.pendBytes += len(rec) - len(s.pending[id].value)
	s.pending[id] = change{value: rec}
	s.queued++
	return len(s.pending) >= maxPendingChanges || s.pendBytes >= maxPendingBytes
}

// del queues deleting key, if it is stored, and reports whether the
// queue is full.
func (s *keyedStore) del(key string) (full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delLocked(key)
	return len(s.pending) >= maxPendingChanges || s.pendBytes >= maxPendingBytes
}

// delClient queues deleting every key of client (see clientOfKey) and
// reports whether there was any.
func (s *keyedStore) delClient(client string) (found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.byClient[client] {
		s.delLocked(key)
		found = true
	}
	return found
}

func (s *keyedStore) delLocked(key string) {
	id, ok := s.ids[key]
	if !ok {
		return
	}
	delete(s.ids, key)
	if client, ok := clientOfKey(key); ok {
		delete(s.byClient[client], key)
		if len(s.byClient[client]) == 0 {
			delete(s.byClient, client)
		}
	}
	s.pendBytes -= len(s.pending[id].value)
	s.pending[id] = change{del: true}
	s.queued++
}

// index adds key to its client's keys; the caller holds mu.
func (s *keyedStore) index(key string) {
	if client, ok := clientOfKey(key); ok {
		if s.byClient[client] == nil {
			s.byClient[client] = make(map[string]bool)
		}
		s.byClient[client][key] = true
	}
}

// sync returns once every change queued before it was called is durable
// (or the store has failed: then it returns that error, now and for
// good).
func (s *keyedStore) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	target := s.queued
	for s.committed < target && s.err == nil {
		if s.committing {
			s.cond.Wait()
			continue
		}
		s.commitLocked()
	}
	if s.closed && s.err == nil && s.committed < target {
		return errStoreClosed
	}
	return s.err
}

// commitLocked applies every queued change as one durable step. The
// caller holds mu, which commitLocked releases during the Apply.
func (s *keyedStore) commitLocked() {
	if s.closed {
		s.err = errStoreClosed
		return
	}
	var puts []mqttkeep.Record
	var dels []uint64
	for id, c := range s.pending {
		if c.del {
			dels = append(dels, id)
		} else {
			puts = append(puts, mqttkeep.Record{Key: id, Value: c.value})
		}
	}
	upto := s.queued
	s.pending, s.pendBytes = make(map[uint64]change), 0
	s.committing = true
	s.mu.Unlock()
	err := s.st.Apply(puts, dels, true)
	s.mu.Lock()
	s.committing = false
	if err != nil {
		s.err = fmt.Errorf("broker store: %w", err)
	} else {
		s.committed = upto
	}
	s.cond.Broadcast()
}

// close makes every queued change durable and closes the store.
func (s *keyedStore) close() error {
	syncErr := s.sync()
	s.mu.Lock()
	for s.committing {
		s.cond.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	return errors.Join(syncErr, s.st.Close())
}

// A record is the key's length (uvarint), the key and the value.
func encodeRecord(key string, value []byte) []byte {
	rec := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(key)+len(value)), uint64(len(key)))
	return append(append(rec, key...), value...)
}

func decodeRecord(rec []byte) (key string, value []byte, err error) {
	n, w := binary.Uvarint(rec)
	if w <= 0 || n > uint64(len(rec)-w) {
		return "", nil, errors.New("damaged record key")
	}
	return string(rec[w : w+int(n)]), rec[w+int(n):], nil
}
