package mqttkeep

import (
	"errors"
	"slices"
	"sync"
)

// Store keeps the part of a client's session that must outlive the
// process: outbound QoS 1/2 messages accepted but not yet completed
// (queued, in flight, or past PUBREC), their packet identifiers, the
// identifiers of inbound QoS 2 messages awaiting PUBREL, and, when asked
// for, queued QoS 0 messages.
//
// A Store is an ordered map from uint64 keys to byte values; the client
// decides what the keys and values mean, the Store only keeps them. The
// client calls a Store from several goroutines at once, so an
// implementation must be safe for concurrent use; it should group
// concurrent durable [Store.Apply] calls into one sync of its medium
// (group commit), which is what makes a durable publish cheap.
//
// [NewMemoryStore] is the default (nothing survives the process); the
// package github.com/mqttkeep/mqttkeep/filestore keeps the records in a
// file.
type Store interface {
	// Load calls fn for every record, in ascending key order, and stops at
	// the first error fn returns (which Load then returns). The client
	// calls it once, before its first connection. value is only valid
	// during the call.
	Load(fn func(key uint64, value []byte) error) error

	// Get returns the value stored under key, or an error matching
	// [ErrNotFound]. The returned slice belongs to the caller.
	Get(key uint64) ([]byte, error)

	// Apply stores every record in puts (replacing the value of a key
	// already present) and then removes every key in deletes (a missing
	// key is not an error), as one step: after a crash either all of it
	// is there or none of it. The Store puts concurrent steps in one
	// order, and a step whose Apply returned before another Apply began
	// comes first; "earlier" and "later" below mean that order. With
	// durable set, Apply returns only once this step and every earlier
	// one would survive a crash of the process and of the machine (for a
	// file: after fsync); Apply(nil, nil, true) only does that. Without
	// it, the step may be lost in a crash, together with the steps after
	// it, but never while a later one is kept; a later durable step makes
	// it durable too. A store whose limits the step would exceed returns
	// an error matching [ErrQueueFull] and applies nothing; a step that
	// only deletes always fits. Any other error (the disk failed) leaves
	// the step's fate unknown until the Store is opened again, and the
	// Store may refuse every call after it. puts and their values must
	// not be modified by the Store, and may be reused by the caller once
	// Apply returns.
	Apply(puts []Record, deletes []uint64, durable bool) error

	// Close releases the store's resources. Calls after Close return an
	// error matching [ErrClosed].
	Close() error
}

// Record is one key and value of a [Store].
type Record struct {
	Key   uint64
	Value []byte
}

// ErrNotFound is returned by [Store.Get] for a key that holds no value.
var ErrNotFound = errors.New("mqttkeep: not found in store")

// NewMemoryStore returns a [Store] that keeps its records in memory:
// they survive reconnects but not the process. It is what a client uses
// when no store is given.
func NewMemoryStore() Store {
	return &memoryStore{records: make(map[uint64][]byte)}
}

// memoryStore is the in-memory Store.
type memoryStore struct {
	mu      sync.Mutex
	records map[uint64][]byte
	closed  bool
}

func (s *memoryStore) Load(fn func(key uint64, value []byte) error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	keys := make([]uint64, 0, len(s.records))
	for k := range s.records {
		keys = append(keys, k)
	}
	values := make([][]byte, len(keys))
	slices.Sort(keys)
	for i, k := range keys {
		values[i] = s.records[k]
	}
	s.mu.Unlock()
	for i, k := range keys {
		if err := fn(k, values[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memoryStore) Get(key uint64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	v, ok := s.records[key]
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(v), nil
}

func (s *memoryStore) Apply(puts []Record, deletes []uint64, _ bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, r := range puts {
		s.records[r.Key] = slices.Clone(r.Value)
	}
	for _, k := range deletes {
		delete(s.records, k)
	}
	return nil
}

func (s *memoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.records = nil
	return nil
}
