package mqttkeep

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/gorilla/websocket"
	"github.com/mqttkeep/mqttkeep/internal/wsconn"
)

// dialer opens connections by URL scheme: plain TCP (mqtt, tcp), TLS
// (mqtts, ssl, tls) and WebSocket (ws, wss). It is the default DialFunc.
type dialer struct {
	tls *tls.Config // nil: system roots, hostname verification
}

func (d dialer) dial(ctx context.Context, server *url.URL) (net.Conn, error) {
	var nd net.Dialer
	switch server.Scheme {
	case "mqtt", "tcp":
		return nd.DialContext(ctx, "tcp", server.Host)
	case "mqtts", "ssl", "tls":
		td := tls.Dialer{NetDialer: &nd, Config: d.tlsConfig(server)}
		return td.DialContext(ctx, "tcp", server.Host)
	case "ws", "wss":
		wd := websocket.Dialer{
			NetDialContext:   nd.DialContext,
			TLSClientConfig:  d.tlsConfig(server),
			Subprotocols:     []string{wsconn.Subprotocol},
			HandshakeTimeout: 0, // bounded by ctx (the connect timeout)
		}
		u := *server
		if u.Path == "" {
			u.Path = "/"
		}
		ws, resp, err := wd.DialContext(ctx, u.String(), wsHeader(ctx))
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			if resp != nil {
				return nil, fmt.Errorf("websocket handshake: %s: %w", resp.Status, err)
			}
			return nil, err
		}
		if ws.Subprotocol() != wsconn.Subprotocol {
			_ = ws.NetConn().Close()
			return nil, fmt.Errorf("websocket handshake: server did not accept the %q subprotocol", wsconn.Subprotocol)
		}
		return wsconn.New(ws), nil
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
