// Package embedbroker runs an embedded MQTT v5 broker (mochi-mqtt v2.7.9)
// in the process: listening on TCP (optionally with TLS and/or WebSocket),
// or reached through in-memory pipes, with stop, restart on the same port,
// bounce, refusals and server-side DISCONNECTs.
//
// It is the core of the public test kit (package mqttkeeptest, which adds
// testing.TB constructors and recorded packets) and of the "mqttkeep broker"
// and "mqttkeep demo" commands, so it must never import package testing:
// see mqttkeeptest's package documentation for mochi's known limits.
//
// With WithDataDir it keeps persistent sessions and retained messages in
// a directory (persist.go), so that they survive Restart and the process.
//
// Every connection is handed to mochi's EstablishConnection by this
// package; no mochi listener is registered. That lets the broker close
// connections that never sent CONNECT itself, on which mochi's own
// Server.Close would wait forever.
package embedbroker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mqttkeep/mqttkeep/internal/mochi"
	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
)

// Listener IDs given to mochi for the two kinds of connections.
const (
	tcpListenerID  = "tcp"
	pipeListenerID = "pipe"
)

// rebindTimeout bounds how long Restart and Bounce retry binding the
// remembered address.
const rebindTimeout = 5 * time.Second

// Errors carry no package prefix: mqttkeeptest and the command each say
// who they are.

// ErrStopped is returned by operations that need a running broker.
var ErrStopped = errors.New("broker is stopped")

// ErrClosed is returned by operations on a closed broker.
var ErrClosed = errors.New("broker is closed")

// Broker is an embedded MQTT broker. Its methods are safe for concurrent
// use.
type Broker struct {
	cfg     config
	refuse  atomic.Uint32          // CONNACK reason code for refused connections, 0 to accept
	refRef  atomic.Pointer[string] // Server Reference sent with a refusal, if any
	subID   atomic.Int64           // last inline subscription identifier
	dropped atomic.Int64           // messages dropped by servers already stopped

	life sync.Mutex // serialises Listen, Stop, Restart, Bounce and Close

	mu      sync.Mutex // guards the fields below
	srv     *mqtt.Server
	ln      net.Listener
	addr    string // the bound TCP address once Listen succeeded; kept across Stop
	conns   map[net.Conn]struct{}
	running bool
	closed  bool
	wg      sync.WaitGroup // accept loop and connection goroutines
}

// New starts a broker that accepts connections only through Pipe until
// Listen is called. It opens no socket, so a broker created inside a
// testing/synctest bubble lives entirely in it (and must be closed in it).
// The caller must call Close.
func New(opts ...Option) (*Broker, error) {
	b := &Broker{conns: make(map[net.Conn]struct{})}
	for _, o := range opts {
		o(&b.cfg)
	}
	srv, err := b.newServer()
	if err != nil {
		return nil, err
	}
	b.srv = srv
	b.running = true
	return b, nil
}

// ListenTCP is Listen("127.0.0.1:0"): loopback, a free port.
func (b *Broker) ListenTCP() error { return b.Listen("127.0.0.1:0") }

// Listen makes the broker accept connections on the TCP address addr
// ("host:port"; port 0 picks a free one), which Addr then reports and
// Restart and Bounce reuse. It may be called once.
func (b *Broker) Listen(addr string) error {
	b.life.Lock()
	defer b.life.Unlock()

	b.mu.Lock()
	closed, running, bound := b.closed, b.running, b.addr
	b.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case !running:
		return ErrStopped
	case bound != "":
		return errors.New("already listening on TCP")
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	b.mu.Lock()
	b.addr = ln.Addr().String()
	b.mu.Unlock()
	b.serveTCP(b.wrap(ln))
	return nil
}

// Addr returns the broker's bound TCP address ("127.0.0.1:PORT"), or "" if
// it has no TCP listener. It stays the same across Stop, Restart and Bounce.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// URL returns the URL of Addr with the scheme of the listener: mqtt://,
// mqtts:// (TLS), ws://…/mqtt (WebSocket) or wss://…/mqtt; "" without a
// TCP listener.
func (b *Broker) URL() string {
	addr := b.Addr()
	if addr == "" {
		return ""
	}
	switch {
	case b.cfg.websocket && b.cfg.tls != nil:
		return "wss://" + addr + "/mqtt"
	case b.cfg.websocket:
		return "ws://" + addr + "/mqtt"
	case b.cfg.tls != nil:
		return "mqtts://" + addr
	}
	return "mqtt://" + addr
}

// Pipe returns the client end of a new in-memory connection (net.Pipe) to
// the broker. If the broker is stopped or closed, the connection is
// already closed by the broker: reads return io.EOF and writes fail.
func (b *Broker) Pipe() net.Conn {
	client, server := net.Pipe()
	b.mu.Lock()
	srv, running := b.srv, b.running
	b.mu.Unlock()
	if !running {
		_ = server.Close()
		return client
	}
	b.serveConn(srv, pipeListenerID, server)
	return client
}

// Stop simulates a broker crash: it closes the TCP listener and abruptly
// closes every connection (no DISCONNECT), then shuts mochi down. The
// address is remembered for Restart. Stop does nothing if the broker is
// already stopped.
func (b *Broker) Stop() {
	b.life.Lock()
	defer b.life.Unlock()
	b.stop()
}

// Restart stops the broker if it is running and starts a fresh mochi
// server, listening again on the same TCP address if it had one (retrying
// for a few seconds while the port is busy). All session state is lost,
// unless WithDataDir keeps it: then the new server reads it back.
// Options, the Refuse setting and Dropped are kept.
func (b *Broker) Restart() error {
	b.life.Lock()
	defer b.life.Unlock()

	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	b.stop()

	b.mu.Lock()
	addr := b.addr
	b.mu.Unlock()

	var ln net.Listener
	if addr != "" {
		var err error
		if ln, err = listenRetry(addr, rebindTimeout); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
	}
	srv, err := b.newServer()
	if err != nil {
		if ln != nil {
			_ = ln.Close()
		}
		return fmt.Errorf("restart: %w", err)
	}
	b.mu.Lock()
	b.srv = srv
	b.running = true
	b.mu.Unlock()
	if ln != nil {
		b.serveTCP(b.wrap(ln))
	}
	return nil
}

// Bounce simulates a broker restart with persistence: it closes the TCP
// listener and every connection (pipes too) at once, without DISCONNECT,
// stays unreachable for down, then listens again on the same address. The
// mochi server keeps running: sessions, subscriptions, retained messages
// and messages queued for disconnected clients survive.
func (b *Broker) Bounce(down time.Duration) error {
	b.life.Lock()
	defer b.life.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if !b.running {
		b.mu.Unlock()
		return ErrStopped
	}
	ln, addr := b.ln, b.addr
	b.ln = nil
	conns := b.connsLocked()
	b.mu.Unlock()
	if ln == nil {
		return errors.New("bounce: not listening on TCP")
	}
	_ = ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	time.Sleep(down)
	nl, err := listenRetry(addr, rebindTimeout)
	if err != nil {
		return fmt.Errorf("bounce: %w", err)
	}
	b.serveTCP(b.wrap(nl))
	return nil
}

// Shutdown is a graceful Close: every connected client first gets a
// DISCONNECT with reason code 0x8B (server shutting down).
func (b *Broker) Shutdown() {
	if srv, err := b.server(); err == nil {
		for _, cl := range srv.Clients.GetAll() {
			if !cl.Net.Inline && !cl.Closed() {
				_ = srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	}
	b.Close()
}

// Close stops the broker for good and waits for all its goroutines to
// exit. It is idempotent.
func (b *Broker) Close() {
	b.life.Lock()
	defer b.life.Unlock()
	b.stop()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// server returns the running mochi server.
func (b *Broker) server() (*mqtt.Server, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, ErrClosed
	case !b.running:
		return nil, ErrStopped
	}
	return b.srv, nil
}

// newServer creates and starts a mochi server with the broker's hooks.
func (b *Broker) newServer() (*mqtt.Server, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = b.cfg.maxPacketSize
	if b.cfg.writesPending > 0 {
		caps.MaximumClientWritesPending = b.cfg.writesPending
	}
	logger := b.cfg.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sysInterval := b.cfg.sysInterval
	if sysInterval <= 0 {
		sysInterval = 86400
	}
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 logger,
		InlineClient:           true, // for Publish and Subscribe
		SysTopicResendInterval: sysInterval,
	})
	hooks := []mqtt.Hook{&control{b: b, srv: srv}}
	if b.cfg.openStore != nil {
		st, err := b.cfg.openStore()
		if err != nil {
			_ = srv.Close()
			return nil, err
		}
		hooks = append(hooks, &storeHook{st: st, log: logger})
	}
	if b.cfg.hooks != nil {
		hooks = append(hooks, b.cfg.hooks()...)
	}
	for _, h := range hooks {
		if err := srv.AddHook(h, nil); err != nil {
			_ = srv.Close()
			return nil, err
		}
	}
	// Serve starts no listener (none is registered: the broker hands
	// connections to EstablishConnection itself) but starts mochi's
	// housekeeping event loop, which Close ends.
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, err
	}
	return srv, nil
}

// serveTCP records ln as the current listener and accepts connections on it.
func (b *Broker) serveTCP(ln net.Listener) {
	b.mu.Lock()
	b.ln = ln
	srv := b.srv
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by stop or Bounce
			}
			b.serveConn(srv, tcpListenerID, c)
		}
	}()
}

// serveConn hands the server end c of a connection to srv on its own
// goroutine, or closes it if srv is no longer the running server.
func (b *Broker) serveConn(srv *mqtt.Server, listenerID string, c net.Conn) {
	b.mu.Lock()
	if !b.running || b.srv != srv {
		b.mu.Unlock()
		_ = c.Close()
		return
	}
	b.conns[c] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()

	go func() {
		defer b.wg.Done()
		_ = srv.EstablishConnection(listenerID, c)
		_ = c.Close()
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
	}()
}

// connsLocked returns the open connections; the caller holds b.mu.
func (b *Broker) connsLocked() []net.Conn {
	conns := make([]net.Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	return conns
}

// stop shuts the running server down. The caller holds b.life.
func (b *Broker) stop() {
	b.mu.Lock()
	if !b.running {
		b.mu.Unlock()
		return
	}
	b.running = false
	srv, ln := b.srv, b.ln
	b.ln = nil
	conns := b.connsLocked()
	b.mu.Unlock()

	if ln != nil {
		_ = ln.Close()
	}
	// mochi's Close waits for every connection it was handed, including
	// those that never sent CONNECT and so have no read deadline: closing
	// them all here first makes every EstablishConnection return.
	for _, c := range conns {
		_ = c.Close()
	}
	b.wg.Wait()
	b.dropped.Add(atomic.LoadInt64(&srv.Info.MessagesDropped))
	_ = srv.Close() // no connection is left; this ends the event loop
}

// wrap adds the configured TLS and WebSocket layers to a TCP listener.
func (b *Broker) wrap(ln net.Listener) net.Listener {
	if b.cfg.tls != nil {
		ln = tls.NewListener(ln, b.cfg.tls)
	}
	if b.cfg.websocket {
		ln = newWSListener(ln)
	}
	return ln
}
