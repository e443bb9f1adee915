package mqttkeep

import (
	"errors"
	"slices"
	"sync"
)

// Store keeps a session beyond the process ([WithStore]): ordered uint64 keys
// and values, safe for concurrent use.
type Store interface {
	// Load calls fn per record in key order (value valid in the call) until fn errs.
	Load(fn func(key uint64, value []byte) error) error

	// Get returns key's value (the caller's), or an error matching [ErrNotFound].
	Get(key uint64) ([]byte, error)

	// Apply stores puts, then removes deletes, as one atomic step, ordered after every
	// Apply that returned before it. durable: it returns once this and all earlier
	// steps would survive a machine crash (concurrent ones share a sync); else a crash
	// may lose it and all later steps. Over the limits: [ErrQueueFull], nothing applied
	// (deletes always fit). Another error leaves the step's fate unknown. puts are
	// read-only, the caller's on return.
	Apply(puts []Record, deletes []uint64, durable bool) error

	// Close releases the store; later calls return an error matching [ErrClosed].
	Close() error
}

// Record is one key and value of a [Store].
type Record struct {
	Key   uint64
	Value []byte
}

// ErrNotFound is returned by [Store.Get] for a key that holds no value.
var ErrNotFound = errors.New("mqttkeep: not found in store")

// NewMemoryStore returns the default [Store], in memory.
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
