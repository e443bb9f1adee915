package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"

	autofile "github.com/eclipse/paho.golang/autopaho/queue/file"
	pahofile "github.com/eclipse/paho.golang/paho/store/file"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// sink takes one message at a time, as durably as the contestant can.
type sink interface {
	put(key uint64, value []byte) error
	close() error
}

// contestant is one way of keeping messages on disk.
type contestant struct {
	name string
	// store opens a mqttkeep.Store in dir (nil for the peers, which are
	// not one: they run only the per-message scenarios).
	store func(dir string) (mqttkeep.Store, error)
	// sink opens the contestant for the per-message scenarios.
	sink func(dir string) (sink, error)
	// note says what "durable" means for it (from its source).
	note string
}

func contestants() []contestant {
	fileStore := func(dir string) (mqttkeep.Store, error) { return filestore.Open(dir) }
	bolt := func(dir string) (mqttkeep.Store, error) { return openBolt(filepath.Join(dir, "bolt.db"), false, false) }
	boltTuned := func(dir string) (mqttkeep.Store, error) { return openBolt(filepath.Join(dir, "bolt.db"), false, true) }
	boltBatch := func(dir string) (mqttkeep.Store, error) { return openBolt(filepath.Join(dir, "bolt.db"), true, false) }
	return []contestant{
		{name: "filestore", store: fileStore, sink: storeSink(fileStore),
			note: "this module's log: write + fdatasync per group of concurrent Applies"},
		{name: "bbolt", store: bolt, sink: storeSink(bolt),
			note: "bbolt v1.5.0, concurrent Applies grouped into one Update (2 fdatasyncs per commit)"},
		{name: "bbolt-tuned", store: boltTuned, sink: storeSink(boltTuned),
			note: "as bbolt, with etcd's settings: NoFreelistSync, hashmap freelist"},
		{name: "bbolt-Batch", store: boltBatch, sink: storeSink(boltBatch),
			note: "bbolt v1.5.0 DB.Batch, default MaxBatchDelay 10 ms, MaxBatchSize 1000"},
		{name: "raw-fsync", sink: openRaw,
			note: "the disk's unit: append 64 bytes to one file and fdatasync, one message at a time (no grouping)"},
		{name: "paho-store", sink: openPahoStore,
			note: "paho.golang paho/store/file: a temp file per message, fsync (error ignored), rename; the directory is never synced"},
		{name: "autopaho-queue", sink: openAutopahoQueue,
			note: "paho.golang autopaho/queue/file: a file per message, no fsync at all"},
		{name: "pahomqtt-file", sink: openPahoMQTTFileStore,
			note: "paho.mqtt.golang FileStore: a file per message written and renamed, no fsync at all"},
	}
}

// storeSink makes a sink of a mqttkeep.Store: one durable Apply per message.
func storeSink(open func(string) (mqttkeep.Store, error)) func(string) (sink, error) {
	return func(dir string) (sink, error) {
		s, err := open(dir)
		if err != nil {
			return nil, err
		}
		return storeAdapter{s}, nil
	}
}

type storeAdapter struct{ s mqttkeep.Store }

func (a storeAdapter) put(key uint64, v []byte) error {
	return a.s.Apply([]mqttkeep.Record{{Key: key, Value: v}}, nil, true)
}
func (a storeAdapter) close() error { return a.s.Close() }

// meanSync is the mean time of one group fsync, in µs, for the file store.
func (a storeAdapter) meanSync() float64 {
	fs, ok := a.s.(*filestore.Store)
	if !ok {
		return -1
	}
	st := fs.Stats()
	if st.GroupSyncs == 0 {
		return -1
	}
	return float64(st.SyncTime.Microseconds()) / float64(st.GroupSyncs)
}

// maxRounds is the most group-commit rounds one durable Apply waited for
// (the file store only).
func (a storeAdapter) maxRounds() float64 {
	fs, ok := a.s.(*filestore.Store)
	if !ok {
		return -1
	}
	return float64(fs.Stats().MaxWaitRounds)
}

// raw appends to one file and fdatasyncs after every message.
type raw struct {
	mu sync.Mutex
	f  *os.File
}

func openRaw(dir string) (sink, error) {
	f, err := os.OpenFile(filepath.Join(dir, "raw"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &raw{f: f}, nil
}

func (r *raw) put(_ uint64, v []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.f.Write(v); err != nil {
		return err
	}
	return syscall.Fdatasync(int(r.f.Fd()))
}
func (r *raw) close() error { return r.f.Close() }

// paho.golang paho/store/file (the session store): keys are packet
// identifiers, so they wrap at 65535.
type pahoStore struct{ s *pahofile.Store }

func openPahoStore(dir string) (sink, error) {
	s, err := pahofile.New(dir, "o", ".msg")
	if err != nil {
		return nil, err
	}
	return pahoStore{s}, nil
}

func (p pahoStore) put(key uint64, v []byte) error {
	return p.s.Put(uint16(key%65535+1), 3 /* PUBLISH */, bytes.NewReader(v))
}
func (p pahoStore) close() error { return nil }

// paho.golang autopaho/queue/file (the offline queue).
type autopahoQueue struct{ q *autofile.Queue }

func openAutopahoQueue(dir string) (sink, error) {
	q, err := autofile.New(dir, "q", ".msg")
	if err != nil {
		return nil, err
	}
	return autopahoQueue{q}, nil
}

func (a autopahoQueue) put(_ uint64, v []byte) error { return a.q.Enqueue(bytes.NewReader(v)) }
func (a autopahoQueue) close() error                 { return nil }

// paho.mqtt.golang FileStore: it takes a control packet, so each message
// is a PUBLISH with topic "t" and the 64-byte payload.
type pahoMQTTFileStore struct{ s *mqtt.FileStore }

func openPahoMQTTFileStore(dir string) (sink, error) {
	s := mqtt.NewFileStore(dir)
	s.Open()
	return pahoMQTTFileStore{s}, nil
}

func (p pahoMQTTFileStore) put(key uint64, v []byte) (err error) {
	defer func() { // it panics on I/O errors
		if r := recover(); r != nil {
			err = fmt.Errorf("paho.mqtt.golang FileStore: %v", r)
		}
	}()
	pkt := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pkt.TopicName, pkt.Payload, pkt.Qos, pkt.MessageID = "t", v, 1, uint16(key%65535+1)
	p.s.Put("o."+strconv.FormatUint(key, 10), pkt)
	return nil
}
func (p pahoMQTTFileStore) close() error { p.s.Close(); return nil }
