package mqttkeep

import (
	"fmt"
	"sync"
	"time"
)

// ConnectEvent is passed to OnConnect hooks after every CONNACK.
type ConnectEvent struct {
	Server                string        // the broker's URL, without user information
	SessionPresent        bool          // the CONNACK's flag: the broker resumed the session
	Attempt               int           // attempts since the last connection (1: the first succeeded)
	Downtime              time.Duration // since the previous connection was lost (0 for the first)
	KeepAlive             time.Duration // the negotiated keep alive K
	ResubscribeErr        error         // the broker's refusal of restored subscriptions, if any
	SubscriptionsRestored int           // subscriptions sent before any queued message
	Capabilities          Capabilities  // what the CONNACK announced
	// DeadLinkBound is how soon a silent link death is reported at most:
	// K/2 + T, or K + T with WithLowPowerKeepAlive (0: keep alive off).
	DeadLinkBound time.Duration
}

// DisconnectEvent is passed to OnDisconnect hooks (also for a final refusal).
type DisconnectEvent struct {
	Err           error         // the cause (see the package doc's Errors); nil after Close
	WillReconnect bool          // the client tries again
	Uptime        time.Duration // how long the connection lasted (0 for a refusal)
	LastReceived  time.Time     // when its last bytes arrived (zero for a refusal)
	NewSession    bool          // the next connection starts a new session (MaxFailedResumes)
}

// ReconnectingEvent is passed to OnReconnecting hooks before each wait.
type ReconnectingEvent struct {
	Attempt int           // the next attempt's number, counted since the last connection
	Delay   time.Duration // the wait
	Err     error         // why the previous attempt or connection failed
}

// PingEvent is passed to OnPing hooks for every PINGRESP.
type PingEvent struct {
	// RTT runs from queuing the PINGREQ to reading its PINGRESP.
	RTT time.Duration
	// At is when the PINGRESP arrived.
	At time.Time
}

// hooks holds the registered hooks; each list is replaced, never mutated,
// so a snapshot can be used without the lock.
type hooks struct {
	mu             sync.Mutex
	nextID         uint64
	onConnect      []hook[ConnectEvent]
	onDisconnect   []hook[DisconnectEvent]
	onReconnecting []hook[ReconnectingEvent]
	onPing         []hook[PingEvent]
}

type hook[E any] struct {
	id uint64
	fn func(E)
}

// addHook appends fn to *list and returns a function that removes it.
func addHook[E any](h *hooks, list *[]hook[E], fn func(E)) (unregister func()) {
	if fn == nil {
		return func() {} // nothing to call
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	id := h.nextID
	*list = append(append([]hook[E](nil), *list...), hook[E]{id: id, fn: fn})
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		kept := make([]hook[E], 0, len(*list))
		for _, k := range *list {
			if k.id != id {
				kept = append(kept, k)
			}
		}
		*list = kept
	}
}

// eventQueue delivers events to hooks, in order, on one goroutine that
// runs only while events wait. Posting never blocks: a slow hook delays
// only later hooks, never the connection.
type eventQueue struct {
	c       *Client
	mu      sync.Mutex
	queue   []any
	running bool
	closed  bool
}

func newEventQueue(c *Client) *eventQueue { return &eventQueue{c: c} }

// post queues an event, starting the event goroutine if it is not
// running. Events posted after close are dropped.
func (q *eventQueue) post(ev any) {
	if _, ping := ev.(PingEvent); ping && !q.c.hooks.hasPing() {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.queue = append(q.queue, ev)
	if !q.running {
		q.running = true
		q.c.callbacks.add()
		go q.run()
	}
}

// close drops events posted from now on; those queued are still
// delivered.
func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
}

// run is the event goroutine: it delivers events until none is left.
func (q *eventQueue) run() {
	defer q.c.callbacks.done()
	for {
		q.mu.Lock()
		batch := q.queue
		q.queue = nil
		if len(batch) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		for _, ev := range batch {
			q.deliver(ev)
		}
	}
}

func (h *hooks) hasPing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.onPing) > 0
}

func (q *eventQueue) deliver(ev any) {
	h := &q.c.hooks
	h.mu.Lock()
	onConnect, onDisconnect, onReconnecting, onPing := h.onConnect, h.onDisconnect, h.onReconnecting, h.onPing
	h.mu.Unlock()
	switch e := ev.(type) {
	case ConnectEvent:
		for _, k := range onConnect {
			q.call("OnConnect", func() { k.fn(e) })
		}
	case DisconnectEvent:
		for _, k := range onDisconnect {
			q.call("OnDisconnect", func() { k.fn(e) })
		}
	case ReconnectingEvent:
		for _, k := range onReconnecting {
			q.call("OnReconnecting", func() { k.fn(e) })
		}
	case PingEvent:
		for _, k := range onPing {
			q.call("OnPing", func() { k.fn(e) })
		}
	}
}

// call runs one hook; a panic is logged and does not stop the client. It
// is one of the two functions user code runs in (see inCallback): never
// inlined, so that it shows on the stack.
//
//go:noinline
func (q *eventQueue) call(name string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			q.c.cfg.logger.Error("mqttkeep: hook panicked", "hook", name, "panic", fmt.Sprint(r))
		}
	}()
	fn()
}
