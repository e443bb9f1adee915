// Package testbroker runs an embedded MQTT v5 broker (mochi-mqtt) for tests.
//
// A Broker can be reached over TCP on 127.0.0.1 (see [Start] and
// [Broker.ListenTCP]) or over in-memory pipes (see [Broker.Pipe]). A broker
// created with [New] and used only through pipes opens no socket and starts
// no goroutine outside the caller's control, so it can live inside a
// testing/synctest bubble; it must then be closed inside that bubble.
//
// The broker records the packets it reads from clients (see
// [Broker.Connects], [Broker.PingTimes], [Broker.Packets]) and the
// connections it finished with ([Broker.Disconnects]), can refuse
// connections with a chosen CONNACK reason code (see [Broker.Refuse]), and can
// be stopped and restarted on the same port to simulate a broker restart
// without persistence (see [Broker.Stop] and [Broker.Restart]).
package testbroker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mqttkeep/mqttkeep/internal/wsconn"
)

// Listener IDs given to mochi for the two kinds of connections.
const (
	tcpListenerID  = "tcp"
	pipeListenerID = "pipe"
)

// rebindTimeout bounds how long Restart retries binding the remembered port.
const rebindTimeout = 5 * time.Second

// ErrStopped is returned by operations that need a running broker.
var ErrStopped = errors.New("testbroker: broker is stopped")

// ErrClosed is returned by operations on a closed broker.
var ErrClosed = errors.New("testbroker: broker is closed")

// Option configures a Broker.
type Option func(*config)

type config struct {
	serverKeepAlive    uint16
	serverKeepAliveSet bool
	maxPacketSize      uint32
	tls                *tls.Config
	websocket          bool
}

// WithTLS makes the TCP listener (see [Broker.ListenTCP]) speak TLS with
// cfg; URL then starts with mqtts:// (or wss:// with [WithWebSocket]).
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) { c.tls = cfg }
}

// WithWebSocket makes the TCP listener carry MQTT over WebSocket (the
// "mqtt" subprotocol, any path); URL then starts with ws:// (or wss://
// with [WithTLS]) and ends with /mqtt.
func WithWebSocket() Option {
	return func(c *config) { c.websocket = true }
}

// WithServerKeepAlive makes the broker override the client's keep alive: every
// successful CONNACK carries the Server Keep Alive property set to seconds, and
// the broker enforces that value (it closes a connection that stays silent for
// 1.5 times the keep alive). Zero is valid and disables keep alive.
func WithServerKeepAlive(seconds uint16) Option {
	return func(c *config) {
		c.serverKeepAlive = seconds
		c.serverKeepAliveSet = true
	}
}

// WithMaximumPacketSize makes the broker announce Maximum Packet Size = n
// bytes in every successful CONNACK and drop (close, without DISCONNECT) any
// connection that sends a larger packet. Zero means no limit.
func WithMaximumPacketSize(n uint32) Option {
	return func(c *config) { c.maxPacketSize = n }
}

// Broker is an embedded MQTT broker for tests. Its methods are safe for
// concurrent use.
type Broker struct {
	cfg    config
	refuse atomic.Uint32          // CONNACK reason code for refused connections, 0 to accept
	refRef atomic.Pointer[string] // Server Reference sent with a refusal, if any
	rec    recorder

	life sync.Mutex // serialises ListenTCP, Stop, Restart and Close

	mu      sync.Mutex // guards the fields below
	srv     *mqtt.Server
	ln      net.Listener
	addr    string // "127.0.0.1:PORT" once ListenTCP succeeded; kept across Stop
	conns   map[net.Conn]struct{}
	running bool
	closed  bool
	wg      sync.WaitGroup // accept loop and connection goroutines
}

// Start starts a broker listening on 127.0.0.1 with a random port and closes
// it when the test ends. It fails the test if the broker cannot start.
func Start(tb testing.TB, opts ...Option) *Broker {
	tb.Helper()
	b, err := New(opts...)
	if err != nil {
		tb.Fatalf("testbroker: %v", err)
	}
	tb.Cleanup(b.Close)
	if err := b.ListenTCP(); err != nil {
		tb.Fatalf("testbroker: %v", err)
	}
	return b
}

// New starts a broker that accepts connections only through [Broker.Pipe]
// until [Broker.ListenTCP] is called. The caller must call [Broker.Close].
func New(opts ...Option) (*Broker, error) {
	b := &Broker{conns: make(map[net.Conn]struct{})}
	for _, o := range opts {
		o(&b.cfg)
	}
	b.rec.init()
	srv, err := b.newServer()
	if err != nil {
		return nil, err
	}
	b.srv = srv
	b.running = true
	return b, nil
}

// ListenTCP makes the broker listen on 127.0.0.1 with a random port, which
// [Broker.Addr] reports and [Broker.Restart] reuses. It may be called once.
func (b *Broker) ListenTCP() error {
	b.life.Lock()
	defer b.life.Unlock()

	b.mu.Lock()
	closed, running, addr := b.closed, b.running, b.addr
	b.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case !running:
		return ErrStopped
	case addr != "":
		return errors.New("testbroker: already listening on TCP")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	b.mu.Lock()
	b.addr = ln.Addr().String()
	b.mu.Unlock()
	b.serveTCP(b.wrap(ln))
	return nil
}

// Addr returns the broker's TCP address "127.0.0.1:PORT", or "" if it has no
// TCP listener. It stays the same across Stop and Restart.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// URL returns the broker's TCP address as "mqtt://127.0.0.1:PORT", or "" if it
// has no TCP listener.
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

// Pipe returns the client end of a new in-memory connection to the broker
// (see [net.Pipe]). If the broker is stopped or closed, the returned
// connection is already closed by the broker: reads return io.EOF and writes
// fail.
func (b *Broker) Pipe() net.Conn {
	client, server := net.Pipe()
	b.mu.Lock()
	srv := b.srv
	running := b.running
	b.mu.Unlock()
	if !running {
		_ = server.Close()
		return client
	}
	b.serveConn(srv, pipeListenerID, server)
	return client
}

// Stop simulates a broker crash: it closes the TCP listener and abruptly
// closes every client connection (no DISCONNECT is sent, clients see EOF or a
// reset), then shuts the broker down. The TCP port is remembered for
// [Broker.Restart]. Stop does nothing if the broker is already stopped.
func (b *Broker) Stop() {
	b.life.Lock()
	defer b.life.Unlock()
	b.stop()
}

// Restart stops the broker if it is running and starts a fresh one, listening
// again on the same TCP port if it had one (retrying for a few seconds while
// the port is busy). All session state (subscriptions, retained and in-flight
// messages) is lost, as after a restart without persistence. Observations,
// options and the Refuse setting are kept.
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
			return fmt.Errorf("testbroker: restart: %w", err)
		}
	}
	srv, err := b.newServer()
	if err != nil {
		if ln != nil {
			_ = ln.Close()
		}
		return fmt.Errorf("testbroker: restart: %w", err)
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

// Close stops the broker for good and waits for all its goroutines to exit.
// It is idempotent.
func (b *Broker) Close() {
	b.life.Lock()
	defer b.life.Unlock()
	b.stop()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// Bounce simulates a broker restart WITH persistence: it closes the TCP
// listener and every connection at once (clients see EOF or a reset),
// stays unreachable for down, then listens again on the same port. Unlike
// Stop/Restart the broker keeps its state: sessions, subscriptions,
// retained messages and QoS 1/2 messages queued for disconnected clients.
func (b *Broker) Bounce(down time.Duration) error {
	b.life.Lock()
	defer b.life.Unlock()
	b.mu.Lock()
	if b.closed || !b.running {
		b.mu.Unlock()
		return ErrStopped
	}
	ln, addr := b.ln, b.addr
	b.ln = nil
	conns := make([]net.Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	if ln == nil {
		return errors.New("testbroker: bounce: not listening on TCP")
	}
	_ = ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	time.Sleep(down)
	nl, err := listenRetry(addr, rebindTimeout)
	if err != nil {
		return fmt.Errorf("testbroker: bounce: %w", err)
	}
	b.serveTCP(b.wrap(nl))
	return nil
}

// Refuse makes the broker refuse every following CONNECT with a CONNACK
// carrying the MQTT v5 reason code code (for example 0x86 bad user name or
// password, 0x87 not authorized, 0x88 server unavailable, 0x89 server busy),
// after which it closes the connection. Refuse(0) accepts connections again.
// It panics if code is between 0x01 and 0x7F, which are not failure codes.
func (b *Broker) Refuse(code byte) {
	if code != 0 && code < 0x80 {
		panic(fmt.Sprintf("testbroker: Refuse(%#x): not a CONNACK failure code", code))
	}
	b.refRef.Store(nil)
	b.refuse.Store(uint32(code))
}

// Redirect makes the broker refuse every following CONNECT with a CONNACK
// carrying code (0x9C use another server, or 0x9D server moved) and the
// Server Reference property set to serverReference. Refuse(0) accepts
// connections again.
func (b *Broker) Redirect(code byte, serverReference string) {
	if code < 0x80 {
		panic(fmt.Sprintf("testbroker: Redirect(%#x): not a CONNACK failure code", code))
	}
	b.refRef.Store(&serverReference)
	b.refuse.Store(uint32(code))
}

// Publish sends a message from the broker itself to the clients subscribed to
// topic. The message is not retained; qos caps the QoS of the deliveries.
func (b *Broker) Publish(topic string, payload []byte, qos byte) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	return srv.Publish(topic, payload, false, qos)
}

// DisconnectClient sends a DISCONNECT with reasonCode to the connected client
// clientID and then closes its connection.
func (b *Broker) DisconnectClient(clientID string, reasonCode byte) error {
	return b.DisconnectClientTo(clientID, reasonCode, "")
}

// DisconnectClientTo is DisconnectClient with a Server Reference property
// (for 0x9C use another server, 0x9D server moved); an empty reference is
// left out.
func (b *Broker) DisconnectClientTo(clientID string, reasonCode byte, serverReference string) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	cl, ok := srv.Clients.Get(clientID)
	if !ok || cl.Closed() || cl.Net.Inline {
		return fmt.Errorf("testbroker: client %q is not connected", clientID)
	}
	code := reasonCodeFor(reasonCode)
	if serverReference == "" {
		err = srv.DisconnectClient(cl, code)
		if errors.Is(err, code) { // mochi returns a failure code itself after sending it
			return nil
		}
		return err
	}
	out := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Disconnect},
		ReasonCode:  code.Code,
		Properties:  packets.Properties{ServerReference: serverReference},
	}
	err = cl.WritePacket(out)
	cl.Stop(code)
	return err
}

// Payloads returns the payloads of every PUBLISH the broker read from
// clients on topic, in arrival order, duplicates included (across
// restarts too).
func (b *Broker) Payloads(topic string) [][]byte {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return append([][]byte(nil), b.rec.payloads[topic]...)
}

// SentTo returns the payloads of every PUBLISH the broker wrote to the
// client clientID, in order, re-sends included (across restarts too).
func (b *Broker) SentTo(clientID string) [][]byte {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return append([][]byte(nil), b.rec.sentTo[clientID]...)
}

// Connects returns how many CONNECT packets the broker has received,
// including refused ones.
func (b *Broker) Connects() int {
	return len(b.ConnectTimes())
}

// ConnectTimes returns the arrival times of all CONNECT packets, oldest first.
func (b *Broker) ConnectTimes() []time.Time {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return append([]time.Time(nil), b.rec.connects...)
}

// PingTimes returns the arrival times of the PINGREQ packets sent by the
// client with ID clientID, oldest first.
func (b *Broker) PingTimes(clientID string) []time.Time {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return append([]time.Time(nil), b.rec.pings[clientID]...)
}

// Packets returns how many packets of the MQTT control packet type
// packetType (1 CONNECT, 3 PUBLISH, 8 SUBSCRIBE, 12 PINGREQ, 14 DISCONNECT,
// ...) the broker has received from the client with ID clientID. A CONNECT
// with an empty client ID is counted under "".
func (b *Broker) Packets(clientID string, packetType byte) int {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return b.rec.counts[packetKey{clientID, packetType}]
}

// Disconnects returns how many accepted connections of the client with ID
// clientID the broker has finished with. mochi processes a connection's
// packets one after another, fanning a PUBLISH out to the subscribers
// before it reads the next packet, so once Disconnects has grown every
// packet that connection sent has been processed, even when the client
// already had its PUBACK (mochi writes it before forwarding) and left.
func (b *Broker) Disconnects(clientID string) int {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return b.rec.disconnects[clientID]
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

// newServer creates and starts a mochi server with the broker's hook.
func (b *Broker) newServer() (*mqtt.Server, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = b.cfg.maxPacketSize
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 slog.New(slog.DiscardHandler),
		InlineClient:           true,  // for Publish
		SysTopicResendInterval: 86400, // $SYS topics are of no use here
	})
	if err := srv.AddHook(&hook{b: b, srv: srv}, nil); err != nil {
		return nil, err
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
				return // closed by stop
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
	conns := make([]net.Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()

	if ln != nil {
		_ = ln.Close()
	}
	// Closing the connections ourselves covers those mochi does not track
	// (not yet past CONNECT) and makes every EstablishConnection return.
	for _, c := range conns {
		_ = c.Close()
	}
	b.wg.Wait()
	// No connection is left, so mochi's Close does not block; it ends the
	// event loop.
	_ = srv.Close()
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

// wsListener accepts MQTT-over-WebSocket connections: an HTTP server
// upgrades each request and hands the connection to Accept.
type wsListener struct {
	ln    net.Listener
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newWSListener(ln net.Listener) *wsListener {
	l := &wsListener{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	up := websocket.Upgrader{
		Subprotocols: []string{wsconn.Subprotocol},
		CheckOrigin:  func(*http.Request) bool { return true },
	}
	l.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			select {
			case l.conns <- wsconn.New(ws):
			case <-l.done:
				_ = ws.NetConn().Close()
			}
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		_ = l.srv.Serve(ln)
	}()
	return l
}

func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *wsListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		_ = l.srv.Close()
		l.wg.Wait()
	})
	return nil
}

func (l *wsListener) Addr() net.Addr { return l.ln.Addr() }

// listenRetry binds addr, retrying until timeout while the port is busy.
func listenRetry(addr string, timeout time.Duration) (net.Listener, error) {
	deadline := time.Now().Add(timeout)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hook is the mochi hook that records packets and applies Refuse and the
// options.
type hook struct {
	mqtt.HookBase
	b   *Broker
	srv *mqtt.Server
}

func (h *hook) ID() string { return "testbroker" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketRead, mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPacketSent, mqtt.OnDisconnect:
		return true
	case mqtt.OnPacketEncode:
		return h.b.cfg.maxPacketSize > 0
	}
	return false
}

// OnPacketRead runs for every packet read from a client, including the
// CONNECT, before the client is known by ID.
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.b.rec.record(cl.ID, pk)
	return pk, nil
}

// OnPacketSent records the payloads of PUBLISH packets written to clients.
func (h *hook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type == packets.Publish {
		h.b.rec.sent(cl.ID, pk.Payload)
	}
}

// OnDisconnect runs when mochi has stopped reading an accepted
// connection: after the last packet it read was processed.
func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.b.rec.mu.Lock()
	defer h.b.rec.mu.Unlock()
	h.b.rec.disconnects[cl.ID]++
}

// OnConnect runs after mochi validated a CONNECT and before it authenticates
// the client. An error returned here makes mochi close the connection without
// a CONNACK, so a refusal sends its CONNACK itself.
func (h *hook) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	if code := byte(h.b.refuse.Load()); code != 0 {
		rc := reasonCodeFor(code)
		var props *packets.Properties
		if ref := h.b.refRef.Load(); ref != nil {
			props = &packets.Properties{ServerReference: *ref}
		}
		_ = h.srv.SendConnack(cl, rc, false, props)
		return rc
	}
	if h.b.cfg.serverKeepAliveSet {
		// SendConnack announces the keep alive and mochi sets the
		// connection deadline from it.
		cl.State.ServerKeepalive = true
		cl.State.Keepalive = h.b.cfg.serverKeepAlive
	}
	return nil
}

// OnConnectAuthenticate lets every client in: mochi refuses all of them
// (0x86) unless a hook allows them.
func (h *hook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

// OnACLCheck allows every publish and subscription: mochi denies them unless
// a hook allows them.
func (h *hook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// OnPacketEncode adds Maximum Packet Size to successful CONNACKs, which mochi
// does not announce by itself.
func (h *hook) OnPacketEncode(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode < 0x80 {
		pk.Properties.MaximumPacketSize = h.b.cfg.maxPacketSize
	}
	return pk
}

type packetKey struct {
	clientID   string
	packetType byte
}

// recorder keeps what the broker observed; it survives Restart.
type recorder struct {
	mu       sync.Mutex
	connects []time.Time
	pings    map[string][]time.Time
	counts   map[packetKey]int
	payloads map[string][][]byte // PUBLISH payloads read, by topic
	sentTo   map[string][][]byte // PUBLISH payloads written, by client ID
	// disconnects counts the accepted connections mochi finished with, by
	// client ID.
	disconnects map[string]int
}

func (r *recorder) sent(clientID string, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sentTo[clientID] = append(r.sentTo[clientID], append([]byte(nil), payload...))
}

func (r *recorder) init() {
	r.pings = make(map[string][]time.Time)
	r.counts = make(map[packetKey]int)
	r.payloads = make(map[string][][]byte)
	r.sentTo = make(map[string][][]byte)
	r.disconnects = make(map[string]int)
}

func (r *recorder) record(clientID string, pk packets.Packet) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch pk.FixedHeader.Type {
	case packets.Connect:
		clientID = pk.Connect.ClientIdentifier // cl.ID is set only later
		r.connects = append(r.connects, now)
	case packets.Pingreq:
		r.pings[clientID] = append(r.pings[clientID], now)
	case packets.Publish:
		r.payloads[pk.TopicName] = append(r.payloads[pk.TopicName], append([]byte(nil), pk.Payload...))
	}
	r.counts[packetKey{clientID, pk.FixedHeader.Type}]++
}

// reasonCodes maps reason code bytes to mochi's codes, so that packets carry
// mochi's reason strings and v3 clients get mochi's v3 translations.
var reasonCodes = func() map[byte]packets.Code {
	m := make(map[byte]packets.Code)
	for _, c := range []packets.Code{
		packets.CodeDisconnect,
		packets.CodeDisconnectWillMessage,
		packets.ErrUnspecifiedError,
		packets.ErrMalformedPacket,
		packets.ErrProtocolViolation,
		packets.ErrImplementationSpecificError,
		packets.ErrUnsupportedProtocolVersion,
		packets.ErrClientIdentifierNotValid,
		packets.ErrBadUsernameOrPassword,
		packets.ErrNotAuthorized,
		packets.ErrServerUnavailable,
		packets.ErrServerBusy,
		packets.ErrBanned,
		packets.ErrServerShuttingDown,
		packets.ErrBadAuthenticationMethod,
		packets.ErrKeepAliveTimeout,
		packets.ErrSessionTakenOver,
		packets.ErrTopicFilterInvalid,
		packets.ErrTopicNameInvalid,
		packets.ErrReceiveMaximum,
		packets.ErrTopicAliasInvalid,
		packets.ErrPacketTooLarge,
		packets.ErrMessageRateTooHigh,
		packets.ErrQuotaExceeded,
		packets.ErrAdministrativeAction,
		packets.ErrPayloadFormatInvalid,
		packets.ErrRetainNotSupported,
		packets.ErrQosNotSupported,
		packets.ErrUseAnotherServer,
		packets.ErrServerMoved,
		packets.ErrSharedSubscriptionsNotSupported,
		packets.ErrConnectionRateExceeded,
		packets.ErrMaxConnectTime,
		packets.ErrSubscriptionIdentifiersNotSupported,
		packets.ErrWildcardSubscriptionsNotSupported,
	} {
		m[c.Code] = c
	}
	return m
}()

func reasonCodeFor(code byte) packets.Code {
	if c, ok := reasonCodes[code]; ok {
		return c
	}
	return packets.Code{Code: code, Reason: fmt.Sprintf("reason code %#x", code)}
}
