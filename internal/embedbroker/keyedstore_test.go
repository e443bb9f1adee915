package embedbroker

import (
	"slices"
	"sync"
	"testing"

	"github.com/mqttkeep/mqttkeep/filestore"
)

// reopen closes s and opens dir again, returning the keys and values in
// load order.
func reopen(t *testing.T, s *keyedStore, dir string) (*keyedStore, []string) {
	t.Helper()
	if s != nil {
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	s, err = openKeyed(st, func(key string, value []byte) error {
		got = append(got, key+"="+string(value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.close() })
	return s, got
}

// Records come back in the order they were first stored: a record put
// again keeps its place, one deleted and put again goes to the end; a put
// and a del between two syncs leave nothing; close syncs.
func TestKeyedStoreOrderAndDurability(t *testing.T) {
	dir := t.TempDir()
	s, got := reopen(t, nil, dir)
	if len(got) != 0 {
		t.Fatalf("a new store holds %v", got)
	}
	s.put(clientKey("c"), []byte("1"))
	s.put(subKey("c", "a/#"), []byte("2"))
	s.put(inflightKey("c", 7), []byte("3"))
	s.put(retainedKey("t"), []byte("4"))
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	s.put(subKey("c", "a/#"), []byte("2b")) // keeps its place
	s.del(inflightKey("c", 7))
	s.put(inflightKey("c", 7), []byte("3b")) // the identifier used again: a new message, last
	s.put(inflightKey("c", 8), []byte("5"))
	s.del(inflightKey("c", 8)) // never reaches the disk
	s, got = reopen(t, s, dir)
	want := []string{"CL\x00c=1", "SUB\x00c\x00a/#=2b", "RET\x00t=4", "IFM\x00c\x007=3b"}
	if !slices.Equal(got, want) {
		t.Errorf("after a clean close: %q, want %q", got, want)
	}

	// delClient drops the client's session, not the retained message.
	s.delClient("c")
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	_, got = reopen(t, s, dir)
	if want := []string{"RET\x00t=4"}; !slices.Equal(got, want) {
		t.Errorf("after delClient: %q, want %q", got, want)
	}
}

// Concurrent syncs share commits, and each returns only once its own
// changes are durable.
func TestKeyedStoreGroupCommit(t *testing.T) {
	dir := t.TempDir()
	s, _ := reopen(t, nil, dir)
	var wg sync.WaitGroup
	const writers, each = 8, 50
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s.put(inflightKey(string(rune('a'+w)), uint16(i)), []byte{byte(i)})
				if err := s.sync(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	_, got := reopen(t, s, dir)
	if len(got) != writers*each {
		t.Errorf("%d records, want %d", len(got), writers*each)
	}
}
