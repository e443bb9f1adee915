package mqttkeep

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// Client is an MQTT v5 client, safe for concurrent use: [New] makes one,
// [Client.Connect] starts it, [Client.Close] ends it and its goroutines.
type Client struct {
	cfg     *config
	stats   counters
	hooks   hooks
	events  *eventQueue
	session *session

	// Guarded by session.mu: subscriptions, the fallback handler's lane,
	// QoS 0 deliveries waiting, and the stop flags of the message path.
	subs        registry
	fallback    *lane
	waitingQoS0 int
	held        []*heldMsg    // received messages waiting for a subscription (held.go)
	progress    chan struct{} // closed when a delivery or acknowledgement completes; nil unless Drain waits
	unwanted    []string      // filters unsubscribed from, latest last (held.go)
	stopping    bool          // no handler call starts any more
	draining    bool          // Drain runs: no new subscription
	drainKeep   bool          // Drain keeps the session: new arrivals are left to the broker

	callbacks callbackGroup
	requests  requests
	loadOnce  sync.Once // the store is read by the first Connect
	loadErr   error
	metaSaved bool // the store's meta record was written (supervisor only)
	// negotiated is the protocol version each server accepted, by URL,
	// with ProtocolAuto (supervisor only).
	negotiated map[string]wire.Version
	dialTime   atomic.Int64 // how long the last successful dial took, for overlapping dials
	qos1Only   atomic.Bool  // a 3.1.1 broker took a QoS 2 message at QoS 1 (downgradedLocked)
	unanswered time.Time    // when the current run of unanswered dials began (overlap.go); supervisor only

	ctx           context.Context // ends when Close is called
	cancel        context.CancelFunc
	attemptCancel context.CancelFunc // cancels the running connection attempt; mu

	mu          sync.Mutex
	state       State
	changed     chan struct{} // closed at the next state change; nil until someone waits for one
	started     bool
	lastErr     error // why the last attempt or connection failed
	finalErr    error // set when the client stopped for good
	caps        Capabilities
	capsSet     bool
	clientID    string // the configured one, or the broker's assigned one
	closeReason byte   // the DISCONNECT reason code Close sends
	// finalDisconnect is the DISCONNECT Drain built (it decided from it
	// whether the session is kept); nil: Close builds its own.
	finalDisconnect *wire.Disconnect
	sessionExpiry   time.Duration // in force on the current (or last) connection
	stopCh          chan struct{}
	stopOnce        sync.Once
	supDone         chan struct{}
}

// New returns a Client made from opts (bad ones: [ErrInvalidOption]),
// unstarted.
func New(opts ...Option) (*Client, error) {
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:      cfg,
		clientID: cfg.clientID,
		stopCh:   make(chan struct{}),
		supDone:  make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.session = newSession(c)
	c.requests.setup = make(chan struct{}, 1)
	c.events = newEventQueue(c)
	for _, h := range cfg.onConnect {
		c.OnConnect(h)
	}
	for _, h := range cfg.onDisconnect {
		c.OnDisconnect(h)
	}
	for _, h := range cfg.onReconnecting {
		c.OnReconnecting(h)
	}
	for _, h := range cfg.onPing {
		c.OnPing(h)
	}
	if cfg.fallback != nil {
		c.fallback = &lane{name: "(fallback)", handler: cfg.fallback, max: 1}
	}
	for _, spec := range cfg.subscriptions {
		sub, err := newSubscription(spec.filter, spec.qos, spec.handler, spec.opts)
		if err != nil { // checked by WithSubscription
			return nil, optionError("WithSubscription", "%v", err)
		}
		c.addLocked(sub) // no link yet: nothing is sent, no lock needed
	}
	return c, nil
}

// ClientID returns the client identifier, the broker's if it assigned one.
func (c *Client) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// Connect starts the client and waits for a connection: nil, a final refusal,
// the [WithStore] store's error, or ctx's error (it keeps trying until Close).
func (c *Client) Connect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err // not started
	}
	if err := c.loadStore(); err != nil {
		return err
	}
	c.mu.Lock()
	switch {
	case c.state == StateClosed:
		c.mu.Unlock()
		return ErrClosed
	case !c.started:
		c.started = true
		c.setStateLocked(StateConnecting)
		go c.supervise()
	}
	c.mu.Unlock()
	return c.AwaitConnected(ctx)
}

// loadStore reads the store (WithStore) once, before anything is put in
// it: in the first Connect, or in a Publish made before Connect.
func (c *Client) loadStore() error {
	if c.cfg.store == nil {
		return nil
	}
	c.loadOnce.Do(func() { c.loadErr = c.load() })
	return c.loadErr
}

// AwaitConnected waits to be connected (nil), closed, stopped, or ctx's end.
func (c *Client) AwaitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		st, finalErr := c.state, c.finalErr
		switch st {
		case StateConnected:
			c.mu.Unlock()
			return nil
		case StateClosed:
			c.mu.Unlock()
			return ErrClosed
		case StateStopped:
			c.mu.Unlock()
			return finalErr
		case StateDisconnected:
			c.mu.Unlock()
			return fmt.Errorf("%w: Connect has not been called", ErrNotConnected)
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		changed := c.changed
		c.mu.Unlock()
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

// Capabilities returns the last CONNACK's [Capabilities], false before one.
func (c *Client) Capabilities() (Capabilities, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caps, c.capsSet
}

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() Stats {
	s := c.stats.snapshot(c.State())
	c.session.mu.Lock()
	s.OutQueued, s.OutQueuedBytes = c.session.fifo.n, c.session.queuedBytes
	s.OutInFlight, s.OutInFlightBytes = len(c.session.inflight), c.session.inflightBytes
	s.InHeld = len(c.held)
	s.LastReceived = c.session.lastRecv
	if l := c.session.link; l != nil {
		s.ConnectedSince, s.LastReceived = l.upAt, l.lastReceived()
	}
	c.session.mu.Unlock()
	return s
}

// OnConnect registers a hook for every CONNACK and returns its remover;
// register before Connect to see all.
func (c *Client) OnConnect(hook func(ConnectEvent)) (unregister func()) {
	return addHook(&c.hooks, &c.hooks.onConnect, hook)
}

// OnDisconnect registers a hook for each loss, Close (nil Err), final refusal.
func (c *Client) OnDisconnect(hook func(DisconnectEvent)) (unregister func()) {
	return addHook(&c.hooks, &c.hooks.onDisconnect, hook)
}

// OnReconnecting registers a hook called before each retry's wait.
func (c *Client) OnReconnecting(hook func(ReconnectingEvent)) (unregister func()) {
	return addHook(&c.hooks, &c.hooks.onReconnecting, hook)
}

// OnPing registers a hook for every PINGRESP; see [Client.OnConnect].
func (c *Client) OnPing(hook func(PingEvent)) (unregister func()) {
	return addHook(&c.hooks, &c.hooks.onPing, hook)
}

// Ping sends a PINGREQ now and returns the round trip to its PINGRESP.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := c.usable(); err != nil {
		return 0, err
	}
	reply := make(chan time.Duration, 1)
	s := c.session
	s.mu.Lock()
	l := s.link
	if l == nil {
		s.mu.Unlock()
		return 0, ErrNotConnected
	}
	err := l.pingLocked(reply)
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	select {
	case rtt := <-reply:
		return rtt, nil
	case <-l.lost:
		return 0, fmt.Errorf("%w: %w", ErrNotConnected, l.cause)
	case <-ctx.Done():
		l.cancelPing(reply)
		return 0, ctx.Err()
	}
}

// usable reports why the client cannot take a call now: closed, or
// stopped by a final refusal.
func (c *Client) usable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state == StateClosed:
		return ErrClosed
	case c.finalErr != nil:
		return fmt.Errorf("%w: %w", ErrNotConnected, c.finalErr)
	}
	return nil
}

// stopErr is why a waiting call ends when the client stops.
func (c *Client) stopErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finalErr != nil {
		return fmt.Errorf("%w: %w", ErrNotConnected, c.finalErr)
	}
	return ErrClosed
}

func (c *Client) setLastErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
}

// setFinal stops the client for good with err.
func (c *Client) setFinal(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finalErr = err
	if c.state != StateClosed {
		c.setStateLocked(StateStopped)
	}
	c.stopOnce.Do(func() { close(c.stopCh) })
}

func (c *Client) setState(st State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != StateClosed && c.state != StateStopped {
		c.setStateLocked(st)
	}
}

// setStateLocked changes the state and wakes AwaitConnected. c.mu held.
func (c *Client) setStateLocked(st State) {
	if c.state == st {
		return
	}
	c.state = st
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// Close stops the client at once (see Delivery in the package doc) and returns
// when its goroutines ended (from a callback: the connection), or at ctx's end.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	started := c.started
	c.setStateLocked(StateClosed)
	c.mu.Unlock()
	c.stopOnce.Do(func() { close(c.stopCh) })
	c.cancel()
	c.mu.Lock()
	cancelAttempt := c.attemptCancel
	c.mu.Unlock()
	if cancelAttempt != nil {
		cancelAttempt()
	}
	if !started {
		c.stopDelivery()
		return nil
	}
	select {
	case <-c.supDone:
	case <-ctx.Done():
		return fmt.Errorf("mqttkeep: close: %w", ctx.Err())
	}
	if inCallback() {
		return nil // the caller is a callback: they end as they return
	}
	if err := c.callbacks.wait(ctx); err != nil {
		return fmt.Errorf("mqttkeep: close: %w (handlers or hooks still running)", err)
	}
	return nil
}

// CloseWithWill is Close with DISCONNECT 0x04: the broker publishes the will.
func (c *Client) CloseWithWill(ctx context.Context) error {
	c.mu.Lock()
	if c.state != StateClosed {
		c.closeReason = 0x04
	}
	c.mu.Unlock()
	return c.Close(ctx)
}

// stopDelivery stops handing messages to handlers and counts what was
// left; it returns how many deliveries were abandoned.
func (c *Client) stopDelivery() int {
	s := c.session
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.stopping {
		return 0
	}
	c.stopping = true
	n := c.abandonQueuedLocked() + c.abandonHeldLocked()
	c.stats.messagesAbandoned.Add(uint64(n))
	if n > 0 {
		c.cfg.logger.Warn("mqttkeep: received messages left unhandled and unacknowledged by Close", "count", n)
	}
	return n
}
