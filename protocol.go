package mqttkeep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// ProtocolVersion is the MQTT version a Client speaks (see "MQTT 3.1.1").
type ProtocolVersion byte

// ProtocolAuto tries MQTT 5, and 3.1.1 at once (no backoff) after CONNACK
// 0x84, a 3.1.1 return code 1 or a close before CONNACK, per server, for
// the Client's life.
const (
	ProtocolAuto ProtocolVersion = 0
	MQTT311      ProtocolVersion = 4 // MQTT 3.1.1 (protocol level 4) only
	MQTT5        ProtocolVersion = 5 // MQTT 5.0 only
)

// String returns "auto", "3.1.1" or "5".
func (v ProtocolVersion) String() string {
	switch v {
	case ProtocolAuto:
		return "auto"
	case MQTT311:
		return "3.1.1"
	case MQTT5:
		return "5"
	}
	return fmt.Sprintf("ProtocolVersion(%d)", byte(v))
}

// WithProtocolVersion sets the MQTT version. Default: [ProtocolAuto] (one
// CONNECT with a broker that speaks 5).
func WithProtocolVersion(v ProtocolVersion) Option {
	return optionFunc(func(c *config) error {
		switch v {
		case ProtocolAuto, MQTT311, MQTT5:
			c.protocol = v
			return nil
		}
		return optionError("WithProtocolVersion", "%d, want ProtocolAuto, MQTT311 or MQTT5", byte(v))
	})
}

// errV311 is the error for an MQTT 5 feature used while the client
// speaks MQTT 3.1.1: it matches ErrNotSupported and names the feature.
func errV311(what string) error {
	return fmt.Errorf("%w: MQTT 3.1.1 has no %s", ErrNotSupported, what)
}

// speaks311 reports whether the current (or last) connection speaks
// MQTT 3.1.1, for the checks of calls that need MQTT 5.
func (c *Client) speaks311() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caps.ProtocolVersion == MQTT311
}

// errNoConnack says why a level-5 CONNECT got no CONNACK: a broker that
// does not speak MQTT 5 may close the connection without a word (RabbitMQ
// 3.10 does).
var errNoConnack = errors.New("the broker closed the connection before CONNACK: it may not speak MQTT 5 (see WithProtocolVersion)")

// versionFor returns the version to try on server: the configured one,
// else what was negotiated with that server, else 5. Supervisor only.
func (c *Client) versionFor(server *url.URL) wire.Version {
	switch c.cfg.protocol {
	case MQTT311:
		return wire.V311
	case MQTT5:
		return wire.V5
	}
	if v, ok := c.negotiated[server.String()]; ok {
		return v
	}
	return wire.V5
}

// downgrade reports whether an attempt at version v on server that failed
// with err should be tried again at once with MQTT 3.1.1, and remembers
// the outcome for server. Supervisor only.
func (c *Client) downgrade(server *url.URL, v wire.Version, err error) bool {
	if c.cfg.protocol != ProtocolAuto || v != wire.V5 {
		return false
	}
	key := server.String()
	if _, known := c.negotiated[key]; known {
		return false // this server spoke MQTT 5 before: not a version problem
	}
	var rc *ReasonCodeError
	refused := errors.As(err, &rc) && rc.Packet == "CONNACK" && rc.Code == 0x84
	if !refused && !errors.Is(err, errNoConnack) {
		return false
	}
	if c.negotiated == nil {
		c.negotiated = make(map[string]wire.Version)
	}
	c.negotiated[key] = wire.V311
	c.cfg.logger.Info("mqttkeep: the broker refused MQTT 5; trying MQTT 3.1.1", "server", server.Redacted(), "err", err)
	return true
}

// accepted records the version a server accepted. Supervisor only.
func (c *Client) accepted(server *url.URL, v wire.Version) {
	if c.cfg.protocol != ProtocolAuto {
		return
	}
	if c.negotiated == nil {
		c.negotiated = make(map[string]wire.Version)
	}
	c.negotiated[server.String()] = v
}

// closedBeforeConnack reports a connection that ended before any CONNACK
// without a timeout: the broker closed it.
func closedBeforeConnack(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || refused(err)
}

// connect311 makes cp an MQTT 3.1.1 CONNECT, or says what in the
// configuration 3.1.1 cannot carry: the will's properties and delay,
// CONNECT user properties (WithConnectPacket), enhanced authentication.
// Such an error is final (ErrInvalidOption): retrying cannot fix it. The
// properties that only tune the session (Session Expiry, Receive Maximum,
// Maximum Packet Size, Topic Alias Maximum, Request Problem/Response
// Information) are dropped: 3.1.1 has no way to say them, and the client
// keeps enforcing its own limits.
func (c *Client) connect311(cp *wire.Connect) error {
	switch {
	case c.cfg.auth != nil:
		return fmt.Errorf("%w WithAuthenticator: %w", ErrInvalidOption, errV311("enhanced authentication"))
	case cp.Props.Has(wire.PropUser):
		return fmt.Errorf("%w WithConnectPacket: %w", ErrInvalidOption, errV311("CONNECT user properties"))
	case cp.Will != nil && cp.Will.Props.Set != 0:
		return fmt.Errorf("%w WithWill: %w", ErrInvalidOption, errV311("will properties or will delay"))
	}
	cp.Props = wire.Props{}
	if c.cfg.sessionExpiry == 0 {
		cp.CleanStart = true // no session wanted beyond the connection
	}
	return nil
}

// endSession311 ends the MQTT 3.1.1 session that Close leaves behind
// (3.1.1 has no session expiry: a session kept across reconnects lasts
// until a Clean Session connection ends it), with one more connection,
// Clean Session set, closed at once. Bounded by twice disconnectWait;
// the supervisor, after its last link.
func (c *Client) endSession311(server *url.URL) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*disconnectWait)
	defer cancel()
	l, err := c.connectAttempt(ctx, server, true, wire.V311)
	if err != nil {
		c.cfg.logger.Warn("mqttkeep: could not end the MQTT 3.1.1 session on Close; the broker keeps it", "server", server.Redacted(), "err", err)
		return
	}
	l.quietClose()
}

// quietClose ends a link that was never started, with a plain DISCONNECT
// (written within disconnectWait); its session ends or stays as its
// CONNECT said.
func (l *link) quietClose() {
	if b, err := wire.AppendDisconnect(nil, l.v, &wire.Disconnect{}); err == nil {
		_ = l.nc.SetWriteDeadline(time.Now().Add(disconnectWait))
		if _, err := l.nc.Write(b); err == nil {
			l.c.stats.bytesOut.Add(uint64(len(b)))
			l.c.stats.packetsOut.Add(1)
		}
	}
	_ = l.nc.Close()
}
