package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

// metric is one row of the table.
type metric struct {
	name string
	unit string // "ops/s", "µs", "ms", "MiB", "x"
}

// scenario measures some metrics of one contestant in a fresh directory.
type scenario struct {
	name    string
	metrics []metric
	// applies reports whether the scenario runs for c.
	applies func(c contestant) bool
	run     func(c contestant, dir string, o runOpts) ([]float64, error)
}

type runOpts struct {
	dur     time.Duration // per-message scenarios: how long to put
	records int           // load and compaction scenarios: live records
}

const valueSize = 64

func scenarios() []scenario {
	always := func(contestant) bool { return true }
	isStore := func(c contestant) bool { return c.store != nil }
	return []scenario{
		{name: "seq", applies: always,
			metrics: []metric{{"1 caller: durable puts/s", "ops/s"}, {"1 caller: p50 latency", "µs"}, {"1 caller: p99 latency", "µs"}, {"1 caller: mean group fsync", "µs"}, {"1 caller: most fsync rounds one put waited", "x"}},
			run: func(c contestant, dir string, o runOpts) ([]float64, error) {
				return putLoop(c, dir, 1, o.dur)
			}},
		{name: "par64", applies: always,
			metrics: []metric{{"64 callers: durable puts/s", "ops/s"}, {"64 callers: p50 latency", "µs"}, {"64 callers: p99 latency", "µs"}, {"64 callers: mean group fsync", "µs"}, {"64 callers: most fsync rounds one put waited", "x"}},
			run: func(c contestant, dir string, o runOpts) ([]float64, error) {
				return putLoop(c, dir, 64, o.dur)
			}},
		{name: "load", applies: isStore,
			metrics: []metric{{"open + Load, N records", "ms"}, {"files, N records of 64 B", "MiB"}},
			run:     loadScenario},
		{name: "compact", applies: isStore,
			metrics: []metric{{"files after 10 N puts, 9 N deletes", "MiB"}, {"compaction of that (N live)", "ms"}, {"files after compaction", "MiB"}},
			run:     compactScenario},
	}
}

// putLoop has callers goroutines put 64-byte messages, each after the
// previous one returned, for dur; it returns the rate, the p50 and p99
// latencies, the mean time of one group fsync and the most rounds of group
// commit one put waited for (-1 where unknown).
func putLoop(c contestant, dir string, callers int, dur time.Duration) ([]float64, error) {
	s, err := c.sink(dir)
	if err != nil {
		return nil, err
	}
	var (
		key      atomic.Uint64
		wg       sync.WaitGroup
		mu       sync.Mutex
		lats     []time.Duration
		firstErr error
	)
	start := time.Now()
	deadline := start.Add(dur)
	for range callers {
		wg.Go(func() {
			v := make([]byte, valueSize)
			var mine []time.Duration
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				k := key.Add(1)
				v[0], v[1] = byte(k), byte(k>>8)
				if err := s.put(k, v); err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
					break
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	meanSync, maxRounds := -1.0, -1.0
	if m, ok := s.(interface{ meanSync() float64 }); ok {
		meanSync = m.meanSync()
	}
	if m, ok := s.(interface{ maxRounds() float64 }); ok {
		maxRounds = m.maxRounds()
	}
	if err := s.close(); err != nil {
		firstErr = cmpOr(firstErr, err)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if len(lats) == 0 {
		return nil, errors.New("no message completed")
	}
	slices.Sort(lats)
	q := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))].Microseconds()) }
	ops.Add(uint64(len(lats)))
	return []float64{float64(len(lats)) / elapsed.Seconds(), q(0.50), q(0.99), meanSync, maxRounds}, nil
}

// ops counts the messages put in this process (for -syncs).
var ops atomic.Uint64

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// fill applies n records of 64 bytes (keys from first) in steps of 1000,
// not durably, deleting, in the same steps, every record of the previous
// step but one in ten when churn is set.
func fill(s mqttkeep.Store, first uint64, n int, churn bool) error {
	const step = 1000
	puts := make([]mqttkeep.Record, 0, step)
	var dels []uint64
	v := make([]byte, valueSize)
	for i := 0; i < n; i += step {
		puts, dels = puts[:0], dels[:0]
		for j := range min(step, n-i) {
			puts = append(puts, mqttkeep.Record{Key: first + uint64(i+j), Value: v})
		}
		if churn && i > 0 {
			for j := range step {
				if k := first + uint64(i-step+j); k%10 != 0 {
					dels = append(dels, k)
				}
			}
		}
		if err := s.Apply(puts, dels, false); err != nil {
			return err
		}
	}
	return nil
}

func dirMiB(dir string) (float64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	return float64(n) / (1 << 20), err
}

// loadScenario writes N records, closes, then times open + Load.
func loadScenario(c contestant, dir string, o runOpts) ([]float64, error) {
	s, err := c.store(dir)
	if err != nil {
		return nil, err
	}
	if err := fill(s, 1, o.records, false); err != nil {
		return nil, err
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	size, err := dirMiB(dir)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	s, err = c.store(dir)
	if err != nil {
		return nil, err
	}
	n := 0
	if err := s.Load(func(uint64, []byte) error { n++; return nil }); err != nil {
		return nil, err
	}
	elapsed := time.Since(t0)
	if err := s.Close(); err != nil {
		return nil, err
	}
	if n != o.records {
		return nil, fmt.Errorf("Load gave %d records, want %d", n, o.records)
	}
	return []float64{float64(elapsed.Microseconds()) / 1000, size}, nil
}

// compactScenario puts 10 N records and deletes 9 N of them, then
// compacts (the file store; bbolt reuses freed pages and has no online
// compaction, so only its file size is reported).
func compactScenario(c contestant, dir string, o runOpts) ([]float64, error) {
	open := c.store
	if c.name == "filestore" {
		open = func(dir string) (mqttkeep.Store, error) { return filestore.Open(dir, filestore.WithAutoCompact(false)) }
	}
	s, err := open(dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := fill(s, 0, 10*o.records, true); err != nil {
		return nil, err
	}
	before, err := dirMiB(dir)
	if err != nil {
		return nil, err
	}
	fs, ok := s.(*filestore.Store)
	if !ok {
		return []float64{before, -1, -1}, nil
	}
	t0 := time.Now()
	if err := fs.Compact(); err != nil {
		return nil, err
	}
	elapsed := time.Since(t0)
	if st := fs.Stats(); st.Records != o.records+900 {
		return nil, fmt.Errorf("%d records after compaction, want %d", st.Records, o.records+900)
	}
	after, err := dirMiB(dir)
	if err != nil {
		return nil, err
	}
	return []float64{before, float64(elapsed.Microseconds()) / 1000, after}, nil
}

// fresh makes an empty directory for one run under root.
func fresh(root string) (string, func(), error) {
	dir, err := os.MkdirTemp(root, "storebench-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}
