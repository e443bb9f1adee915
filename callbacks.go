package mqttkeep

import (
	"context"
	"reflect"
	"runtime"
	"sync"
)

// callbackGroup tracks the goroutines that run user code (handler lanes
// and the hook event goroutine), so that Close can wait for them.
//
// User code runs only inside two library functions, the markers: handle
// (a message handler) and eventQueue.call (a hook). A Close or Drain
// called from user code therefore has one of them on its own call stack,
// which inCallback finds; it then does not wait for callbacks, since one
// of them is its caller and cannot end before it returns. No goroutine
// identity is needed.
type callbackGroup struct {
	mu     sync.Mutex
	n      int           // goroutines started and not ended
	change chan struct{} // closed and replaced when n changes
}

// add counts a goroutine about to start.
func (g *callbackGroup) add() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	g.changedLocked()
}

// done counts a goroutine that ended.
func (g *callbackGroup) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	g.changedLocked()
}

func (g *callbackGroup) changedLocked() {
	if g.change != nil {
		close(g.change)
		g.change = nil
	}
}

// wait returns once every goroutine of the group has ended, or with ctx's
// error.
func (g *callbackGroup) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		if g.n == 0 {
			g.mu.Unlock()
			return nil
		}
		if g.change == nil {
			g.change = make(chan struct{})
		}
		ch := g.change
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// markers are the entry points of the functions that run user code.
var markers = sync.OnceValue(func() [2]uintptr {
	return [2]uintptr{
		reflect.ValueOf((*Client).handle).Pointer(),
		reflect.ValueOf((*eventQueue).call).Pointer(),
	}
})

// inCallback reports whether the caller runs inside a message handler or
// a hook of a mqttkeep Client (any Client's: the markers are functions,
// not values).
func inCallback() bool {
	m := markers()
	var pcs [32]uintptr
	for skip := 2; ; skip += len(pcs) {
		n := runtime.Callers(skip, pcs[:])
		frames := runtime.CallersFrames(pcs[:n])
		for {
			f, more := frames.Next()
			if f.Entry == m[0] || f.Entry == m[1] {
				return true
			}
			if !more {
				break
			}
		}
		if n < len(pcs) {
			return false
		}
	}
}
