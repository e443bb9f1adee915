package mqttkeep

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
)

// callbackGroup tracks the goroutines that run user code (handler lanes
// and the hook event goroutine), so that Close and Drain can wait for
// them — except for the one they are called from: a handler or hook that
// calls Close must not wait for itself.
type callbackGroup struct {
	mu     sync.Mutex
	n      int                 // goroutines started and not ended
	inside map[uint64]struct{} // goroutine ids of those that run user code
	change chan struct{}       // closed and replaced when n changes
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

// enter records the calling goroutine as one of the group's and returns
// its id for leave, which forgets it. A goroutine calls enter once, before
// any user code (finding its id costs a runtime.Stack call: once per
// goroutine, not twice).
func (g *callbackGroup) enter() uint64 {
	id := goroutineID()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inside == nil {
		g.inside = make(map[uint64]struct{})
	}
	g.inside[id] = struct{}{}
	return id
}

func (g *callbackGroup) leave(id uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.inside, id)
	if len(g.inside) == 0 {
		g.inside = nil // an emptied map keeps its memory; idle clients need none
	}
}

// wait returns once every goroutine of the group has ended, not counting
// the caller if it is one of them, or with ctx's error.
func (g *callbackGroup) wait(ctx context.Context) error {
	self := 0
	id := goroutineID()
	for {
		g.mu.Lock()
		if _, ok := g.inside[id]; ok {
			self = 1
		}
		if g.n <= self {
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

// goroutineID returns the running goroutine's id, read from the first
// line of its stack trace ("goroutine 42 [running]:"). Go does not expose
// it otherwise; it is used only to recognise a Close or Drain called from
// one of the client's own callback goroutines, once per such call and
// once per callback goroutine.
func goroutineID() uint64 {
	var buf [32]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
