package mqttkeep

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Publish sends payload to topic and returns once it is in the send buffer (QoS
// 0) or acknowledged (QoS 1/2), across reconnects; with [WithStore], stored
// first. Offline it is queued ([WithQueueLimits]; QoS 0 then returns). A
// refusal is a [*ReasonCodeError]; bad input is refused before anything is
// sent. When ctx ends first, a queued message is taken out; a written one may
// still arrive. payload may be reused on return.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, opts ...PublishOption) error {
	if len(opts) == 0 {
		m := Message{Topic: topic, Payload: payload} // stays on the stack
		return c.PublishMessage(ctx, &m)
	}
	m := Message{Topic: topic, Payload: payload}
	for _, o := range opts {
		o(&m)
	}
	return c.PublishMessage(ctx, &m)
}

// PublishMessage is Publish with every field in m, which it does not modify.
func (c *Client) PublishMessage(ctx context.Context, m *Message) error {
	p, size, err := m.toPublish()
	if err != nil {
		return err
	}
	if p.Props.Set != 0 && c.speaks311() {
		return fmt.Errorf("mqttkeep: publish to %q: %w", m.Topic, errV311("message properties"))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqttkeep: publish to %q: %w (not sent)", m.Topic, err)
	}
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.loadStore(); err != nil {
		return err
	}
	s := c.session
	s.mu.Lock()
	// The fastest path: a QoS 0 message with nothing queued ahead goes
	// straight into the send buffer; nothing needs to remember it.
	if p.QoS == 0 && !c.cfg.storeQoS0 && s.fifo.n == 0 && s.canSendQoS0Locked() {
		err := s.writeQoS0Locked(&p, size)
		s.mu.Unlock()
		return err
	}
	o := newOutMsg(p, size)
	o.caller = true
	stores := c.storesMessage(o)
	// The fast path: nothing queued ahead, the link takes it now.
	if !stores && s.fifo.n == 0 && s.canSendLocked(o) {
		if err := s.assignLocked(o); err != nil {
			s.mu.Unlock()
			return err
		}
		var done chan struct{}
		if o.pub.QoS > 0 {
			done = make(chan struct{})
			o.done = done
		}
		s.writeLocked(o)
		err := o.err
		s.mu.Unlock()
		if done == nil {
			return err // QoS 0: written (or refused by the broker's limits)
		}
		return c.awaitOut(ctx, o, done)
	}
	for s.queueFullLocked(o.size) {
		if s.link == nil || c.cfg.queueMessages == 0 {
			n, b := s.fifo.n, s.queuedBytes
			s.mu.Unlock()
			if c.cfg.queueMessages == 0 {
				return ErrNotConnected
			}
			return fmt.Errorf("%w: %d messages, %d bytes queued", ErrQueueFull, n, b)
		}
		// Connected: the queue is full of messages waiting for the broker's
		// window; wait for room like any other backpressure.
		if err := s.waitSpaceLocked(ctx, c.stopCh); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("mqttkeep: publish to %q: %w (not sent)", m.Topic, err)
		}
	}
	if err := s.assignLocked(o); err != nil {
		s.mu.Unlock()
		return err
	}
	queuedOffline := s.link == nil
	if queuedOffline && o.pub.QoS == 0 {
		o.own() // the caller returns now and may reuse its buffers
		o.caller = false
		stored, err := s.storeLocked(o, stores)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		s.enqueueLocked(o)
		s.mu.Unlock()
		if stored != nil {
			return c.awaitStored(ctx, o, stored)
		}
		return nil
	}
	done := make(chan struct{})
	o.done = done
	if stores {
		o.own() // a stored message outlives a caller that gives up
	}
	if _, err := s.storeLocked(o, stores); err != nil {
		s.mu.Unlock()
		return err
	}
	s.enqueueLocked(o)
	s.pumpLocked()
	s.mu.Unlock()
	return c.awaitOut(ctx, o, done)
}

// awaitStored waits for o's store step; o.err says whether it failed.
func (c *Client) awaitStored(ctx context.Context, o *outMsg, stored <-chan struct{}) error {
	select {
	case <-stored:
	case <-ctx.Done():
		return fmt.Errorf("mqttkeep: publish to %q: %w (it may still be stored and sent)", o.pub.Topic, ctx.Err())
	}
	c.session.mu.Lock()
	defer c.session.mu.Unlock()
	if o.err != nil {
		return fmt.Errorf("mqttkeep: publish to %q: %w", o.pub.Topic, o.err)
	}
	return nil
}

// awaitOut waits for o to complete (done is closed), or for ctx.
func (c *Client) awaitOut(ctx context.Context, o *outMsg, done <-chan struct{}) error {
	select {
	case <-done:
		return c.outResult(o)
	case <-ctx.Done():
	}
	s := c.session
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case o.state == outDone || o.done == nil:
		// Completed, or released to the queue when the link went (a QoS 0
		// message: queued for the next connection).
		return c.outResult(o)
	case o.state == outQueued:
		s.dequeueLocked(o)
		o.done, o.caller = nil, false
		err := fmt.Errorf("mqttkeep: publish to %q: %w (not sent)", o.pub.Topic, ctx.Err())
		s.completeLocked(o, 0, err) // frees its identifier and its record, if stored
		return err
	}
	o.own() // still in the session, which re-sends it if needed
	o.done, o.caller = nil, false
	return fmt.Errorf("mqttkeep: publish to %q: %w (it may still be delivered)", o.pub.Topic, ctx.Err())
}

// outResult is the error Publish returns for a completed message.
func (c *Client) outResult(o *outMsg) error {
	if o.err != nil {
		return fmt.Errorf("mqttkeep: publish to %q: %w", o.pub.Topic, o.err)
	}
	return nil
}

// PublishResult is a [Client.PublishAsync] outcome, safe for concurrent use.
type PublishResult struct {
	done   chan struct{}
	once   sync.Once
	reason byte
	err    error
}

func newPublishResult() *PublishResult { return &PublishResult{done: make(chan struct{})} }

func (r *PublishResult) finish(reason byte, err error) {
	r.once.Do(func() {
		r.reason, r.err = reason, err
		close(r.done)
	})
}

// Done is closed when the message was written (QoS 0), acknowledged or failed.
func (r *PublishResult) Done() <-chan struct{} { return r.done }

// Err is nil while pending and once delivered, else why it was not.
func (r *PublishResult) Err() error {
	select {
	case <-r.done:
		return r.err
	default:
		return nil
	}
}

// ReasonCode is the broker's code for a completed QoS 1/2 message.
func (r *PublishResult) ReasonCode() ReasonCode {
	select {
	case <-r.done:
		return ReasonCode(r.reason)
	default:
		return 0
	}
}

// Wait waits for the message to complete and returns Err, or ctx's error.
func (r *PublishResult) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PublishAsync accepts a message as [Client.Publish] does and returns at once
// (once stored, with [WithStore]); ctx bounds only that. The payload is copied.
func (c *Client) PublishAsync(ctx context.Context, topic string, payload []byte, opts ...PublishOption) (*PublishResult, error) {
	m := Message{Topic: topic, Payload: payload}
	for _, o := range opts {
		o(&m)
	}
	o, err := c.newOut(&m)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.usable(); err != nil {
		return nil, err
	}
	if err := c.loadStore(); err != nil {
		return nil, err
	}
	o.own()
	o.result = newPublishResult()
	s := c.session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queueFullLocked(o.size) {
		return nil, fmt.Errorf("%w: %d messages, %d bytes queued", ErrQueueFull, s.fifo.n, s.queuedBytes)
	}
	if err := s.assignLocked(o); err != nil {
		return nil, err
	}
	stored, err := s.storeLocked(o, c.storesMessage(o))
	if err != nil {
		return nil, err
	}
	s.enqueueLocked(o)
	s.pumpLocked()
	if stored == nil {
		return o.result, nil
	}
	s.mu.Unlock()
	err = c.awaitStored(ctx, o, stored)
	s.mu.Lock() // for the deferred Unlock
	if err != nil {
		return nil, err
	}
	return o.result, nil
}

// Flush waits until the broker has all accepted before the call: QoS 1/2 done,
// then a PINGREQ sent after QoS 0 answered.
func (c *Client) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqttkeep: flush: %w", err)
	}
	s := c.session
	s.mu.Lock()
	upTo := s.seq
	for s.pendingUpToLocked(upTo) {
		ch := s.completedCh()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("mqttkeep: flush: %w", ctx.Err())
		case <-c.stopCh:
			return c.stopErr()
		}
		s.mu.Lock()
	}
	l := s.link
	if l == nil {
		s.mu.Unlock()
		return nil // nothing queued, nothing in flight, no connection to write to
	}
	reply := make(chan time.Duration, 1)
	err := l.pingLocked(reply)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("mqttkeep: flush: %w", err)
	}
	select {
	case <-reply:
		return nil
	case <-l.lost:
		return fmt.Errorf("mqttkeep: flush: %w: the connection dropped before the broker confirmed", ErrNotConnected)
	case <-ctx.Done():
		l.cancelPing(reply)
		return fmt.Errorf("mqttkeep: flush: %w", ctx.Err())
	case <-c.stopCh:
		return c.stopErr()
	}
}
