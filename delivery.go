package mqttkeep

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// delivery is one message handed to one subscription's handler.
type delivery struct {
	msg   Message
	in    *inMsg // nil for QoS 0
	c     *Client
	lane  *lane
	acked atomic.Bool
}

// lane runs one subscription's handler: deliveries wait in arrival order,
// and at most max calls run at once (1: one at a time, in order). Its
// goroutines exist only while it has work. Guarded by s.mu.
type lane struct {
	name    string // the filter, for logs
	handler MessageHandler
	max     int
	q       []*delivery
	head    int
	running int
}

func (ln *lane) waiting() int { return len(ln.q) - ln.head }

func (ln *lane) pop() *delivery {
	d := ln.q[ln.head]
	ln.q[ln.head] = nil
	ln.head++
	ln.q, ln.head = compact(ln.q, ln.head)
	return d
}

// compact keeps a FIFO slice's memory proportional to what waits in it:
// once the consumed prefix is more than half of it, the rest moves to the
// front (amortised O(1) per item); an empty one with a large buffer lets
// the buffer go.
func compact[T any](q []T, head int) ([]T, int) {
	switch {
	case head == len(q):
		if cap(q) > 1024 {
			return nil, 0
		}
		return q[:0], 0
	case head > 32 && head*2 > len(q):
		n := copy(q, q[head:])
		clear(q[n:])
		return q[:n], 0
	}
	return q, head
}

// routeLocked hands a received message to every subscription it belongs
// to, or to the fallback handler, or holds it for a subscription not made
// yet (held.go), or counts it as unroutable. m tracks the
// acknowledgement of a QoS 1/2 message: each delivery holds it until its
// handler is done. s.mu held.
func (c *Client) routeLocked(p *wire.Publish, m *inMsg) {
	s := c.session
	targets := c.targetsLocked(p)
	if len(targets) == 0 {
		if ln := c.fallback; ln != nil {
			c.enqueueLocked(ln, p, m, nil)
			return
		}
		if m != nil && !c.unwantedLocked(p.Topic) {
			if c.draining {
				// Nothing is held while draining: no subscription can
				// come. Left unacknowledged for the broker.
				c.session.abandonLocked(m)
				c.stats.messagesAbandoned.Add(1)
				return
			}
			c.holdLocked(p, m) // see held.go
			return
		}
		c.stats.messagesUnroutable.Add(1)
		c.cfg.logger.Warn("mqttkeep: message matches no subscription (only filters this client unsubscribed from) and no fallback handler is set; not handled",
			"topic", p.Topic, "qos", p.QoS)
		return
	}
	for _, sub := range targets {
		c.enqueueLocked(sub.lane, p, m, sub)
	}
	_ = s
}

// enqueueLocked queues one delivery on ln and starts a goroutine for it
// when the lane may run more. QoS 0 messages beyond the message buffer are
// dropped and counted. s.mu held.
func (c *Client) enqueueLocked(ln *lane, p *wire.Publish, m *inMsg, sub *subscription) {
	if p.QoS == 0 {
		if c.waitingQoS0 >= c.cfg.messageBuffer {
			c.stats.messagesDropped.Add(1)
			c.cfg.logger.Debug("mqttkeep: QoS 0 message dropped: handlers are behind", "topic", p.Topic)
			return
		}
		c.waitingQoS0++
	}
	d := &delivery{c: c, in: m, lane: ln}
	messageFromPublish(&d.msg, p)
	d.msg.delivery = d
	if sub != nil {
		d.msg.SubscriptionFilter = sub.filter
	}
	if m != nil {
		m.pending++
	}
	c.pushLocked(ln, d)
}

// pushLocked queues d on ln and starts a lane goroutine when the lane may
// run more. s.mu held.
func (c *Client) pushLocked(ln *lane, d *delivery) {
	ln.q = append(ln.q, d)
	if ln.running < ln.max && !c.stopping {
		ln.running++
		c.callbacks.add()
		go c.runLane(ln)
	}
}

// runLane is a lane goroutine: it runs handlers until the lane is empty.
func (c *Client) runLane(ln *lane) {
	defer c.callbacks.done()
	s := c.session
	for {
		s.mu.Lock()
		if ln.waiting() == 0 || c.stopping {
			ln.running--
			if ln.running == 0 && ln.waiting() == 0 {
				c.subs.retired = slices.DeleteFunc(c.subs.retired, func(x *lane) bool { return x == ln })
			}
			c.progressedLocked()
			s.mu.Unlock()
			return
		}
		d := ln.pop()
		if d.msg.QoS == 0 {
			c.waitingQoS0--
		}
		s.mu.Unlock()
		c.handle(d)
	}
}

// handle runs one handler call. A panic is recovered, logged and counted;
// the message is then acknowledged (holding it back would hold back every
// later acknowledgement too). Without manual acknowledgement a message is
// acknowledged when its handler returns. It is one of the two functions
// user code runs in (see inCallback): never inlined, so that it shows on
// the stack.
//
//go:noinline
func (c *Client) handle(d *delivery) {
	panicked := true
	defer func() {
		if panicked {
			r := recover()
			c.stats.handlerPanics.Add(1)
			c.cfg.logger.Error("mqttkeep: message handler panicked; message acknowledged", "filter", d.lane.name,
				"topic", d.msg.Topic, "panic", fmt.Sprint(r))
			_ = d.ack()
		}
	}()
	c.stats.messagesReceived.Add(1)
	d.lane.handler(&d.msg)
	panicked = false
	if !c.cfg.manualAck {
		_ = d.ack() // after Close: the broker sends it again (see Message.Ack)
	}
}

// ack ends this delivery's hold on its message, once.
func (d *delivery) ack() error {
	if d.acked.CompareAndSwap(false, true) {
		return d.c.session.deliveryDone(d.in)
	}
	return nil
}

// abandonQueuedLocked drops every delivery not yet handed to a handler
// when the client stops: none of them is acknowledged. It returns how
// many there were. s.mu held.
func (c *Client) abandonQueuedLocked() int {
	n := 0
	drop := func(ln *lane) {
		for ln.waiting() > 0 {
			d := ln.pop()
			if d.msg.QoS == 0 {
				c.waitingQoS0--
			}
			n++
		}
	}
	for _, sub := range c.subs.all {
		drop(sub.lane)
	}
	for _, ln := range c.subs.retired {
		drop(ln)
	}
	if c.fallback != nil {
		drop(c.fallback)
	}
	return n
}
