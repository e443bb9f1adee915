package mqttkeep

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// Backoff is an exponential backoff with full jitter: the wait before
// retry n (n = 1 for the first retry) is a uniformly random duration in
// [0, min(Max, Initial × Multiplier^(n−1))]. The cap is applied first, then
// the jitter, so clients that lost the same broker spread their retries
// instead of returning in waves.
type Backoff struct {
	// Initial is the upper bound of the first retry's wait. Must be > 0.
	Initial time.Duration
	// Max caps every wait. Must be >= Initial.
	Max time.Duration
	// Multiplier grows the bound after each failed attempt. Must be >= 1.
	Multiplier float64
}

// DefaultBackoff is the policy used without [WithBackoff]: the first retry
// waits at most 500 ms, the bound doubles after each failed attempt, and
// no wait exceeds 60 s.
var DefaultBackoff = Backoff{Initial: 500 * time.Millisecond, Max: 60 * time.Second, Multiplier: 2}

func (b Backoff) validate() error {
	switch {
	case b.Initial <= 0:
		return fmt.Errorf("the Initial delay must be positive, got %v", b.Initial)
	case b.Max < b.Initial:
		return fmt.Errorf("the Max delay %v is below Initial %v", b.Max, b.Initial)
	case !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0):
		return fmt.Errorf("the Multiplier must be a finite number >= 1, got %v", b.Multiplier)
	}
	return nil
}

// Delay returns the wait before retry n (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	bound := float64(b.Initial) * math.Pow(b.Multiplier, float64(max(n, 1)-1))
	if bound > float64(b.Max) || math.IsInf(bound, 0) || math.IsNaN(bound) {
		bound = float64(b.Max)
	}
	return time.Duration(rand.Int64N(int64(bound) + 1))
}

// link is one network connection with its paho.Client and scheduler. The
// first failure reported by any of its parts is its cause.
type link struct {
	server  *url.URL
	conn    *conn
	pc      *paho.Client
	sched   *scheduler
	connack *paho.Connack
	upAt    time.Time
	// keepAlive is the negotiated keep alive: the broker's Server Keep
	// Alive if it sent one, else ours.
	keepAlive time.Duration

	lost  chan struct{} // closed by the first fail
	once  sync.Once
	cause error // set before lost is closed
}

// fail records the first cause and closes the network connection, which
// ends every goroutine that reads or writes it.
func (l *link) fail(err error) {
	l.once.Do(func() {
		l.cause = err
		close(l.lost)
		if l.conn != nil {
			_ = l.conn.Conn.Close()
		}
	})
}

// isLost reports whether the connection has failed or been closed.
func (l *link) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

// checkServerLimits refuses, before anything is sent, what the broker
// said in CONNACK it does not support.
func (l *link) checkServerLimits(m *Message, pb *packets.Publish) error {
	p := l.connack.Properties
	if p == nil {
		return nil
	}
	if p.MaximumQoS != nil && m.QoS > *p.MaximumQoS {
		return fmt.Errorf("%w: %d, the broker's maximum is %d", ErrInvalidQoS, m.QoS, *p.MaximumQoS)
	}
	if m.Retain && !p.RetainAvailable {
		return errors.New("mqttkeep: the broker does not support retained messages")
	}
	if p.MaximumPacketSize != nil && *p.MaximumPacketSize > 0 {
		if size := publishSize(pb); size > int(*p.MaximumPacketSize) {
			return fmt.Errorf("%w: %d bytes, the broker's Maximum Packet Size is %d", ErrPacketTooLarge, size, *p.MaximumPacketSize)
		}
	}
	return nil
}

// connectOnce dials server and performs the CONNECT/CONNACK exchange,
// bounded by the connect timeout.
func (c *Client) connectOnce(ctx context.Context, server *url.URL, cleanStart bool) (*link, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.connectTimeout, ErrConnectTimeout)
	defer cancel()
	name := server.Redacted()

	nc, err := c.cfg.dial(ctx, server)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return nil, fmt.Errorf("mqttkeep: dial %s: %w", name, err)
	}
	l := &link{server: server, lost: make(chan struct{})}
	l.conn = newConn(nc, &c.stats, c.cfg.maxPacketSize)
	l.conn.fail = func(err error) { l.fail(fmt.Errorf("mqttkeep: connection lost: %w", err)) }
	l.sched = newScheduler(l.conn, c.cfg.pingTimeout, &c.stats, c.cfg.logger, l.fail)
	l.pc = paho.NewClient(paho.ClientConfig{
		ClientID:    c.cfg.clientID,
		Conn:        l.conn,
		Session:     c.session,
		PingHandler: l.sched,
		// Received messages reach the client through the session's Ack
		// (see sessionState); this no-op keeps paho from adding a router.
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(paho.PublishReceived) (bool, error) { return true, nil },
		},
		// Waits are bounded by the callers' contexts, not by paho.
		PacketTimeout: 24 * time.Hour,
		OnServerDisconnect: func(d *paho.Disconnect) {
			l.fail(reasonError("DISCONNECT", d.ReasonCode, d.Properties))
		},
		OnClientError: func(err error) {
			l.fail(fmt.Errorf("mqttkeep: connection lost: %w", err))
		},
	})

	cp := c.connectPacket(cleanStart)
	// A CONNECT write that finds the socket full must not outlive ctx.
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	ca, err := l.pc.Connect(ctx, cp)
	stopped := stop()
	_ = nc.SetDeadline(time.Time{})
	if err != nil || !stopped {
		_ = nc.Close()
		if ca != nil && ca.ReasonCode >= 0x80 {
			return nil, reasonError("CONNACK", ca.ReasonCode, ca.Properties)
		}
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return nil, fmt.Errorf("mqttkeep: connect to %s: %w", name, err)
	}
	l.connack = ca
	l.upAt = time.Now()
	l.keepAlive = c.cfg.keepAlive
	if ca.Properties != nil && ca.Properties.ServerKeepAlive != nil {
		l.keepAlive = time.Duration(*ca.Properties.ServerKeepAlive) * time.Second
	}
	c.stats.keepAlive.Store(int64(l.keepAlive))
	return l, nil
}

// connectPacket builds CONNECT from the config.
func (c *Client) connectPacket(cleanStart bool) *paho.Connect {
	expiry := uint32(c.cfg.sessionExpiry / time.Second)
	recvMax := c.cfg.receiveMaximum
	var maxSize *uint32
	if c.cfg.maxPacketSize > 0 {
		n := uint32(c.cfg.maxPacketSize)
		maxSize = &n
	}
	cp := &paho.Connect{
		ClientID:   c.cfg.clientID,
		KeepAlive:  uint16(c.cfg.keepAlive / time.Second),
		CleanStart: cleanStart,
		Properties: &paho.ConnectProperties{
			SessionExpiryInterval: &expiry,
			ReceiveMaximum:        &recvMax,
			MaximumPacketSize:     maxSize,
			// Ask for reason strings on every packet (errors read better).
			// paho's default (0) also makes mochi strip user properties
			// from the PUBLISH packets it forwards to us.
			RequestProblemInfo: true,
		},
	}
	if c.cfg.username != "" {
		cp.Username, cp.UsernameFlag = c.cfg.username, true
	}
	if c.cfg.password != nil {
		cp.Password, cp.PasswordFlag = []byte(c.cfg.password), true
	}
	if w := c.cfg.will; w != nil {
		cp.WillMessage = &paho.WillMessage{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain}
		cp.WillProperties = &paho.WillProperties{}
	}
	return cp
}

// reasonError builds the typed error for a CONNACK or DISCONNECT.
func reasonError(packet string, code byte, props any) *ReasonCodeError {
	e := &ReasonCodeError{Packet: packet, Code: code}
	switch p := props.(type) {
	case *paho.ConnackProperties:
		if p != nil {
			e.Reason, e.ServerReference = p.ReasonString, p.ServerReference
		}
	case *paho.DisconnectProperties:
		if p != nil {
			e.Reason, e.ServerReference = p.ReasonString, p.ServerReference
		}
	}
	return e
}

// isFinal reports whether err is a refusal that retrying cannot fix: a
// final CONNACK reason code, or a server certificate that did not verify.
func isFinal(err error) bool {
	var rc *ReasonCodeError
	return (errors.As(err, &rc) && rc.Final()) || isTLSVerifyError(err)
}

// supervise is the client's supervisor goroutine: it owns every
// connection, from the first dial to Close. After a loss it reports the
// cause, waits a backoff delay and connects again, until Close or a
// refusal that retrying cannot fix.
func (c *Client) supervise() {
	defer c.stopped()
	// failures counts failed attempts, and connections lost before they
	// were stable, since the last stable connection: it drives the backoff,
	// so a connection that flaps right after CONNACK backs off like a
	// refused one. attempt counts attempts since the last loss, for hooks.
	failures, attempt := 0, 0
	next := 0             // index of the next configured server to try
	var redirect *url.URL // a Server Reference to try next, if any
	hops := 0             // redirects followed since the last connection
	var lastErr error
	var downSince time.Time // zero until the first connection is lost
	first := true
	for {
		if failures > 0 && redirect == nil {
			delay := max(c.cfg.backoff(failures), 0)
			c.events.post(ReconnectingEvent{Attempt: attempt + 1, Delay: delay, Err: lastErr})
			c.cfg.logger.Info("mqttkeep: reconnecting", "attempt", attempt+1, "delay", delay, "err", lastErr)
			if !c.sleep(delay) {
				return
			}
		}
		attempt++
		server := c.cfg.servers[next%len(c.cfg.servers)]
		if redirect != nil {
			server, redirect = redirect, nil
		}
		l, err := c.connectOnce(c.ctx, server, first && c.cfg.cleanStart)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			failures++
			lastErr = err
			c.setLastErr(err)
			if isFinal(err) {
				c.cfg.logger.Warn("mqttkeep: connection refused; not retrying", "server", server.Redacted(), "err", err)
				c.events.post(DisconnectEvent{Err: err})
				c.setFinal(err)
				return
			}
			if redirect = c.redirectTarget(err, server, &hops); redirect == nil {
				next++ // rotate to the next configured server
			}
			c.cfg.logger.Warn("mqttkeep: connect failed", "server", server.Redacted(), "attempt", attempt, "err", err)
			continue
		}
		first, hops = false, 0
		// Counted before the link is published: whoever sees the client
		// connected also sees the connection counted.
		c.stats.connects.Add(1)
		if !l.connack.SessionPresent {
			c.sessionLost()
		}
		resubErr := c.restore(l)
		c.flushAndPublish(l)
		var downtime time.Duration
		if !downSince.IsZero() {
			downtime = time.Since(downSince)
		}
		c.cfg.logger.Info("mqttkeep: connected", "server", server.Redacted(),
			"session_present", l.connack.SessionPresent, "keep_alive", l.keepAlive, "attempt", attempt)
		c.events.post(ConnectEvent{
			Server:         server.Redacted(),
			SessionPresent: l.connack.SessionPresent,
			Attempt:        attempt,
			Downtime:       downtime,
			KeepAlive:      l.keepAlive,
			ResubscribeErr: resubErr,
		})

		select {
		case <-l.lost:
		case <-c.ctx.Done():
			c.disconnect(l)
			c.setLink(nil)
			c.stats.disconnects.Add(1)
			c.events.post(DisconnectEvent{Err: nil, Uptime: time.Since(l.upAt), LastReceived: l.conn.lastReceived()})
			return
		}
		downSince = time.Now()
		uptime := downSince.Sub(l.upAt)
		c.setLink(nil)
		c.stats.disconnects.Add(1)
		lastErr = l.cause
		c.setLastErr(l.cause)
		if isTakeover(l.cause) {
			// Another client with our ID took the session. Reconnecting
			// would take it back and start a fight that neither wins
			// (MQTT.js #1585): stop, and tell the user.
			c.cfg.logger.Warn("mqttkeep: session taken over by another client with this ID; not reconnecting",
				"server", server.Redacted(), "client_id", c.cfg.clientID)
			c.events.post(DisconnectEvent{Err: l.cause, Uptime: uptime, LastReceived: l.conn.lastReceived()})
			<-l.pc.Done()
			c.setFinal(l.cause)
			return
		}
		c.cfg.logger.Warn("mqttkeep: connection lost", "server", server.Redacted(), "uptime", uptime, "err", l.cause)
		c.events.post(DisconnectEvent{Err: l.cause, WillReconnect: true, Uptime: uptime, LastReceived: l.conn.lastReceived()})
		// The socket is closed; paho's goroutines for this link end at once
		// (none of them waits on a handler: see Client.deliver).
		<-l.pc.Done()
		attempt = 0
		if uptime >= c.cfg.stableAfter {
			failures = 1
		} else {
			failures++
		}
		redirect = c.redirectTarget(l.cause, server, &hops)
	}
}

// maxRedirects bounds the Server References followed in a row without a
// successful connection, so two brokers pointing at each other cannot
// keep the client away from its configured servers.
const maxRedirects = 3

// redirectTarget returns the server named by a CONNACK or DISCONNECT with
// 0x9C (use another server) or 0x9D (server moved) and a Server Reference,
// or nil. hops counts the redirects followed since the last connection.
func (c *Client) redirectTarget(err error, from *url.URL, hops *int) *url.URL {
	var rc *ReasonCodeError
	if !errors.As(err, &rc) || (rc.Code != 0x9C && rc.Code != 0x9D) || rc.ServerReference == "" {
		return nil
	}
	if *hops >= maxRedirects {
		c.cfg.logger.Warn("mqttkeep: too many redirects; using the configured servers", "reference", rc.ServerReference)
		return nil
	}
	u, perr := parseServerReference(rc.ServerReference, from)
	if perr != nil {
		c.cfg.logger.Warn("mqttkeep: ignoring unusable server reference", "reference", rc.ServerReference, "err", perr)
		return nil
	}
	*hops++
	c.cfg.logger.Info("mqttkeep: redirected", "from", from.Redacted(), "to", u.Redacted(), "code", rc.Code)
	return u
}

// parseServerReference reads a Server Reference: the first of a
// space-separated list, either a URL or host[:port], which then keeps the
// scheme of the server that sent it.
func parseServerReference(ref string, from *url.URL) (*url.URL, error) {
	first, _, _ := strings.Cut(strings.TrimSpace(ref), " ")
	if !strings.Contains(first, "://") {
		first = from.Scheme + "://" + first
	}
	return parseServerURL(first)
}

// isTakeover reports a server DISCONNECT 0x8E: session taken over.
func isTakeover(err error) bool {
	var rc *ReasonCodeError
	return errors.As(err, &rc) && rc.Packet == "DISCONNECT" && rc.Code == 0x8E
}

// disconnect ends l on Close: DISCONNECT (ending the session at once
// unless the user chose a session expiry), then wait for paho to stop.
func (c *Client) disconnect(l *link) {
	d := &paho.Disconnect{ReasonCode: 0x00}
	if !c.cfg.sessionExpirySet && c.cfg.sessionExpiry > 0 {
		zero := uint32(0)
		d.Properties = &paho.DisconnectProperties{SessionExpiryInterval: &zero}
	}
	// A DISCONNECT write that finds the socket full must not hang Close.
	_ = l.conn.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = l.pc.Disconnect(d)
	l.fail(nil)
}

// sessionLost wakes Publish calls whose QoS 1/2 message was in flight: the
// broker did not keep the session, so paho's session state dropped the
// message, and Publish sends it again.
func (c *Client) sessionLost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.epoch)
	c.epoch = make(chan struct{})
}

// flushAndPublish sends the offline queue on l, then makes l the client's
// connection, under c.mu and only once the queue is empty, so that no new
// Publish overtakes a queued one.
func (c *Client) flushAndPublish(l *link) {
	for {
		c.flush(l)
		c.mu.Lock()
		if l.isLost() || c.ctx.Err() != nil {
			c.mu.Unlock()
			return // the supervisor notices and carries on
		}
		if n, _ := c.queue.len(); n == 0 {
			c.link = l
			if c.state != StateClosed {
				c.setStateLocked(StateConnected)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// sleep waits d or until Close; it reports whether to go on.
func (c *Client) sleep(d time.Duration) bool {
	if d <= 0 {
		return c.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// restore re-sends every remembered subscription in one SUBSCRIBE when the
// broker did not keep the session. It runs before the link is published,
// so no publish can overtake it.
func (c *Client) restore(l *link) error {
	if l.connack.SessionPresent {
		return nil
	}
	subs := c.subs.snapshot()
	if len(subs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.connectTimeout)
	defer cancel()
	opts := make([]paho.SubscribeOptions, len(subs))
	for i, s := range subs {
		opts[i] = paho.SubscribeOptions{Topic: s.filter, QoS: s.qos}
	}
	sa, err := l.pc.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts})
	if err == nil {
		c.cfg.logger.Info("mqttkeep: subscriptions restored", "count", len(subs))
		return nil
	}
	err = subackError(sa, opts, err)
	c.cfg.logger.Warn("mqttkeep: restoring subscriptions failed", "err", err)
	return err
}
