// mqttkeep patch 01: NextImmediate read-locked the in-flight map twice.

package mqtt

import (
	"sync"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
)

// NextImmediate must not deadlock with a concurrent Set. Upstream it took
// the read lock and then called GetAll, which takes it again: a Set (a
// write lock) that queues between the two blocks the second RLock, and
// the first is never released (sync.RWMutex forbids recursive read
// locking). Upstream this hangs within a few thousand rounds.
func TestInflightNextImmediateWithConcurrentSet(t *testing.T) {
	i := NewInflights()
	i.Set(packets.Packet{PacketID: 1, Expiry: -1})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for n := range 5000 {
			i.Set(packets.Packet{PacketID: uint16(2 + n%10)})
		}
	}()
	go func() {
		defer wg.Done()
		for range 5000 {
			i.NextImmediate()
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("NextImmediate and Set deadlocked")
	}
}
