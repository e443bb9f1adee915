// mqttkeep: waits for the tests, in place of upstream's fixed sleeps,
// which a loaded machine outlasts.

package mqtt

import (
	"sync/atomic"
	"testing"
	"time"
)

// awaitTimeout bounds every wait below.
const awaitTimeout = 10 * time.Second

// eventually waits until cond holds, failing the test after awaitTimeout.
// It may be called from any goroutine.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(awaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("still waiting after %v for %s", awaitTimeout, what)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// drained waits until the WriteLoop of each client has written every
// packet queued for it: once the call that queued them has returned, an
// outbound count of zero means they are written (a write to a net.Pipe
// returns once the reader has them), so closing the pipe then cuts none
// of them off.
func drained(t testing.TB, cls ...*Client) {
	t.Helper()
	for _, cl := range cls {
		eventually(t, "client "+cl.ID+"'s outbound queue to drain", func() bool {
			return atomic.LoadInt32(&cl.State.outboundQty) == 0
		})
	}
}
