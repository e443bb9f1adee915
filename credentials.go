package mqttkeep

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// Credentials are what a [CredentialsFunc] returns for one attempt.
type Credentials struct {
	// Username and Password go in CONNECT (an empty Password: the name alone).
	Username, Password string
	// URL, if set, replaces this attempt's server URL (its query is never shown).
	URL *url.URL
	// Header is added to this attempt's WebSocket handshake.
	Header http.Header
}

// CredentialsFunc gives an attempt's credentials within the connect timeout.
type CredentialsFunc func(ctx context.Context, server *url.URL) (Credentials, error)

// ErrCredentials is a [CredentialsFunc]'s error or unusable result (retried).
var ErrCredentials = errors.New("mqttkeep: credentials")

// WithCredentialsFunc takes each attempt's credentials from f. Default: none.
func WithCredentialsFunc(f CredentialsFunc) Option {
	return optionFunc(func(c *config) error {
		if f == nil {
			return optionError("WithCredentialsFunc", "nil function")
		}
		c.credentials = f
		return nil
	})
}

// attemptCredentials is what one attempt uses: the server to dial, what
// to show of it, the user name and password, and the WebSocket header.
type attemptCredentials struct {
	server   *url.URL
	shown    string
	username string
	password secret
	header   http.Header
}

// credentialsFor returns the credentials of one attempt to server.
func (c *Client) credentialsFor(ctx context.Context, server *url.URL) (attemptCredentials, error) {
	a := attemptCredentials{server: server, shown: server.Redacted(), username: c.cfg.username, password: c.cfg.password}
	f := c.cfg.credentials
	if f == nil {
		return a, nil
	}
	cr, err := f(ctx, server)
	if err != nil {
		return a, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	switch {
	case cr.Username == "" && cr.Password != "":
		return a, fmt.Errorf("%w: a password needs a user name", ErrCredentials)
	case cr.Username != "" && wire.CheckString("user name", cr.Username) != nil:
		return a, fmt.Errorf("%w: the user name is not a valid MQTT string", ErrCredentials)
	case len(cr.Password) > wire.MaxString:
		return a, fmt.Errorf("%w: password longer than %d bytes", ErrCredentials, wire.MaxString)
	}
	a.username, a.password, a.header = cr.Username, nil, cr.Header
	if cr.Password != "" {
		a.password = secret(cr.Password)
	}
	if cr.URL != nil {
		u := *cr.URL
		u.RawQuery, u.Fragment = "", ""
		shown := u.Redacted()
		if cr.URL.User != nil {
			return a, fmt.Errorf("%w: URL %s carries user information", ErrCredentials, shown)
		}
		u = *cr.URL
		u.Scheme = strings.ToLower(u.Scheme)
		port, ok := schemes[u.Scheme]
		if !ok || u.Hostname() == "" {
			return a, fmt.Errorf("%w: URL %s: want a host and one of the schemes %s", ErrCredentials, shown, schemeList)
		}
		if u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), port)
		}
		a.server, a.shown = &u, shown
	}
	return a, nil
}

// wsHeaderKey carries an attempt's WebSocket header to the dialer.
type wsHeaderKey struct{}

// withWSHeader returns ctx carrying h for the WebSocket handshake.
func withWSHeader(ctx context.Context, h http.Header) context.Context {
	if h == nil {
		return ctx
	}
	return context.WithValue(ctx, wsHeaderKey{}, h)
}

// wsHeader returns the WebSocket handshake header ctx carries, if any.
func wsHeader(ctx context.Context) http.Header {
	h, _ := ctx.Value(wsHeaderKey{}).(http.Header)
	return h
}
