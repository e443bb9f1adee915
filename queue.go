package mqttkeep

import (
	"container/list"
	"sync"
)

// Defaults of the offline queue.
const (
	// DefaultQueueMessages is how many messages Publish may queue while
	// the client is not connected.
	DefaultQueueMessages = 10000
	// DefaultQueueBytes bounds the queued messages' topics and payloads.
	DefaultQueueBytes = 8 << 20
)

// outgoing is one queued Publish.
type outgoing struct {
	m    *Message
	size int
	elem *list.Element

	// For QoS 1/2 the caller waits in Publish: the supervisor sends it its
	// turn (the live connection) and waits until the caller has handed the
	// PUBLISH to the session and written it, so the queue drains in order.
	turn    chan *link
	written chan struct{}
}

// queue is the bounded offline publish queue, FIFO. A full queue is an
// error the caller sees (ErrQueueFull), never a silent drop.
type queue struct {
	mu          sync.Mutex
	l           list.List
	bytes       int
	maxMessages int
	maxBytes    int
}

// messageSize is what a message counts against the byte limit.
func messageSize(m *Message) int {
	n := len(m.Topic) + len(m.Payload) + len(m.ContentType) + len(m.ResponseTopic) + len(m.CorrelationData)
	for _, u := range m.UserProperties {
		n += len(u.Key) + len(u.Value)
	}
	return n
}

// push appends o; it reports false when a limit would be exceeded.
func (q *queue) push(o *outgoing) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.l.Len()+1 > q.maxMessages || q.bytes+o.size > q.maxBytes {
		return false
	}
	o.elem = q.l.PushBack(o)
	q.bytes += o.size
	return true
}

// pushFront puts back an item that could not be sent, ahead of the rest.
func (q *queue) pushFront(o *outgoing) {
	q.mu.Lock()
	defer q.mu.Unlock()
	o.elem = q.l.PushFront(o)
	q.bytes += o.size
}

// pop removes and returns the oldest item, or nil.
func (q *queue) pop() *outgoing {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.l.Front()
	if e == nil {
		return nil
	}
	o := q.l.Remove(e).(*outgoing)
	o.elem = nil
	q.bytes -= o.size
	return o
}

// remove takes o out of the queue; it reports false when o was not in it
// (already popped).
func (q *queue) remove(o *outgoing) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if o.elem == nil {
		return false
	}
	q.l.Remove(o.elem)
	o.elem = nil
	q.bytes -= o.size
	return true
}

// drain empties the queue and returns what was in it.
func (q *queue) drain() []*outgoing {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*outgoing
	for e := q.l.Front(); e != nil; e = q.l.Front() {
		o := q.l.Remove(e).(*outgoing)
		o.elem = nil
		out = append(out, o)
	}
	q.bytes = 0
	return out
}

// len returns the number of queued messages and their size.
func (q *queue) len() (messages, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.l.Len(), q.bytes
}
