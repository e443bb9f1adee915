package filestore_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

// open opens a store in dir and closes it when the test ends.
func open(t *testing.T, dir string, opts ...filestore.Option) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// contents returns everything Load gives, checking the key order.
func contents(t *testing.T, s mqttkeep.Store) map[uint64][]byte {
	t.Helper()
	m := map[uint64][]byte{}
	var prev uint64
	first := true
	if err := s.Load(func(k uint64, v []byte) error {
		if !first && k <= prev {
			t.Fatalf("Load: key %d after %d", k, prev)
		}
		first, prev = false, k
		m[k] = slices.Clone(v)
		return nil
	}); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return m
}

func equal(a, b map[uint64][]byte) error {
	for k, v := range a {
		w, ok := b[k]
		if !ok {
			return fmt.Errorf("key %d missing", k)
		}
		if !bytes.Equal(v, w) {
			return fmt.Errorf("key %d: %q, want %q", k, w, v)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			return fmt.Errorf("key %d should not be there", k)
		}
	}
	return nil
}

func TestApplyGetLoadReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Apply([]mqttkeep.Record{{Key: 1, Value: []byte("one")}, {Key: 2, Value: []byte("two")}, {Key: 3, Value: nil}}, nil, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply([]mqttkeep.Record{{Key: 2, Value: []byte("TWO")}}, []uint64{1, 99}, false); err != nil {
		t.Fatal(err)
	}
	v, err := s.Get(2)
	if err != nil || string(v) != "TWO" {
		t.Fatalf("Get(2) = %q, %v", v, err)
	}
	if _, err := s.Get(1); !errors.Is(err, mqttkeep.ErrNotFound) {
		t.Fatalf("Get(1) after delete: %v, want ErrNotFound", err)
	}
	want := map[uint64][]byte{2: []byte("TWO"), 3: {}}
	if err := equal(want, contents(t, s)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(nil, []uint64{2}, false); !errors.Is(err, mqttkeep.ErrClosed) {
		t.Fatalf("Apply after Close: %v, want ErrClosed", err)
	}
	s = open(t, dir)
	if err := equal(want, contents(t, s)); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	_, err := filestore.Open(dir)
	if !errors.Is(err, filestore.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []filestore.Option{filestore.WithMaxRecords(0), filestore.WithMaxBytes(-1), filestore.WithSegmentSize(100)} {
		_, err := filestore.Open(t.TempDir(), o)
		if !errors.Is(err, mqttkeep.ErrInvalidOption) || !strings.Contains(err.Error(), "With") {
			t.Errorf("Open(%v): %v, want ErrInvalidOption naming the option", o, err)
		}
	}
}

func TestLimits(t *testing.T) {
	s := open(t, t.TempDir(), filestore.WithMaxRecords(3), filestore.WithMaxBytes(10))
	put := func(k uint64, n int) mqttkeep.Record { return mqttkeep.Record{Key: k, Value: make([]byte, n)} }
	if err := s.Apply([]mqttkeep.Record{put(1, 2), put(2, 2), put(3, 2)}, nil, false); err != nil {
		t.Fatal(err)
	}
	err := s.Apply([]mqttkeep.Record{put(4, 1)}, nil, false)
	if !errors.Is(err, mqttkeep.ErrQueueFull) || !strings.Contains(err.Error(), "WithMaxRecords") {
		t.Fatalf("4th record: %v, want ErrQueueFull naming WithMaxRecords", err)
	}
	// Replacing, or a put with a delete in the same step, fits.
	if err := s.Apply([]mqttkeep.Record{put(4, 2)}, []uint64{1}, false); err != nil {
		t.Fatalf("put with delete: %v", err)
	}
	err = s.Apply([]mqttkeep.Record{put(2, 7)}, nil, false)
	if !errors.Is(err, mqttkeep.ErrQueueFull) || !strings.Contains(err.Error(), "WithMaxBytes") {
		t.Fatalf("replacing with 7 bytes: %v, want ErrQueueFull naming WithMaxBytes", err)
	}
	if err := s.Apply([]mqttkeep.Record{put(2, 6)}, nil, false); err != nil {
		t.Fatalf("replacing with 6 bytes: %v", err)
	}
	if st := s.Stats(); st.Records != 3 || st.Bytes != 10 {
		t.Fatalf("Stats = %+v, want 3 records, 10 bytes", st)
	}
	// Deletes always fit.
	if err := s.Apply(nil, []uint64{2, 3, 4}, false); err != nil {
		t.Fatal(err)
	}
}

// TestMatchesMemoryStore applies random steps to a file store and the
// memory store, reopening and compacting the file store now and then.
func TestMatchesMemoryStore(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	opts := []filestore.Option{filestore.WithSegmentSize(8 << 10)}
	s := open(t, dir, opts...)
	mem := mqttkeep.NewMemoryStore()
	for i := range 3000 {
		var puts []mqttkeep.Record
		var dels []uint64
		for range rng.IntN(4) {
			v := make([]byte, rng.IntN(300))
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			puts = append(puts, mqttkeep.Record{Key: rng.Uint64N(200), Value: v})
		}
		for range rng.IntN(3) {
			dels = append(dels, rng.Uint64N(200))
		}
		durable := rng.IntN(4) == 0
		if err := s.Apply(puts, dels, durable); err != nil {
			t.Fatal(err)
		}
		_ = mem.Apply(puts, dels, durable)
		switch rng.IntN(100) {
		case 0:
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir, opts...)
		case 1:
			if err := s.Compact(); err != nil {
				t.Fatal(err)
			}
		case 2:
			k := rng.Uint64N(200)
			got, gerr := s.Get(k)
			want, werr := mem.Get(k)
			if !bytes.Equal(got, want) || errors.Is(gerr, mqttkeep.ErrNotFound) != errors.Is(werr, mqttkeep.ErrNotFound) {
				t.Fatalf("step %d: Get(%d) = %q, %v; want %q, %v", i, k, got, gerr, want, werr)
			}
		}
	}
	if err := equal(contents(t, mem), contents(t, s)); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Compactions == 0 {
		t.Errorf("no compaction ran: %+v", st)
	}
	t.Logf("stats: %+v", st)
}

// TestGroupCommit: 64 goroutines applying durably share fsyncs.
func TestGroupCommit(t *testing.T) {
	s := open(t, t.TempDir())
	const writers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := uint64(w*each + i)
				if err := s.Apply([]mqttkeep.Record{{Key: key, Value: []byte("x")}}, nil, true); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Records != writers*each {
		t.Fatalf("%d records, want %d", st.Records, writers*each)
	}
	if st.Syncs >= uint64(writers*each)/2 {
		t.Errorf("%d fsyncs for %d durable steps: no group commit", st.Syncs, writers*each)
	}
	if st.MaxWaitRounds > 2 || st.MaxWaitRounds == 0 {
		t.Errorf("a durable Apply waited for %d rounds of group commit, want 1 or 2", st.MaxWaitRounds)
	}
	t.Logf("%d durable steps, %d fsyncs, at most %d rounds waited", writers*each, st.Syncs, st.MaxWaitRounds)
}

// TestCompactionUnderConcurrentApply: writers keep applying (and
// deleting) while compactions run; nothing is lost, in memory or on disk.
func TestCompactionUnderConcurrentApply(t *testing.T) {
	dir := t.TempDir()
	opts := []filestore.Option{filestore.WithSegmentSize(16 << 10)}
	s := open(t, dir, opts...)
	const writers, each = 8, 400
	want := make([]map[uint64][]byte, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	stop := make(chan struct{})
	var compactions sync.WaitGroup
	compactions.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Compact(); err != nil {
				errs <- err
				return
			}
		}
	})
	for w := range writers {
		want[w] = map[uint64][]byte{}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range each {
				key := uint64(w)<<32 | uint64(i)
				v := fmt.Appendf(nil, "w%d-%d-%s", w, i, strings.Repeat("v", rng.IntN(100)))
				var dels []uint64
				if i > 0 && rng.IntN(2) == 0 {
					old := uint64(w)<<32 | rng.Uint64N(uint64(i))
					dels = append(dels, old)
					delete(want[w], old)
				}
				if err := s.Apply([]mqttkeep.Record{{Key: key, Value: v}}, dels, rng.IntN(8) == 0); err != nil {
					errs <- err
					return
				}
				want[w][key] = v
				if i%50 == 0 {
					got, err := s.Get(key)
					if err != nil || !bytes.Equal(got, v) {
						errs <- fmt.Errorf("Get(%x) = %q, %v; want %q", key, got, err, v)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	compactions.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := map[uint64][]byte{}
	for _, m := range want {
		for k, v := range m {
			all[k] = v
		}
	}
	if err := equal(all, contents(t, s)); err != nil {
		t.Fatalf("in memory: %v", err)
	}
	st := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, opts...)
	if err := equal(all, contents(t, s)); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	t.Logf("stats before reopen: %+v", st)
	if st.Compactions < 2 {
		t.Errorf("only %d compactions ran", st.Compactions)
	}
}

// segments lists the segment files in dir.
func segments(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func TestAutoCompactionBoundsTheFiles(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, filestore.WithSegmentSize(8<<10))
	v := make([]byte, 200)
	for i := range uint64(2000) {
		var dels []uint64
		if i >= 10 {
			dels = []uint64{i - 10}
		}
		if err := s.Apply([]mqttkeep.Record{{Key: i, Value: v}}, dels, false); err != nil {
			t.Fatal(err)
		}
	}
	// The compactor runs beside the writer and may fall behind it on a
	// loaded machine (2,000 Applies take well under a second); once the
	// writer stops, it catches up by itself.
	deadline := time.Now().Add(20 * time.Second)
	for s.Stats().FileBytes > 64<<10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.FileBytes > 64<<10 {
		t.Errorf("after 20 s the files still hold %d bytes for 10 records of 200 bytes (%d segments, %d compactions)",
			st.FileBytes, st.Segments, st.Compactions)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	st := s.Stats()
	if st.Records != 10 {
		t.Fatalf("%d records, want 10", st.Records)
	}
	if st.FileBytes > 64<<10 {
		t.Errorf("reopened, the files hold %d bytes for 10 records of 200 bytes (%d segments)", st.FileBytes, st.Segments)
	}
}

func TestOSErrorsAreNotPanics(t *testing.T) {
	// A directory path that is a file.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := filestore.Open(f); err == nil {
		t.Fatal("Open on a regular file succeeded")
	}
}

// TestLoadCallbackMayUseStore: fn runs without the store's lock, so it may
// call the store (here: delete what it loads, then sync).
func TestLoadCallbackMayUseStore(t *testing.T) {
	s := open(t, t.TempDir())
	var puts []mqttkeep.Record
	for i := range uint64(5000) {
		puts = append(puts, mqttkeep.Record{Key: i, Value: make([]byte, 300)}) // more than one batch
	}
	if err := s.Apply(puts, nil, false); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.Load(func(k uint64, _ []byte) error {
		n++
		return s.Apply(nil, []uint64{k}, false)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(nil, nil, true); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); n != 5000 || st.Records != 0 {
		t.Fatalf("Load gave %d records, %d left; want 5000, 0", n, st.Records)
	}
}
