package mqttkeep

import (
	"context"
	"fmt"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// Authenticator runs enhanced authentication (AUTH) for every attempt and
// [Client.Reauthenticate], its ctx ending with the connect timeout.
type Authenticator interface {
	// Start returns the method and the initial data (nil: none).
	Start(ctx context.Context) (method string, data []byte, err error)
	// Continue answers the broker's challenge (AUTH 0x18) with the next data.
	Continue(ctx context.Context, challenge []byte) ([]byte, error)
	// Done checks the data of the broker's success; an error fails the exchange.
	Done(ctx context.Context, data []byte) error
}

// WithAuthenticator authenticates every CONNECT with a (AUTH). Default: none.
func WithAuthenticator(a Authenticator) Option {
	return optionFunc(func(c *config) error {
		if a == nil {
			return optionError("WithAuthenticator", "nil authenticator")
		}
		c.auth = a
		return nil
	})
}

// authPacket encodes an AUTH with method and data.
func authPacket(reason byte, method string, data []byte) ([]byte, error) {
	a := wire.Auth{Reason: reason}
	a.Props.Mark(wire.PropAuthMethod)
	a.Props.AuthMethod = method
	if data != nil {
		a.Props.Mark(wire.PropAuthData)
		a.Props.AuthData = data
	}
	return wire.AppendAuth(nil, wire.V5, &a)
}

// authStep answers a challenge during the CONNECT exchange.
func (c *Client) authStep(ctx context.Context, nc netConnWriter, l *link, auth Authenticator, method string, a wire.Auth) error {
	data, err := auth.Continue(ctx, a.Props.AuthData)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuthFailed, err)
	}
	b, err := authPacket(0x18, method, data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuthFailed, err)
	}
	if _, err := nc.Write(b); err != nil {
		return err
	}
	c.stats.bytesOut.Add(uint64(len(b)))
	c.stats.packetsOut.Add(1)
	l.lastSent.Store(int64(l.now()))
	return nil
}

// netConnWriter is the part of a connection authStep writes to.
type netConnWriter interface {
	Write([]byte) (int, error)
}

// reauth is a re-authentication in progress on a link, guarded by s.mu.
type reauth struct {
	method string
	ctx    context.Context
	done   chan error // buffered: the outcome
}

// Reauthenticate runs a new [WithAuthenticator] exchange (AUTH 0x19) on the
// live connection; a refusal ends the connection.
func (c *Client) Reauthenticate(ctx context.Context) error {
	auth := c.cfg.auth
	if auth == nil {
		return fmt.Errorf("%w: Reauthenticate needs WithAuthenticator", ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.usable(); err != nil {
		return err
	}
	method, data, err := auth.Start(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuthFailed, err)
	}
	b, err := authPacket(0x19, method, data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuthFailed, err)
	}
	r := &reauth{method: method, ctx: ctx, done: make(chan error, 1)}
	s := c.session
	s.mu.Lock()
	l := s.link
	switch {
	case l == nil || l.closing:
		s.mu.Unlock()
		return ErrNotConnected
	case l.reauth != nil:
		s.mu.Unlock()
		return fmt.Errorf("%w: a re-authentication is already running", ErrInvalidArgument)
	}
	l.reauth = r
	l.writeRaw(b)
	l.probe()
	s.mu.Unlock()
	select {
	case err := <-r.done:
		return err
	case <-l.lost:
		return fmt.Errorf("mqttkeep: re-authentication: %w: %w", ErrNotConnected, l.cause)
	case <-ctx.Done():
		s.mu.Lock()
		if l.reauth == r {
			l.reauth = nil
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// authReceived handles an AUTH on a live link (reader goroutine): a step
// of a re-authentication the client started. Any other AUTH breaks the
// protocol.
func (c *Client) authReceived(l *link, a wire.Auth) error {
	s := c.session
	s.mu.Lock()
	r := l.reauth
	s.mu.Unlock()
	if r == nil || c.cfg.auth == nil {
		return fmt.Errorf("%w: AUTH 0x%02X without a re-authentication", wire.ErrProtocol, a.Reason)
	}
	if err := checkAuthMethod(&a.Props, r.method); err != nil {
		c.endReauth(l, r, fmt.Errorf("%w: %w", ErrProtocolViolation, err))
		return fmt.Errorf("%w: AUTH 0x%02X: %w", wire.ErrProtocol, a.Reason, err)
	}
	switch a.Reason {
	case 0x18:
		data, err := c.cfg.auth.Continue(r.ctx, a.Props.AuthData)
		if err == nil {
			var b []byte
			if b, err = authPacket(0x18, r.method, data); err == nil {
				s.mu.Lock()
				l.writeRaw(b)
				l.probe()
				s.mu.Unlock()
				return nil
			}
		}
		c.endReauth(l, r, fmt.Errorf("%w: %w", ErrAuthFailed, err))
		return nil
	case 0x00:
		err := c.cfg.auth.Done(r.ctx, a.Props.AuthData)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrAuthFailed, err)
		}
		c.endReauth(l, r, err)
		return nil
	}
	return fmt.Errorf("%w: AUTH with reason code 0x%02X", wire.ErrProtocol, a.Reason)
}

func (c *Client) endReauth(l *link, r *reauth, err error) {
	s := c.session
	s.mu.Lock()
	if l.reauth == r {
		l.reauth = nil
	}
	s.mu.Unlock()
	r.done <- err
}
