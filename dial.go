package mqttkeep

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/mqttkeep/mqttkeep/internal/wsconn"
)

// dialer opens connections by URL scheme: plain TCP (mqtt, tcp), TLS
// (mqtts, ssl, tls) and WebSocket (ws, wss). It is what a client uses
// without WithDialer.
type dialer struct {
	tls *tls.Config // nil: system roots, hostname verification
}

// netDialFunc opens the TCP connection under a transport.
type netDialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dial opens a connection to server, with netDial for the TCP connection
// beneath TLS or WebSocket: the client overlaps slow TCP dials there (see
// dialOverlapped), and only there, so that a TLS or WebSocket handshake
// with a host that answered is never duplicated.
func (d dialer) dial(ctx context.Context, server *url.URL, netDial netDialFunc) (net.Conn, error) {
	switch server.Scheme {
	case "mqtt", "tcp":
		return netDial(ctx, "tcp", server.Host)
	case "mqtts", "ssl", "tls":
		raw, err := netDial(ctx, "tcp", server.Host)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(raw, d.tlsConfig(server))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		return tc, nil
	case "ws", "wss":
		return wsconn.Dial(ctx, server, netDial, d.tlsConfig(server), wsHeader(ctx))
	}
	return nil, fmt.Errorf("unsupported scheme %q", server.Scheme)
}

// tlsConfig returns the TLS settings for server: the user's, or Go's
// defaults, with the server name taken from the URL when not set.
func (d dialer) tlsConfig(server *url.URL) *tls.Config {
	var cfg *tls.Config
	if d.tls != nil {
		cfg = d.tls.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = server.Hostname()
	}
	return cfg
}

// isTLSVerifyError reports a server certificate that did not verify:
// retrying cannot fix it.
func isTLSVerifyError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}
