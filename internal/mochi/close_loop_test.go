// mqttkeep patch 08: Server.Close waits for the event loop.

package mqtt

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/mochi/system"
	"github.com/stretchr/testify/require"
)

// tickHook blocks the first $SYS tick after it is armed (Serve calls it
// too, before it returns) until released, and records when it ended.
type tickHook struct {
	HookBase
	armed   atomic.Bool
	blocked atomic.Bool
	entered chan struct{}
	release chan struct{}
	ended   atomic.Bool
}

func (h *tickHook) ID() string { return "tick" }

func (h *tickHook) Provides(b byte) bool { return b == OnSysInfoTick }

func (h *tickHook) OnSysInfoTick(*system.Info) {
	if !h.armed.Load() || !h.blocked.CompareAndSwap(false, true) {
		return
	}
	close(h.entered)
	<-h.release
	h.ended.Store(true)
}

// Close returns only once the event loop has ended, so that no hook runs
// after Close (and after the hooks' Stop). Upstream Close closed the done
// channel and went on, the loop still expiring messages and clients.
func TestServerCloseWaitsForEventLoop(t *testing.T) {
	s := newServer()
	h := &tickHook{entered: make(chan struct{}), release: make(chan struct{})}
	require.NoError(t, s.AddHook(h, nil))
	s.loop.sysTopics = time.NewTicker(time.Millisecond)
	require.NoError(t, s.Serve())
	h.armed.Store(true) // the next tick is the event loop's
	select {
	case <-h.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the event loop did not tick")
	}

	closed := make(chan struct{})
	go func() {
		_ = s.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Error("Close returned while the event loop was running a hook")
	case <-time.After(100 * time.Millisecond): // nothing can be awaited here: Close must not return
	}
	close(h.release)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return once the event loop ended")
	}
	require.True(t, h.ended.Load())
}
