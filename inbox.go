package mqttkeep

import (
	"sync"

	"github.com/eclipse/paho.golang/packets"
)

// inboxItem is a received PUBLISH waiting for its handlers, with the
// connection generation it arrived on.
type inboxItem struct {
	pb  *packets.Publish
	gen uint64
}

// inbox is the FIFO between paho's router goroutine (the only producer)
// and the client's message goroutine. It allocates only while messages
// wait, so an idle client holds no buffer.
type inbox struct {
	mu    sync.Mutex
	items []inboxItem // waiting items are items[head:]
	head  int
	ready chan struct{} // signals the consumer that items wait
	space chan struct{} // signals a blocked producer that items left
}

func newInbox() *inbox {
	return &inbox{ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// tryPush appends it unless limit items already wait.
func (q *inbox) tryPush(it inboxItem, limit int) bool {
	q.mu.Lock()
	if len(q.items)-q.head >= limit {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	signal(q.ready)
	return true
}

// push appends it, waiting while limit items wait, until done is closed.
func (q *inbox) push(it inboxItem, limit int, done <-chan struct{}) bool {
	for !q.tryPush(it, limit) {
		select {
		case <-q.space:
		case <-done:
			return false
		}
	}
	return true
}

// pop removes the oldest item; ok is false when none waits.
func (q *inbox) pop() (it inboxItem, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return inboxItem{}, false
	}
	it = q.items[q.head]
	q.items[q.head] = inboxItem{}
	q.head++
	if q.head == len(q.items) { // empty: reuse, or free a burst's buffer
		q.head = 0
		if cap(q.items) > 1024 {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
	}
	signal(q.space)
	return it, true
}

// signal wakes the other side without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
