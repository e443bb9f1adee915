package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"

	"github.com/mqttkeep/mqttkeep/internal/wsconn"
)

// netDialer opens the connections when the command needs more than the
// library's own dialer: a local address to bind (-A), a unix socket
// (--unix), or the TLS handshake's outcome ("mqttkeep check"). It speaks
// every scheme the library does: TCP, TLS and WebSocket (plain or TLS).
type netDialer struct {
	bind string      // -A: local address (IP or host name) to dial from
	unix string      // --unix: socket path instead of the URL's host and port
	tls  *tls.Config // for TLS schemes; nil: Go's defaults

	mu         sync.Mutex
	state      *tls.ConnectionState // the last TLS handshake's
	serverName string               // the name its certificate was checked against
}

// dial is an mqttkeep.DialFunc.
func (d *netDialer) dial(ctx context.Context, server *url.URL) (net.Conn, error) {
	switch server.Scheme {
	case "mqtt", "tcp":
		return d.raw(ctx, server.Host)
	case "mqtts", "ssl", "tls":
		return d.tlsDial(ctx, server)
	case "ws", "wss":
		return d.wsDial(ctx, server)
	}
	return nil, fmt.Errorf("unsupported scheme %q", server.Scheme)
}

// raw opens the TCP (or unix socket) connection.
func (d *netDialer) raw(ctx context.Context, addr string) (net.Conn, error) {
	var nd net.Dialer
	if d.unix != "" {
		return nd.DialContext(ctx, "unix", d.unix)
	}
	if d.bind != "" {
		local, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(d.bind, "0"))
		if err != nil {
			return nil, fmt.Errorf("-A %s: %w", d.bind, err)
		}
		nd.LocalAddr = local
	}
	return nd.DialContext(ctx, "tcp", addr)
}

// tlsConfig is the configuration for one server, with the server name
// taken from its URL when not set.
func (d *netDialer) tlsConfig(server *url.URL) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if d.tls != nil {
		cfg = d.tls.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = server.Hostname()
	}
	return cfg
}

func (d *netDialer) tlsDial(ctx context.Context, server *url.URL) (net.Conn, error) {
	raw, err := d.raw(ctx, server.Host)
	if err != nil {
		return nil, err
	}
	cfg := d.tlsConfig(server)
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	d.record(tc.ConnectionState(), cfg.ServerName)
	return tc, nil
}

// wsDial opens a WebSocket connection, over TLS for wss://, whose
// handshake it records as tlsDial does.
func (d *netDialer) wsDial(ctx context.Context, server *url.URL) (net.Conn, error) {
	raw := func(ctx context.Context, _, addr string) (net.Conn, error) { return d.raw(ctx, addr) }
	cfg := d.tlsConfig(server)
	c, err := wsconn.Dial(ctx, server, raw, cfg, nil)
	if err != nil {
		return nil, err
	}
	if wc, ok := c.(*wsconn.Conn); ok {
		if st, isTLS := wc.TLSConnectionState(); isTLS {
			d.record(st, cfg.ServerName)
		}
	}
	return c, nil
}

// record keeps a TLS handshake's state for tlsState.
func (d *netDialer) record(st tls.ConnectionState, serverName string) {
	d.mu.Lock()
	d.state, d.serverName = &st, serverName
	d.mu.Unlock()
}

// tlsState returns the last TLS handshake's state and the server name
// its certificate was checked against, if there was one.
func (d *netDialer) tlsState() (tls.ConnectionState, string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state == nil {
		return tls.ConnectionState{}, "", false
	}
	return *d.state, d.serverName, true
}
