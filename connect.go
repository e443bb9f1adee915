package mqttkeep

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// connectOnce connects to server at the protocol version negotiated for
// it (protocol.go): MQTT 5, or 3.1.1 at once when the broker refused 5.
// With MQTT 3.1.1, a fresh session that must outlive a lost connection
// takes two connections, since 3.1.1 has no session expiry: a Clean
// Session one clears the old session, then a persistent one starts the
// new. On success it returns the link, not yet started.
func (c *Client) connectOnce(ctx context.Context, server *url.URL, cleanStart bool) (*link, error) {
	v := c.versionFor(server)
	l, err := c.connectAttempt(ctx, server, cleanStart, v)
	if err != nil && c.downgrade(server, v, err) {
		v = wire.V311
		l, err = c.connectAttempt(ctx, server, cleanStart, v)
	}
	if err != nil {
		return nil, err
	}
	c.accepted(server, v)
	if v == wire.V311 && cleanStart && c.cfg.sessionExpiry > 0 {
		l.quietClose()
		return c.connectAttempt(ctx, server, false, v)
	}
	return l, nil
}

// connectAttempt dials server and performs the CONNECT/CONNACK exchange
// at version v (with enhanced authentication, if configured), bounded by
// the connect timeout. On success it returns the link, not yet started.
func (c *Client) connectAttempt(ctx context.Context, server *url.URL, cleanStart bool, v wire.Version) (*link, error) {
	// The attempt's context is not derived from ctx's cancellation: a
	// child of a cancelable context leaves it a map of children for the
	// rest of its life (256 bytes per idle client for ctx = c.ctx).
	// ctx's end cancels the attempt through c.attemptCancel instead.
	ctx, cancel := c.attemptContext(ctx)
	defer cancel()
	creds, err := c.credentialsFor(ctx, server)
	if err != nil {
		return nil, err
	}
	server, name := creds.server, creds.shown

	nc, err := c.dial(withWSHeader(ctx, creds.header), server)
	if err != nil {
		return nil, &dialError{fmt.Errorf("mqttkeep: dial %s: %w", name, dialCause(ctx, err))}
	}
	// The exchange must not outlive ctx: a deadline for a broker that
	// stops answering, a close for a cancelled ctx.
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	l, err := c.handshake(ctx, server, nc, cleanStart, &creds, v)
	stopped := stop()
	if err == nil && !stopped {
		err = context.Cause(ctx)
	}
	if err != nil {
		_ = nc.Close()
		var rc *ReasonCodeError
		if errors.As(err, &rc) {
			return nil, err
		}
		return nil, fmt.Errorf("mqttkeep: connect to %s: %w", name, dialCause(ctx, err))
	}
	_ = nc.SetDeadline(time.Time{})
	return l, nil
}

// attemptContext returns the context of a connection attempt: parent's
// values, the connect timeout, and cancelled when parent ends (parent is
// c.ctx, which Close cancels). cancel must be called when the attempt
// ends.
func (c *Client) attemptContext(parent context.Context) (ctx context.Context, cancel context.CancelFunc) {
	ctx, cancelTimeout := context.WithTimeoutCause(context.WithoutCancel(parent), c.cfg.connectTimeout, ErrConnectTimeout)
	c.mu.Lock()
	c.attemptCancel = cancelTimeout
	c.mu.Unlock()
	if parent.Err() != nil { // Close came before attemptCancel was set
		cancelTimeout()
	}
	return ctx, func() {
		c.mu.Lock()
		c.attemptCancel = nil
		c.mu.Unlock()
		cancelTimeout()
	}
}

// dialCause prefers the connect timeout (or Close) over the network error
// it caused, so that errors.Is(err, ErrConnectTimeout) holds for every
// attempt the connect timeout cut short.
func dialCause(ctx context.Context, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, ErrConnectTimeout) {
		// The connect deadline on the socket fired just before ctx's own
		// timer: the same timeout.
		if _, ok := ctx.Deadline(); ok {
			return fmt.Errorf("%w (%v)", ErrConnectTimeout, err)
		}
	}
	if cause := context.Cause(ctx); cause != nil {
		if errors.Is(cause, ErrConnectTimeout) {
			return fmt.Errorf("%w (%v)", cause, err)
		}
		return cause
	}
	return err
}

// handshake writes CONNECT and reads packets until CONNACK.
func (c *Client) handshake(ctx context.Context, server *url.URL, nc net.Conn, cleanStart bool, creds *attemptCredentials, v wire.Version) (*link, error) {
	l := newLink(c, server, nc, v)
	cp := c.connectPacket(cleanStart, creds)
	if err := c.editConnect(&cp, creds.shown); err != nil {
		return nil, err
	}
	auth := c.cfg.auth
	if v == wire.V311 {
		if err := c.connect311(&cp); err != nil {
			return nil, err
		}
		auth = nil
	}
	if auth != nil {
		method, data, err := auth.Start(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrAuthFailed, err)
		}
		cp.Props.Mark(wire.PropAuthMethod)
		cp.Props.AuthMethod = method
		if data != nil {
			cp.Props.Mark(wire.PropAuthData)
			cp.Props.AuthData = data
		}
	}
	b, err := wire.AppendConnect(nil, v, &cp)
	if err != nil {
		return nil, fmt.Errorf("%w: CONNECT: %w", ErrInvalidOption, err)
	}
	if _, err := nc.Write(b); err != nil {
		return nil, err
	}
	c.stats.bytesOut.Add(uint64(len(b)))
	c.stats.packetsOut.Add(1)
	l.lastSent.Store(int64(l.now()))
	for {
		typ, _, body, err := l.rd.Next()
		if err != nil {
			switch {
			case errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrTooLarge):
				return nil, fmt.Errorf("%w before CONNACK: %w", ErrMalformedPacket, err)
			case v == wire.V5 && closedBeforeConnack(err) && ctx.Err() == nil:
				return nil, fmt.Errorf("%w (%w)", errNoConnack, err)
			}
			return nil, err
		}
		c.stats.packetsIn.Add(1)
		switch typ {
		case wire.CONNACK:
			if v == wire.V5 && len(body) == 2 {
				// An MQTT 3.1.1 broker's answer to a level-5 CONNECT:
				// return code 1, unacceptable protocol version.
				if ca, err := wire.DecodeConnack(wire.V311, body); err == nil && ca.Reason >= 0x80 {
					return nil, connackError(ca)
				}
			}
			ca, err := wire.DecodeConnack(v, body)
			if err != nil {
				return nil, fmt.Errorf("%w in CONNACK: %w", ErrMalformedPacket, err)
			}
			if ca.Reason >= 0x80 {
				return nil, connackError(ca)
			}
			if auth != nil && ca.Props.Has(wire.PropAuthMethod) && ca.Props.AuthMethod != cp.Props.AuthMethod {
				return nil, c.refuseBeforeConnack(nc, v, fmt.Errorf("%w: CONNACK names the authentication method %q, CONNECT used %q",
					ErrProtocolViolation, ca.Props.AuthMethod, cp.Props.AuthMethod))
			}
			if auth != nil {
				if err := auth.Done(ctx, ca.Props.AuthData); err != nil {
					return nil, fmt.Errorf("%w: %w", ErrAuthFailed, err)
				}
			}
			l.accept(ca, &cp)
			return l, nil
		case wire.AUTH:
			a, err := wire.DecodeAuth(v, body)
			if err != nil {
				return nil, fmt.Errorf("%w in AUTH: %w", ErrMalformedPacket, err)
			}
			if auth == nil || a.Reason != 0x18 {
				return nil, c.refuseBeforeConnack(nc, v, fmt.Errorf("%w: unexpected AUTH 0x%02X before CONNACK", ErrProtocolViolation, a.Reason))
			}
			if err := checkAuthMethod(&a.Props, cp.Props.AuthMethod); err != nil {
				return nil, c.refuseBeforeConnack(nc, v, fmt.Errorf("%w: AUTH before CONNACK: %w", ErrProtocolViolation, err))
			}
			if err := c.authStep(ctx, nc, l, auth, cp.Props.AuthMethod, a); err != nil {
				return nil, err
			}
		case wire.DISCONNECT:
			d, err := wire.DecodeDisconnect(v, body)
			if err != nil {
				return nil, fmt.Errorf("%w in DISCONNECT: %w", ErrMalformedPacket, err)
			}
			if err := checkServerDisconnect(&d); err != nil {
				return nil, c.refuseBeforeConnack(nc, v, fmt.Errorf("%w: %w", ErrProtocolViolation, err))
			}
			return nil, disconnectError(d)
		default:
			return nil, c.refuseBeforeConnack(nc, v, fmt.Errorf("%w: %s before CONNACK", ErrProtocolViolation, wire.TypeName(typ)))
		}
	}
}

// refuseBeforeConnack tells an MQTT 5 broker why the attempt ends, with
// DISCONNECT 0x82 (protocol error), before the socket is closed
// ([MQTT-4.13.1-1]); the write is bounded by the attempt's deadline. It
// returns err.
func (c *Client) refuseBeforeConnack(nc net.Conn, v wire.Version, err error) error {
	if v != wire.V5 {
		return err // MQTT 3.1.1: a client just closes the connection
	}
	if b, encErr := wire.AppendDisconnect(nil, v, &wire.Disconnect{Reason: 0x82}); encErr == nil {
		if _, werr := nc.Write(b); werr == nil {
			c.stats.bytesOut.Add(uint64(len(b)))
			c.stats.packetsOut.Add(1)
		}
	}
	return err
}

// checkAuthMethod checks that a broker's AUTH names the method of the
// exchange: an AUTH must carry one (MQTT v5 §3.15.2.2.2), and
// it may not change during the exchange (§4.12).
func checkAuthMethod(p *wire.Props, want string) error {
	switch {
	case !p.Has(wire.PropAuthMethod):
		return errors.New("no Authentication Method")
	case p.AuthMethod != want:
		return fmt.Errorf("the Authentication Method %q is not the exchange's, %q", p.AuthMethod, want)
	}
	return nil
}

// connackError is the error for a refused CONNACK.
func connackError(ca wire.Connack) *ReasonCodeError {
	return &ReasonCodeError{Packet: "CONNACK", Code: ReasonCode(ca.Reason), Reason: ca.Props.ReasonString, ServerReference: ca.Props.ServerReference}
}

// accept takes in what the CONNACK said.
func (l *link) accept(ca wire.Connack, cp *wire.Connect) {
	l.caps = capabilitiesOf(&ca.Props)
	l.caps.ProtocolVersion = MQTT5
	if l.v == wire.V311 {
		l.caps.ProtocolVersion = MQTT311
		l.caps.SubscriptionIDsAvailable = false // no properties to carry them
		if l.c.qos1Only.Load() {
			l.caps.MaximumQoS = 1 // learnt from a PUBACK to QoS 2 (downgradedLocked)
		}
	}
	l.sessionPresent, l.cleanSession = ca.SessionPresent, cp.CleanStart
	l.upAt = time.Now()
	l.serverReceiveMax = uint16(l.caps.ReceiveMaximum)
	l.serverMaxPacket = l.caps.MaximumPacketSize
	l.maxQoS = l.caps.MaximumQoS
	l.sessionExpiry = time.Duration(cp.Props.SessionExpiry) * time.Second
	if l.caps.SessionExpirySet {
		l.sessionExpiry = l.caps.SessionExpiry
	}
	l.keepAlive = time.Duration(cp.KeepAlive) * time.Second
	if l.caps.ServerKeepAliveSet {
		l.keepAlive = l.caps.ServerKeepAlive
	}
	l.pingTimeout = l.c.cfg.pingTimeout
	if l.pingTimeout == 0 {
		l.pingTimeout = l.keepAlive / 2
	}
	l.writeTimeout = l.c.cfg.writeTimeout
	if l.writeTimeout == 0 {
		l.writeTimeout = l.pingTimeout
		if l.writeTimeout == 0 {
			l.writeTimeout = l.c.cfg.connectTimeout
		}
	}
	if l.c.cfg.topicAliases {
		l.aliasOut.max = uint16(l.caps.TopicAliasMaximum)
	}
}

// connectPacket builds CONNECT from the config.
func (c *Client) connectPacket(cleanStart bool, creds *attemptCredentials) wire.Connect {
	c.mu.Lock()
	id := c.clientID
	c.mu.Unlock()
	cp := wire.Connect{ClientID: id, KeepAlive: uint16(c.cfg.keepAlive / time.Second), CleanStart: cleanStart}
	p := &cp.Props
	p.Mark(wire.PropSessionExpiry)
	p.SessionExpiry = uint32(c.cfg.sessionExpiry / time.Second)
	p.Mark(wire.PropReceiveMaximum)
	p.ReceiveMaximum = c.cfg.receiveMaximum
	if c.cfg.maxPacketSize > 0 {
		p.Mark(wire.PropMaximumPacketSize)
		p.MaximumPacketSize = uint32(c.cfg.maxPacketSize)
	}
	if c.cfg.topicAliasMaximum > 0 {
		p.Mark(wire.PropTopicAliasMaximum)
		p.TopicAliasMaximum = c.cfg.topicAliasMaximum
	}
	// Ask for reason strings on every packet (errors read better); its
	// default (0) also makes mochi strip user properties from the PUBLISH
	// packets it forwards to us.
	p.Mark(wire.PropRequestProblemInfo)
	p.RequestProblemInfo = 1
	if c.cfg.requestResponseInfo {
		p.Mark(wire.PropRequestResponseInfo)
		p.RequestResponseInfo = 1
	}
	if creds.username != "" {
		cp.Username, cp.HasUsername = creds.username, true
	}
	if creds.password != nil {
		cp.Password, cp.HasPassword = []byte(creds.password), true
	}
	if w := c.cfg.will; w != nil {
		cp.Will = &wire.Will{Topic: w.msg.Topic, Payload: w.msg.Payload, QoS: byte(w.msg.QoS), Retain: w.msg.Retain}
		setPublishProps(&cp.Will.Props, &w.msg)
		if w.delay > 0 {
			cp.Will.Props.Mark(wire.PropWillDelay)
			cp.Will.Props.WillDelay = uint32(w.delay / time.Second)
		}
	}
	return cp
}
