package brokerstore

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
	bolt "go.etcd.io/bbolt"
)

// The measurement behind WithDataDir's store: the broker with the store
// hook on filestore and on bbolt (go.etcd.io/bbolt v1.5.0, behind the
// same mqttkeep.Store, no grouping of its own: keyedStore groups),
// against the broker without persistence. Skipped unless asked for:
//
//	cd benchmarks && go test ./brokerstore/ -run TestMeasureStores -storebench -v
//	cd benchmarks && go test ./brokerstore/ -run TestMeasureStores -storebench -storebench.runs 5 -storebench.queued 100000 -v
//
// It prints the median and the range of the runs, run after run
// interleaved so that a noisy neighbour hits every contestant.
var (
	storeBench       = flag.Bool("storebench", false, "TestMeasureStores: measure the broker's stores")
	storeBenchRuns   = flag.Int("storebench.runs", 3, "TestMeasureStores: runs per contestant")
	storeBenchDur    = flag.Duration("storebench.dur", 2*time.Second, "TestMeasureStores: how long each throughput run publishes")
	storeBenchQueued = flag.Int("storebench.queued", 20000, "TestMeasureStores: messages queued for the recovery runs")
)

type contestant struct {
	name string
	open func(dir string) func() (mqttkeep.Store, error) // nil: no persistence
}

var contestants = []contestant{
	{"memory", nil},
	{"filestore", func(dir string) func() (mqttkeep.Store, error) {
		return func() (mqttkeep.Store, error) { return filestore.Open(dir) }
	}},
	{"bbolt", func(dir string) func() (mqttkeep.Store, error) {
		return func() (mqttkeep.Store, error) { return openBolt(filepath.Join(dir, "broker.bolt"), false) }
	}},
	{"bbolt-nosync", func(dir string) func() (mqttkeep.Store, error) {
		return func() (mqttkeep.Store, error) { return openBolt(filepath.Join(dir, "broker.bolt"), true) }
	}},
}

func TestMeasureStores(t *testing.T) {
	if !*storeBench {
		t.Skip("a measurement: run with -storebench")
	}
	metrics := []string{
		"1 publisher, QoS 1 to a persistent session (msg/s)",
		"8 publishers, QoS 1 to a persistent session (msg/s)",
		"1 publisher: store commits per message",
		"8 publishers: store commits per message",
		"restart with queued messages: New until serving (ms)",
		"of which the store's open and Load (ms)",
		"data directory with queued messages (MiB)",
	}
	results := make(map[string]map[string][]float64)
	for _, c := range contestants {
		results[c.name] = make(map[string][]float64)
	}
	for run := range *storeBenchRuns {
		for _, c := range contestants {
			r := results[c.name]
			for i, pubs := range []int{1, 8} {
				rate, commits := measureThroughput(t, c, pubs)
				r[metrics[i]] = append(r[metrics[i]], rate)
				if c.open != nil {
					r[metrics[2+i]] = append(r[metrics[2+i]], commits)
				}
			}
			if c.open != nil {
				ms, loadMs, mib := measureRecovery(t, c, *storeBenchQueued)
				r[metrics[4]] = append(r[metrics[4]], ms)
				r[metrics[5]] = append(r[metrics[5]], loadMs)
				r[metrics[6]] = append(r[metrics[6]], mib)
			}
			t.Logf("run %d %s done", run+1, c.name)
		}
	}
	t.Logf("median [min–max] of %d runs; %d messages queued for the recovery runs", *storeBenchRuns, *storeBenchQueued)
	for _, m := range metrics {
		line := "| " + m + " |"
		for _, c := range contestants {
			line += " " + summary(results[c.name][m]) + " |"
		}
		t.Log(line)
	}
	t.Log("run by run, filestore ÷ bbolt:")
	for _, m := range metrics {
		f, b := results["filestore"][m], results["bbolt"][m]
		var ratios []float64
		for i := range min(len(f), len(b)) {
			ratios = append(ratios, f[i]/b[i])
		}
		t.Log("| " + m + " | " + summary(ratios) + " |")
	}
}

func summary(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return fmt.Sprintf("%.4g [%.4g–%.4g]", s[len(s)/2], s[0], s[len(s)-1])
}

func (c contestant) options(dir string) []embedbroker.Option {
	return c.countedOptions(dir, nil)
}

// countedOptions is options with applies counting the store's Applies.
func (c contestant) countedOptions(dir string, applies *atomic.Int64) []embedbroker.Option {
	if c.open == nil {
		return nil
	}
	open := c.open(dir)
	return []embedbroker.Option{embedbroker.WithStore(func() (mqttkeep.Store, error) {
		st, err := open()
		if err != nil || applies == nil {
			return st, err
		}
		return countingStore{st, applies}, nil
	})}
}

// countingStore counts the Applies of a store.
type countingStore struct {
	mqttkeep.Store
	applies *atomic.Int64
}

func (s countingStore) Apply(puts []mqttkeep.Record, deletes []uint64, durable bool) error {
	s.applies.Add(1)
	return s.Store.Apply(puts, deletes, durable)
}

// measureThroughput: one persistent subscriber online (acknowledging),
// pubs publishers streaming QoS 1 with up to 64 messages in flight each,
// for storeBenchDur; returns the messages per second the broker
// acknowledged.
func measureThroughput(t *testing.T, c contestant, pubs int) (perSecond, appliesPerMessage float64) {
	t.Helper()
	var applies atomic.Int64
	b, err := embedbroker.New(c.countedOptions(t.TempDir(), &applies)...)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.ListenTCP(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *storeBenchDur+time.Minute)
	defer cancel()
	var received atomic.Int64
	sub := measureClient(t, ctx, b.URL(), mqttkeep.WithClientID("bench-sub"), mqttkeep.WithCleanStart(false),
		mqttkeep.WithSessionExpiry(time.Hour))
	if err := sub.Subscribe(ctx, "bench/#", 1, func(*mqttkeep.Message) { received.Add(1) }); err != nil {
		t.Fatal(err)
	}

	var acked atomic.Int64
	stop := time.Now().Add(*storeBenchDur)
	var wg sync.WaitGroup
	start := time.Now()
	for p := range pubs {
		pub := measureClient(t, ctx, b.URL())
		wg.Add(1)
		go func() {
			defer wg.Done()
			var window []*mqttkeep.PublishResult
			for i := 0; time.Now().Before(stop); i++ {
				res, err := pub.PublishAsync(ctx, "bench/"+strconv.Itoa(p), []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1))
				if err != nil {
					t.Error(err)
					return
				}
				window = append(window, res)
				if len(window) == 64 {
					if err := window[0].Wait(ctx); err != nil {
						t.Error(err)
						return
					}
					acked.Add(1)
					window = window[1:]
				}
			}
			for _, res := range window {
				if err := res.Wait(ctx); err != nil {
					t.Error(err)
					return
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	return float64(acked.Load()) / took.Seconds(), float64(applies.Load()) / float64(acked.Load())
}

// measureRecovery queues n messages for absent persistent sessions,
// closes the broker and returns how long New takes on its directory (it
// reads the store and gives mochi the state), how long opening the store
// and loading its records takes alone, and the directory's size.
func measureRecovery(t *testing.T, c contestant, n int) (ms, loadMs, mib float64) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := embedbroker.New(c.options(dir)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ListenTCP(); err != nil {
		t.Fatal(err)
	}
	// mochi keeps at most 8192 messages per session: n messages for
	// sessions of 5000 each.
	sessions := (n + 4999) / 5000
	for i := range sessions {
		sub := measureClient(t, ctx, b.URL(), mqttkeep.WithClientID("bench-sub-"+strconv.Itoa(i)),
			mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Hour))
		if err := sub.Subscribe(ctx, "bench/#", 1, func(*mqttkeep.Message) {}); err != nil {
			t.Fatal(err)
		}
		if err := sub.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	payload := make([]byte, 64)
	for i := range n / sessions {
		binary.BigEndian.PutUint64(payload, uint64(i))
		if err := b.Publish("bench/x", payload, 1); err != nil { // the broker's own: no PUBACK to wait for
			t.Fatal(err)
		}
	}
	b.Close()

	start := time.Now()
	b, err = embedbroker.New(c.options(dir)...)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	restored := 0
	for i := range sessions {
		restored += b.InflightFor("bench-sub-" + strconv.Itoa(i))
	}
	if restored != n/sessions*sessions {
		t.Fatalf("restored %d messages, want %d", restored, n/sessions*sessions)
	}
	b.Close()

	start = time.Now()
	st, err := c.open(dir)()
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	if err := st.Load(func(uint64, []byte) error { records++; return nil }); err != nil {
		t.Fatal(err)
	}
	loadTook := time.Since(start)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if records < n/sessions*sessions {
		t.Fatalf("the store holds %d records, want at least %d", records, n/sessions*sessions)
	}
	var size int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	return float64(took.Microseconds()) / 1000, float64(loadTook.Microseconds()) / 1000, float64(size) / (1 << 20)
}

func measureClient(t *testing.T, ctx context.Context, url string, opts ...mqttkeep.Option) *mqttkeep.Client {
	t.Helper()
	c, err := mqttkeep.New(append([]mqttkeep.Option{mqttkeep.WithServer(url)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// boltStore is a mqttkeep.Store in one bbolt bucket, keys big-endian so
// that the cursor walks them in order; every Apply is one Update (bbolt
// syncs twice per commit, the data pages then the meta page, unless
// NoSync).
type boltStore struct{ db *bolt.DB }

var boltBucket = []byte("broker")

func openBolt(path string, noSync bool) (*boltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: noSync})
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, err
	}
	return &boltStore{db}, nil
}

func (s *boltStore) Load(fn func(key uint64, value []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBucket).ForEach(func(k, v []byte) error { return fn(binary.BigEndian.Uint64(k), v) })
	})
}

func (s *boltStore) Get(key uint64) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v = append([]byte(nil), tx.Bucket(boltBucket).Get(binary.BigEndian.AppendUint64(nil, key))...)
		return nil
	})
	if err == nil && v == nil {
		err = mqttkeep.ErrNotFound
	}
	return v, err
}

func (s *boltStore) Apply(puts []mqttkeep.Record, deletes []uint64, _ bool) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		for _, r := range puts {
			if err := b.Put(binary.BigEndian.AppendUint64(nil, r.Key), r.Value); err != nil {
				return err
			}
		}
		for _, k := range deletes {
			if err := b.Delete(binary.BigEndian.AppendUint64(nil, k)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *boltStore) Close() error { return s.db.Close() }
