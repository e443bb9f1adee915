package wsconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/gorilla/websocket"
)

// Dial opens an MQTT connection over WebSocket to server, a ws:// or
// wss:// URL whose path is the HTTP path of the handshake ("/" when it
// has none).
//
// netDial opens the TCP connection to the URL's host and port (nil: a
// net.Dialer's DialContext). For wss:// the TLS handshake runs over that
// connection with tlsConfig (nil: TLS 1.2 or newer and the system's
// roots); when tlsConfig names no server, the URL's host is the name the
// certificate must carry. header is sent with the HTTP upgrade request
// (nil: none). The upgrade asks for the "mqtt" subprotocol
// ([Subprotocol]) and fails when the server does not accept it.
//
// ctx bounds the whole of it, dial, TLS and upgrade: when ctx ends first
// the connection is closed and Dial returns ctx's error. A TLS handshake
// error is returned as crypto/tls gave it (errors.As tells a certificate
// that does not verify); a server that answers the upgrade with anything
// but 101 Switching Protocols gives an error naming its HTTP status.
func Dial(ctx context.Context, server *url.URL, netDial func(ctx context.Context, network, addr string) (net.Conn, error),
	tlsConfig *tls.Config, header http.Header) (net.Conn, error) {
	if server.Scheme != "ws" && server.Scheme != "wss" {
		return nil, fmt.Errorf("wsconn: unsupported scheme %q (want ws or wss)", server.Scheme)
	}
	if netDial == nil {
		var nd net.Dialer
		netDial = nd.DialContext
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if tlsConfig != nil {
		cfg = tlsConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = server.Hostname()
	}
	// gorilla bounds the upgrade by ctx's deadline only: a ctx cancelled
	// without one closes the connection from here.
	var w watch
	stop := context.AfterFunc(ctx, w.end)
	defer stop()
	wd := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := netDial(ctx, network, addr)
			return w.keep(c, err)
		},
		// The TLS handshake is ours, over netDial's connection; gorilla
		// reads TLSClientConfig only to word an error about ALPN.
		NetDialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := tlsDial(ctx, netDial, network, addr, cfg)
			return w.keep(c, err)
		},
		TLSClientConfig:  cfg,
		Subprotocols:     []string{Subprotocol},
		HandshakeTimeout: 0, // bounded by ctx
	}
	u := *server
	if u.Path == "" {
		u.Path = "/"
	}
	ws, resp, err := wd.DialContext(ctx, u.String(), header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if !stop() && ctx.Err() != nil {
		// ctx ended during the handshake; w.end has closed the connection.
		if err != nil {
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		_ = ws.NetConn().Close()
		return nil, ctx.Err()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket handshake: %s: %w", resp.Status, err)
		}
		return nil, err
	}
	if ws.Subprotocol() != Subprotocol {
		_ = ws.NetConn().Close()
		return nil, fmt.Errorf("websocket handshake: server did not accept the %q subprotocol", Subprotocol)
	}
	return New(ws), nil
}

// watch closes the connection being dialled when the dial's ctx ends.
type watch struct {
	mu    sync.Mutex
	conn  net.Conn
	ended bool
}

// keep is the connection to close if ctx ends.
func (w *watch) keep(c net.Conn, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	w.conn = c
	return c, nil
}

// end closes the connection, if there is one yet.
func (w *watch) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	if w.conn != nil {
		_ = w.conn.Close()
	}
}

// tlsDial opens the connection with netDial and runs the TLS handshake
// over it, closing it when the handshake fails.
func tlsDial(ctx context.Context, netDial func(context.Context, string, string) (net.Conn, error), network, addr string, cfg *tls.Config) (net.Conn, error) {
	raw, err := netDial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return tc, nil
}

// TLSConnectionState returns the state of the TLS connection beneath a
// wss:// connection, and false beneath a ws:// one.
func (c *Conn) TLSConnectionState() (tls.ConnectionState, bool) {
	tc, ok := c.ws.NetConn().(*tls.Conn)
	if !ok {
		return tls.ConnectionState{}, false
	}
	return tc.ConnectionState(), true
}
