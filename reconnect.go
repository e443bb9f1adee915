package mqttkeep

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

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
		return fmt.Errorf("Initial must be positive, got %v", b.Initial)
	case b.Max < b.Initial:
		return fmt.Errorf("Max %v is below Initial %v", b.Max, b.Initial)
	case !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0):
		return fmt.Errorf("Multiplier must be a finite number >= 1, got %v", b.Multiplier)
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
	l.conn = newConn(nc, &c.stats)
	l.conn.fail = func(err error) { l.fail(fmt.Errorf("mqttkeep: connection lost: %w", err)) }
	l.sched = newScheduler(l.conn, c.cfg.pingTimeout, &c.stats, c.cfg.logger, l.fail)
	l.pc = paho.NewClient(paho.ClientConfig{
		ClientID:    c.cfg.clientID,
		Conn:        l.conn,
		Session:     c.session,
		PingHandler: l.sched,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { return c.received(pr, l.lost) },
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
	cp := &paho.Connect{
		ClientID:   c.cfg.clientID,
		KeepAlive:  uint16(c.cfg.keepAlive / time.Second),
		CleanStart: cleanStart,
		Properties: &paho.ConnectProperties{
			SessionExpiryInterval: &expiry,
			ReceiveMaximum:        &recvMax,
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

// isFinal reports whether err is a refusal that retrying cannot fix.
func isFinal(err error) bool {
	var rc *ReasonCodeError
	return errors.As(err, &rc) && rc.Final()
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
	next := 0 // index of the next server to try
	var lastErr error
	var downSince time.Time // zero until the first connection is lost
	first := true
	for {
		if failures > 0 {
			delay := max(c.cfg.backoff(failures), 0)
			c.events.post(ReconnectingEvent{Attempt: attempt + 1, Delay: delay, Err: lastErr})
			c.cfg.logger.Info("mqttkeep: reconnecting", "attempt", attempt+1, "delay", delay, "err", lastErr)
			if !c.sleep(delay) {
				return
			}
		}
		attempt++
		server := c.cfg.servers[next%len(c.cfg.servers)]
		l, err := c.connectOnce(c.ctx, server, first && c.cfg.cleanStart)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			failures++
			lastErr = err
			next++
			c.setLastErr(err)
			if isFinal(err) {
				c.cfg.logger.Warn("mqttkeep: connection refused; not retrying", "server", server.Redacted(), "err", err)
				c.events.post(DisconnectEvent{Err: err})
				c.setFinal(err)
				return
			}
			c.cfg.logger.Warn("mqttkeep: connect failed", "server", server.Redacted(), "attempt", attempt, "err", err)
			continue
		}
		first = false
		resubErr := c.restore(l)
		c.stats.connects.Add(1)
		var downtime time.Duration
		if !downSince.IsZero() {
			downtime = time.Since(downSince)
		}
		c.cfg.logger.Info("mqttkeep: connected", "server", server.Redacted(),
			"session_present", l.connack.SessionPresent, "keep_alive", l.keepAlive, "attempt", attempt)
		c.setLink(l)
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
			c.events.post(DisconnectEvent{Err: nil, Uptime: time.Since(l.upAt)})
			return
		}
		downSince = time.Now()
		uptime := downSince.Sub(l.upAt)
		c.setLink(nil)
		c.stats.disconnects.Add(1)
		lastErr = l.cause
		c.setLastErr(l.cause)
		c.cfg.logger.Warn("mqttkeep: connection lost", "server", server.Redacted(), "uptime", uptime, "err", l.cause)
		c.events.post(DisconnectEvent{Err: l.cause, WillReconnect: true, Uptime: uptime})
		// The socket is closed; paho's goroutines for this link end at once
		// (none of them waits on a handler: see Client.received).
		<-l.pc.Done()
		attempt = 0
		if uptime >= c.cfg.stableAfter {
			failures = 1
		} else {
			failures++
		}
	}
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
