package filestore

import (
	"sync"
	"testing"

	"github.com/mqttkeep/mqttkeep"
)

// TestFailedSyncIsSticky: when the file fails under the store (here: its
// descriptor is closed behind its back), every waiting and later call gets
// the error, none hangs, Close releases the directory, and a reopen has
// what was durable before.
func TestFailedSyncIsSticky(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply([]mqttkeep.Record{{Key: 1, Value: []byte("kept")}}, nil, true); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	_ = s.active.f.Close()
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.Apply([]mqttkeep.Record{{Key: uint64(100 + i), Value: []byte("lost")}}, nil, true)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Fatalf("Apply %d after the file failed: nil error", i)
		}
	}
	if _, err := s.Get(1); err == nil {
		t.Fatal("Get after the failure: nil error")
	}
	if err := s.Apply(nil, []uint64{1}, false); err == nil {
		t.Fatal("Apply after the failure: nil error")
	}
	t.Log(errs[0])
	_ = s.Close() // reports the failure; must release the lock all the same

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Get(1); err != nil || string(v) != "kept" {
		t.Fatalf("after reopen: Get(1) = %q, %v", v, err)
	}
}
