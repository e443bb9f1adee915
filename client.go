// Package mqttkeep is an MQTT v5 client that keeps its connection alive
// and correct without the application doing anything: it pings on its
// own, notices a dead link within one keep alive, reconnects with backoff,
// and restores subscriptions. It is a thin layer over
// github.com/eclipse/paho.golang/paho.
package mqttkeep

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
)

// Client is an MQTT v5 client that keeps one connection to a broker alive
// until Close. Create it with [New], start it with [Client.Connect]. The
// zero value is not usable. A Client is safe for concurrent use.
//
// A Client runs three goroutines from Connect until Close: the supervisor
// (which owns the connection and reconnects), the event goroutine (which
// runs OnConnect/OnDisconnect/OnReconnecting hooks) and the message
// goroutine (which runs subscription handlers). paho.golang adds its own
// for each live connection, one of which is the keepalive scheduler.
type Client struct {
	cfg     *config
	stats   counters
	hooks   hooks
	subs    registry
	events  *eventQueue
	session *sessionState
	inbox   *inbox
	queue   queue

	ctx    context.Context // ends when Close is called
	cancel context.CancelFunc

	mu        sync.Mutex
	state     State
	link      *link         // current connection; nil when not connected
	changed   chan struct{} // closed and replaced on every state change
	started   bool
	lastErr   error         // why the last attempt or connection failed
	finalErr  error         // set when the broker refused for good
	epoch     chan struct{} // closed when a reconnect finds the session gone
	stopCh    chan struct{} // closed by Close or a final refusal
	stopOnce  sync.Once
	supDone   chan struct{}
	inboxDone chan struct{}
}

// New returns a Client configured by opts. It validates every option,
// returning an error that matches [ErrInvalidOption] and names the option
// on a bad value. New starts no goroutine and opens no connection: call
// [Client.Connect].
func New(opts ...Option) (*Client, error) {
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:       cfg,
		inbox:     newInbox(),
		changed:   make(chan struct{}),
		epoch:     make(chan struct{}),
		stopCh:    make(chan struct{}),
		supDone:   make(chan struct{}),
		inboxDone: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.session = newSessionState(c.deliver)
	c.queue.maxMessages, c.queue.maxBytes = cfg.queueMessages, cfg.queueBytes
	for _, h := range cfg.onConnect {
		c.OnConnect(h)
	}
	for _, h := range cfg.onDisconnect {
		c.OnDisconnect(h)
	}
	for _, h := range cfg.onReconnecting {
		c.OnReconnecting(h)
	}
	c.events = newEventQueue(&c.hooks, cfg.logger)
	return c, nil
}

// ClientID returns the MQTT client identifier (generated in New when none
// was given).
func (c *Client) ClientID() string { return c.cfg.clientID }

// Connect starts the client and waits until the first connection is up.
// It returns nil once connected; the broker's refusal as a
// [*ReasonCodeError] when retrying cannot fix it (bad credentials, not
// authorized, ...); or, when ctx ends first, ctx's error joined with the
// last attempt's error. In that last case the client keeps trying in the
// background until Close. Calling Connect again waits like
// [Client.AwaitConnected].
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.state == StateClosed:
		c.mu.Unlock()
		return ErrClosed
	case !c.started:
		c.started = true
		c.setStateLocked(StateConnecting)
		go c.events.run()
		go c.dispatch()
		go c.supervise()
	}
	c.mu.Unlock()
	return c.AwaitConnected(ctx)
}

// AwaitConnected waits until the client is connected. It returns nil when
// connected, [ErrClosed] after Close, the final refusal after one, or
// ctx's error (joined with the last connection error) when ctx ends first.
func (c *Client) AwaitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		st, changed, finalErr := c.state, c.changed, c.finalErr
		c.mu.Unlock()
		switch st {
		case StateConnected:
			return nil
		case StateClosed:
			return ErrClosed
		case StateStopped:
			return finalErr
		case StateDisconnected:
			return fmt.Errorf("%w: Connect has not been called", ErrNotConnected)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			c.mu.Lock()
			lastErr := c.lastErr
			c.mu.Unlock()
			if lastErr != nil {
				return fmt.Errorf("%w; last attempt: %w", ctx.Err(), lastErr)
			}
			return ctx.Err()
		}
	}
}

// State returns the current connection state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() Stats {
	s := c.stats.snapshot(c.State())
	s.Queued, s.QueuedBytes = c.queue.len()
	return s
}

// OnConnect registers a hook like [WithOnConnect] and returns a function
// that removes it.
func (c *Client) OnConnect(hook func(ConnectEvent)) (unregister func()) {
	return addHook(&c.hooks, &c.hooks.onConnect, hook)
}

// OnDisconnect registers a hook like [WithOnDisconnect] and returns a
// function that removes it.
func (c *Client) OnDisconnect(hook func(DisconnectEvent)) (unregister func()) {
	return addHook(&c.hooks, &c.hooks.onDisconnect, hook)
}

// OnReconnecting registers a hook like [WithOnReconnecting] and returns a
// function that removes it.
func (c *Client) OnReconnecting(hook func(ReconnectingEvent)) (unregister func()) {
	return addHook(&c.hooks, &c.hooks.onReconnecting, hook)
}

// Subscribe subscribes to a topic filter (wildcards + and #, and shared
// subscriptions $share/group/filter, are allowed) with the given maximum
// QoS, and routes matching messages to handler. The subscription is
// remembered: when a reconnect finds no session on the broker, it is sent
// again before any publish. Subscribing again to the same filter replaces
// its handler. Subscribe returns when the broker acknowledged it; a
// refusal is a [*ReasonCodeError] and the filter is then forgotten.
func (c *Client) Subscribe(ctx context.Context, filter string, qos byte, handler MessageHandler) error {
	if err := validateFilter(filter); err != nil {
		return err
	}
	if qos > 2 {
		return fmt.Errorf("%w: %d, want 0, 1 or 2", ErrInvalidQoS, qos)
	}
	if handler == nil {
		return errors.New("mqttkeep: subscribe: nil handler")
	}
	l, err := c.currentLink()
	if err != nil {
		return err
	}
	// Remember first, so that retained messages that follow the SUBACK at
	// once find their handler.
	prev, existed := c.subs.add(filter, qos, handler)
	opts := []paho.SubscribeOptions{{Topic: filter, QoS: qos}}
	sa, err := l.pc.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts})
	if err != nil {
		c.subs.undo(filter, prev, existed)
		return subackError(sa, opts, err)
	}
	return nil
}

// Unsubscribe forgets the filters and sends UNSUBSCRIBE for them. They are
// forgotten even when the UNSUBSCRIBE cannot be sent, so a reconnect will
// not restore them.
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) error {
	for _, f := range filters {
		if err := validateFilter(f); err != nil {
			return err
		}
	}
	if len(filters) == 0 {
		return nil
	}
	c.subs.remove(filters...)
	l, err := c.currentLink()
	if err != nil {
		return err
	}
	ua, err := l.pc.Unsubscribe(ctx, &paho.Unsubscribe{Topics: filters})
	if err != nil {
		if ua != nil {
			for _, code := range ua.Reasons {
				if code >= 0x80 {
					return &ReasonCodeError{Packet: "UNSUBACK", Code: code}
				}
			}
		}
		return fmt.Errorf("mqttkeep: unsubscribe: %w", mapPahoErr(err))
	}
	return nil
}

// Ping sends a PINGREQ now and returns the round-trip time to its
// PINGRESP. It works whether or not automatic pings are on. It never waits
// for another packet's write to finish before queuing the PINGREQ.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	l, err := c.currentLink()
	if err != nil {
		return 0, err
	}
	reply := make(chan time.Duration, 1)
	if err := l.sched.ping(reply, 0); err != nil {
		return 0, err
	}
	select {
	case rtt := <-reply:
		return rtt, nil
	case <-l.lost:
		return 0, fmt.Errorf("%w: %w", ErrNotConnected, l.cause)
	case <-ctx.Done():
		l.sched.cancelPing(reply)
		return 0, ctx.Err()
	}
}

// Close disconnects cleanly (DISCONNECT, then close the socket) and stops
// the client. It returns after every goroutine the client started has
// ended, or with ctx's error if ctx ends first (the goroutines still end,
// once running handlers return). Close is idempotent; every method called
// after it returns [ErrClosed].
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	started := c.started
	c.setStateLocked(StateClosed)
	c.mu.Unlock()
	c.stopOnce.Do(func() { close(c.stopCh) })
	c.cancel()
	if !started {
		return nil
	}
	for _, done := range []<-chan struct{}{c.supDone, c.inboxDone, c.events.done} {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("mqttkeep: close: %w", ctx.Err())
		}
	}
	return nil
}

// stopped runs when the supervisor returns: it releases publishers still
// waiting on the session and lets the other goroutines finish.
func (c *Client) stopped() {
	c.discardQueue()
	_ = c.session.Close()
	c.events.close()
	close(c.supDone)
}

// currentLink returns the live connection or why there is none.
func (c *Client) currentLink() (*link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state == StateClosed:
		return nil, ErrClosed
	case c.finalErr != nil:
		return nil, fmt.Errorf("%w: %w", ErrNotConnected, c.finalErr)
	case c.link == nil || c.link.isLost():
		return nil, ErrNotConnected
	}
	return c.link, nil
}

func (c *Client) setLink(l *link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.link = l
	if c.state == StateClosed {
		return
	}
	if l != nil {
		c.setStateLocked(StateConnected)
	} else {
		c.setStateLocked(StateConnecting)
	}
}

func (c *Client) setLastErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
}

func (c *Client) setFinal(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finalErr = err
	if c.state != StateClosed {
		c.setStateLocked(StateStopped)
	}
	c.stopOnce.Do(func() { close(c.stopCh) })
}

// setStateLocked changes the state and wakes AwaitConnected. c.mu held.
func (c *Client) setStateLocked(s State) {
	if c.state == s {
		return
	}
	c.state = s
	close(c.changed)
	c.changed = make(chan struct{})
}

// deliver is called by the session state on paho's router goroutine for
// every received PUBLISH. It never waits for a handler: QoS 0 messages are
// dropped (and counted) when the buffer is full; QoS 1/2 messages always
// find room, because the broker sends at most Receive Maximum of them
// before we acknowledge, and we acknowledge only after the handlers ran.
func (c *Client) deliver(pb *packets.Publish, gen uint64) {
	it := inboxItem{pb: pb, gen: gen}
	if pb.QoS == 0 {
		if !c.inbox.tryPush(it, c.cfg.messageBuffer) {
			c.stats.messagesDropped.Add(1)
			c.cfg.logger.Debug("mqttkeep: QoS 0 message dropped: handlers are behind", "topic", pb.Topic)
		}
		return
	}
	// Room for the QoS 0 buffer plus two Receive Maximum windows of QoS
	// 1/2 (the unacknowledged ones of a connection just lost, which the
	// broker re-sends on the next): only a broker that ignores our Receive
	// Maximum makes this wait.
	c.inbox.push(it, c.cfg.messageBuffer+2*int(c.cfg.receiveMaximum), c.ctx.Done())
}

// dispatch is the message goroutine: it runs the handlers of each
// received message, in order, then acknowledges it (QoS 1/2), until Close.
func (c *Client) dispatch() {
	defer close(c.inboxDone)
	var matched []subscription
	for {
		it, ok := c.inbox.pop()
		if !ok {
			select {
			case <-c.inbox.ready:
				continue
			case <-c.ctx.Done():
				return
			}
		}
		m := messageFromPacket(it.pb)
		matched = c.subs.handlers(matched[:0], m.Topic)
		c.stats.messagesReceived.Add(1)
		for _, s := range matched {
			c.runHandler(s, m)
		}
		c.session.ackHandled(it.pb, it.gen)
		if c.ctx.Err() != nil {
			return
		}
	}
}

// runHandler calls one handler; a panic is logged, not fatal.
func (c *Client) runHandler(s subscription, m *Message) {
	defer func() {
		if r := recover(); r != nil {
			c.cfg.logger.Error("mqttkeep: message handler panicked", "filter", s.filter, "topic", m.Topic, "panic", fmt.Sprint(r))
		}
	}()
	s.handler(m)
}

// mapPahoErr turns paho's connection-state errors into ours.
func mapPahoErr(err error) error {
	switch {
	case errors.Is(err, session.ErrNoConnection), errors.Is(err, paho.ErrConnectionLost):
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return err
}
