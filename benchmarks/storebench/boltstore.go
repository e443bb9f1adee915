package main

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/mqttkeep/mqttkeep"
	bolt "go.etcd.io/bbolt"
)

// boltStore is the bbolt candidate for the file store: a mqttkeep.Store
// in one bucket, keys big-endian so that the cursor walks them in order.
// Durable Applies are grouped into one Update (one commit: bbolt syncs
// twice per commit, data pages then meta page) by a leader that commits
// for everyone queued behind it; with batch set, DB.Batch does the
// grouping instead (it waits up to DB.MaxBatchDelay, 10 ms by default, for
// more calls). Limits are left out: the benchmark does not reach them.
type boltStore struct {
	db    *bolt.DB
	batch bool

	mu         sync.Mutex
	queue      []*boltStep
	committing bool
}

type boltStep struct {
	puts []mqttkeep.Record
	dels []uint64
	done chan error
}

var bucket = []byte("store")

var _ mqttkeep.Store = (*boltStore)(nil)

// openBolt opens the bbolt candidate; tuned sets what etcd sets for speed
// (no freelist on disk, the hashmap freelist).
func openBolt(path string, batch, tuned bool) (*boltStore, error) {
	var opts *bolt.Options
	if tuned {
		opts = &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType}
	}
	db, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &boltStore{db: db, batch: batch}, nil
}

func boltKey(k uint64) []byte { return binary.BigEndian.AppendUint64(nil, k) }

func (s *boltStore) Load(fn func(key uint64, value []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			return fn(binary.BigEndian.Uint64(k), v)
		})
	})
}

func (s *boltStore) Get(key uint64) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v = slices.Clone(tx.Bucket(bucket).Get(boltKey(key)))
		return nil
	})
	if err == nil && v == nil {
		err = fmt.Errorf("bolt: key %d: %w", key, mqttkeep.ErrNotFound)
	}
	return v, err
}

func applyTx(tx *bolt.Tx, puts []mqttkeep.Record, dels []uint64) error {
	b := tx.Bucket(bucket)
	for _, r := range puts {
		if err := b.Put(boltKey(r.Key), r.Value); err != nil {
			return err
		}
	}
	for _, k := range dels {
		if err := b.Delete(boltKey(k)); err != nil {
			return err
		}
	}
	return nil
}

// Apply commits the step in a transaction shared with every other Apply
// waiting (durable or not: a bbolt commit always syncs unless NoSync).
func (s *boltStore) Apply(puts []mqttkeep.Record, deletes []uint64, _ bool) error {
	if s.batch {
		return s.db.Batch(func(tx *bolt.Tx) error { return applyTx(tx, puts, deletes) })
	}
	st := &boltStep{puts: puts, dels: deletes, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, st)
	if s.committing {
		s.mu.Unlock()
		return <-st.done
	}
	s.committing = true
	for len(s.queue) > 0 {
		group := s.queue
		s.queue = nil
		s.mu.Unlock()
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, g := range group {
				if err := applyTx(tx, g.puts, g.dels); err != nil {
					return err
				}
			}
			return nil
		})
		for _, g := range group {
			g.done <- err
		}
		s.mu.Lock()
	}
	s.committing = false
	s.mu.Unlock()
	return <-st.done
}

func (s *boltStore) Close() error { return s.db.Close() }
