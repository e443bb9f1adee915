package mqttkeep

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// isFinal reports whether err is a refusal that retrying cannot fix: a
// final CONNACK reason code, a server certificate that did not verify, or
// a CONNECT the client cannot build (WithConnectPacket made it invalid).
func isFinal(err error) bool {
	var rc *ReasonCodeError
	return (errors.As(err, &rc) && rc.Final()) || isTLSVerifyError(err) || errors.Is(err, ErrInvalidOption)
}

// supervise is the client's supervisor goroutine: it owns every
// connection, from the first dial to Close. After a loss it reports the
// cause, waits as the reconnect policy says (see retry.go) and connects
// again, until Close or a refusal that retrying cannot fix.
func (c *Client) supervise() {
	defer c.stopped()
	rs := retryState{phase: newPhase()}
	attempt := 0 // attempts since the last loss, for hooks
	next := 0    // index of the next configured server to try
	if c.cfg.randomStart {
		next = rand.IntN(len(c.cfg.servers)) // a fleet spreads over the list
	}
	untried := len(c.cfg.servers) - 1 // servers of this round not tried yet
	var redirect *url.URL             // a Server Reference to try next, if any
	var lastErr error
	var downSince time.Time // zero until the first connection is lost
	cleanStart := c.cfg.cleanStart
	var prevAliases map[uint16]string // the broker's topic aliases on the last connection
	for {
		if rs.due && redirect == nil {
			delay := c.retryDelay(&rs)
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
		rs.attemptAt = time.Now()
		l, err := c.connectOnce(c.ctx, server, cleanStart)
		rs.failover = false
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			lastErr = err
			c.setLastErr(err)
			if isFinal(err) {
				c.cfg.logger.Warn("mqttkeep: connection refused; not retrying", "server", server.Redacted(), "err", err)
				c.events.post(DisconnectEvent{Err: err})
				c.setFinal(err)
				return
			}
			rs.failed(belowMQTT(err))
			if belowMQTT(err) && errors.Is(err, ErrConnectTimeout) {
				rs.dialTimeouts++
			} else {
				rs.dialTimeouts = 0
			}
			if redirect = c.redirectTarget(err, server, &rs.hops); redirect == nil {
				next++ // rotate to the next configured server
				if untried > 0 && !rs.partitioned() {
					// Another server of the list has not been tried
					// since the last connection: try it at once.
					untried--
					rs.due = false
				} else {
					untried = len(c.cfg.servers) - 1 // a new round, after the wait
				}
			}
			c.cfg.logger.Warn("mqttkeep: connect failed", "server", server.Redacted(), "attempt", attempt, "err", err)
			continue
		}
		cleanStart, rs.dialTimeouts = false, 0
		untried = len(c.cfg.servers) - 1
		if l.sessionPresent {
			l.prevAliasIn = prevAliases
		}
		// Counted before the link is published: whoever sees the client
		// connected also sees the connection counted.
		c.stats.connects.Add(1)
		restored, resubErr := c.open(l)
		var downtime time.Duration
		if !downSince.IsZero() {
			downtime = time.Since(downSince)
		}
		c.cfg.logger.Info("mqttkeep: connected", "server", server.Redacted(),
			"session_present", l.sessionPresent, "keep_alive", l.keepAlive, "attempt", attempt)
		c.events.post(ConnectEvent{
			Server:                server.Redacted(),
			SessionPresent:        l.sessionPresent,
			Attempt:               attempt,
			Downtime:              downtime,
			KeepAlive:             l.keepAlive,
			DeadLinkBound:         l.deadLinkBound(),
			ResubscribeErr:        resubErr,
			SubscriptionsRestored: restored,
			Capabilities:          l.caps,
		})

		select {
		case <-l.lost:
		case <-c.ctx.Done():
			c.disconnect(l)
			c.stats.disconnects.Add(1)
			c.events.post(DisconnectEvent{Err: nil, Uptime: time.Since(l.upAt), LastReceived: l.lastReceived()})
			return
		}
		downSince = time.Now()
		uptime := downSince.Sub(l.upAt)
		c.close(l)
		prevAliases = l.aliasIn // its reader has ended
		c.setState(StateConnecting)
		c.stats.disconnects.Add(1)
		lastErr = l.cause
		c.setLastErr(l.cause)
		if isTakeover(l.cause) {
			// Another client with our ID took the session. Reconnecting
			// would take it back and start a fight that neither wins
			// (MQTT.js #1585): stop, and tell the user.
			c.cfg.logger.Warn("mqttkeep: session taken over by another client with this ID; not reconnecting",
				"server", server.Redacted(), "client_id", c.ClientID())
			c.events.post(DisconnectEvent{Err: l.cause, Uptime: uptime, LastReceived: l.lastReceived()})
			c.setFinal(l.cause)
			return
		}
		healthy := l.healthy.Load()
		cause := l.cause
		s := c.session
		s.mu.Lock()
		if perr := s.suspectsLocked(l); perr != nil {
			cause = errors.Join(cause, perr)
		}
		s.mu.Unlock()
		if rs.poisoned(l, healthy, c.cfg.poisonLimit) {
			// The broker's session kills every connection that resumes
			// it (a message the client cannot decode, sent again each
			// time): start a new one rather than loop forever.
			cleanStart = true
			c.stats.sessionsAbandoned.Add(1)
			c.cfg.logger.Warn("mqttkeep: the resumed session failed every connection; starting a new session",
				"connections", c.cfg.poisonLimit, "err", l.cause)
		}
		c.cfg.logger.Warn("mqttkeep: connection lost", "server", server.Redacted(), "uptime", uptime, "err", l.cause)
		c.events.post(DisconnectEvent{Err: cause, WillReconnect: true, Uptime: uptime, LastReceived: l.lastReceived(),
			NewSession: cleanStart})
		attempt = 0
		// A loss the broker caused by breaking the protocol backs off like
		// a failed attempt, whatever came before it (poison.go).
		rs.lost(healthy && !brokerFault(l.cause))
		if redirect = c.redirectTarget(l.cause, server, &rs.hops); redirect == nil && len(c.cfg.servers) > 1 {
			// The server may be gone (a cluster node killed or cut off):
			// the next one first. The client then stays where it works.
			next++
			rs.failover = true
		}
	}
}

// open makes l the session's link: it re-sends what the session had in
// flight, restores subscriptions (waiting for their SUBACKs, within the
// connect timeout, so that no queued publish overtakes them), then lets
// queued messages flow, oldest first, and marks the client connected. It
// returns how many subscriptions it sent and the broker's refusal of any
// of them.
func (c *Client) open(l *link) (int, error) {
	c.mu.Lock()
	c.caps, c.capsSet = l.caps, true
	c.sessionExpiry = l.sessionExpiry
	if id := l.caps.AssignedClientID; id != "" {
		c.clientID = id // kept for every later connection
		c.cfg.logClientID.Store(&id)
	}
	c.mu.Unlock()
	c.stats.keepAlive.Store(int64(l.keepAlive))

	s := c.session
	s.mu.Lock()
	s.link = l
	if c.cfg.store != nil && !c.metaSaved {
		c.metaSaved = true
		s.persistLocked(persistOp{puts: []Record{metaRecord(c.ClientID())}})
	}
	if !l.sessionPresent {
		s.forgetInboundLocked()
	}
	s.resumeLocked(l, l.sessionPresent)
	reqs := c.restoreLocked(l, l.sessionPresent)
	restored := 0
	for _, r := range reqs {
		restored += len(r.subs)
	}
	s.mu.Unlock()
	l.start()

	var errs []error
	timeout := time.NewTimer(c.cfg.connectTimeout)
	defer timeout.Stop()
wait:
	for _, r := range reqs {
		select {
		case a, ok := <-r.reply:
			if !ok {
				break wait // the link died; the supervisor notices
			}
			for i, code := range a.Reasons {
				if code >= 0x80 && r.unsub == nil && i < len(r.subs) {
					errs = append(errs, fmt.Errorf("filter %q: %w", r.subs[i].filter,
						&ReasonCodeError{Packet: "SUBACK", Code: ReasonCode(code), Reason: a.Props.ReasonString}))
				}
			}
		case <-timeout.C:
			errs = append(errs, fmt.Errorf("mqttkeep: restoring subscriptions: no SUBACK within %v", c.cfg.connectTimeout))
			break wait
		case <-l.lost:
			break wait
		case <-c.ctx.Done():
			break wait
		}
	}
	var resubErr error
	if len(errs) > 0 {
		resubErr = fmt.Errorf("mqttkeep: restoring subscriptions: %w", errors.Join(errs...))
		c.cfg.logger.Warn("mqttkeep: restoring subscriptions failed", "err", resubErr)
	} else if restored > 0 {
		c.cfg.logger.Info("mqttkeep: subscriptions restored", "count", restored)
	}

	s.mu.Lock()
	live := s.link == l && !l.isLost()
	if live {
		s.pumping = true
		// Subscriptions made while the restore ran.
		var wanted []*subscription
		for _, sub := range c.subs.all {
			if sub.state == subWanted {
				wanted = append(wanted, sub)
			}
		}
		c.sendSubscribesLocked(l, wanted)
		s.pumpLocked()
	}
	s.mu.Unlock()
	if live {
		c.setState(StateConnected)
	}
	return restored, resubErr
}

// close detaches a lost link from the session and waits for its
// goroutines.
func (c *Client) close(l *link) {
	s := c.session
	s.mu.Lock()
	s.detachLocked(l)
	l.stopTimersLocked()
	s.mu.Unlock()
	l.wg.Wait()
}

// stopped runs when the supervisor returns: handlers get nothing more,
// waiting publishers are released, hooks get what was posted.
func (c *Client) stopped() {
	c.stopDelivery()
	err := c.stopErr()
	s := c.session
	s.mu.Lock()
	s.discardAllLocked(err)
	n := c.stats.messagesDiscarded.Load()
	// The store's pending steps (removals of completed messages) are
	// applied before Close returns, so that the store can be closed then.
	for s.persist.running {
		idle := s.persist.idle
		s.mu.Unlock()
		<-idle
		s.mu.Lock()
	}
	s.mu.Unlock()
	if n > 0 {
		c.cfg.logger.Warn("mqttkeep: queued QoS 0 messages discarded", "count", n)
	}
	c.events.close()
	close(c.supDone)
}

// maxRedirects bounds the Server References followed without waiting
// since the last stable connection, so brokers pointing at each other (or
// at themselves) cannot keep the client away from its configured servers
// or make it reconnect without backing off.
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

// disconnect ends l on Close: no handler call starts any more, and
// DISCONNECT goes out (ending the session at once unless the user chose a
// session expiry) behind whatever the send buffer holds, within
// disconnectWait.
func (c *Client) disconnect(l *link) {
	c.stopDelivery()
	c.mu.Lock()
	d := c.finalDisconnect
	c.mu.Unlock()
	if d == nil {
		d = c.disconnectPacket()
	}
	endSession := l.v == wire.V311 && d.Props.Has(wire.PropSessionExpiry) && d.Props.SessionExpiry == 0 && !l.cleanSession
	if l.v == wire.V311 {
		// MQTT 3.1.1's DISCONNECT is bare; leaving without one is how a
		// client has its will published (CloseWithWill).
		if d.Reason == 0x04 {
			d = nil
		} else {
			d = &wire.Disconnect{}
		}
	}
	s := c.session
	s.mu.Lock()
	l.closeWithLocked(d, nil)
	s.mu.Unlock()
	<-l.lost
	c.close(l)
	if endSession {
		c.endSession311(l.server)
	}
}

// disconnectPacket builds the DISCONNECT that Close sends: it ends the
// session at once unless the user chose a session expiry, and
// WithDisconnectPacket edits it. Called once per Close (Drain builds it
// first, to know whether the session will be kept), without a lock: the
// edit is user code.
func (c *Client) disconnectPacket() *wire.Disconnect {
	c.mu.Lock()
	d := &wire.Disconnect{Reason: c.closeReason}
	c.mu.Unlock()
	if !c.cfg.sessionExpirySet && c.cfg.sessionExpiry > 0 {
		d.Props.Mark(wire.PropSessionExpiry)
	}
	c.editDisconnect(d)
	return d
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
