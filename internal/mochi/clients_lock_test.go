// mqttkeep patch 02: GetByListener read-locked the clients map twice.

package mqtt

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// GetByListener must not deadlock with a concurrent Add. Upstream it took
// the read lock and then called Len, which takes it again: an Add (a
// write lock) that queues between the two blocks the second RLock, and
// the first is never released (mochi issue #488).
func TestClientsGetByListenerWithConcurrentAdd(t *testing.T) {
	cl := NewClients()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for n := range 5000 {
			cl.Add(&Client{ID: strconv.Itoa(n % 10), Net: ClientConnection{Listener: "t1"}})
		}
	}()
	go func() {
		defer wg.Done()
		for range 5000 {
			cl.GetByListener("t1")
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("GetByListener and Add deadlocked")
	}
}
