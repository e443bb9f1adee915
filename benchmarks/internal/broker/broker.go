// Package broker runs an embedded mochi-mqtt broker on 127.0.0.1 for the
// benchmarks: every client is allowed in, and the broker can be stopped and
// restarted on the same port (a restart without persistence: every session
// is lost).
//
// Adapted from github.com/mqttkeep/mqttkeep/internal/testbroker (the root
// module's test helper, which another module cannot import), trimmed to
// what the benchmarks need: TCP only, allow-all auth, Stop/Restart on the
// same port, inline Publish and Subscribe.
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Version is the mochi-mqtt server version compiled in.
const Version = mqtt.Version

// rebindTimeout bounds how long Restart retries binding the remembered port.
const rebindTimeout = 5 * time.Second

// ErrStopped is returned by operations that need a running broker.
var ErrStopped = errors.New("broker: stopped")

// Options tune the broker.
type Options struct {
	// WritesPending is how many outbound messages mochi may queue per
	// client before it drops QoS 0 messages to it (mochi's
	// MaximumClientWritesPending). 0 keeps mochi's default (8,192).
	WritesPending int32
}

// Broker is an embedded MQTT broker listening on 127.0.0.1. Its methods are
// safe for concurrent use.
type Broker struct {
	opts Options
	life sync.Mutex // serialises Stop, Restart and Close

	mu      sync.Mutex
	srv     *mqtt.Server
	ln      net.Listener
	addr    string
	conns   map[net.Conn]struct{}
	running bool
	wg      sync.WaitGroup
}

// Start starts a broker on 127.0.0.1 with a random port.
func Start(opts Options) (*Broker, error) {
	b := &Broker{opts: opts, conns: make(map[net.Conn]struct{})}
	srv, err := b.newServer()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker: listen: %w", err)
	}
	b.srv, b.running, b.addr = srv, true, ln.Addr().String()
	b.serve(ln)
	return b, nil
}

// Addr returns "127.0.0.1:PORT"; it stays the same across Stop and Restart.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// URL returns "mqtt://" + Addr().
func (b *Broker) URL() string { return "mqtt://" + b.Addr() }

// Stop simulates a crash: the listener and every connection are closed
// abruptly (no DISCONNECT), then the broker shuts down. The port is kept
// for Restart.
func (b *Broker) Stop() {
	b.life.Lock()
	defer b.life.Unlock()
	b.stop()
}

// Restart starts a fresh broker (no session survives) on the same port,
// stopping the running one first if needed.
func (b *Broker) Restart() error {
	b.life.Lock()
	defer b.life.Unlock()
	b.stop()
	ln, err := listenRetry(b.Addr(), rebindTimeout)
	if err != nil {
		return fmt.Errorf("broker: restart: %w", err)
	}
	srv, err := b.newServer()
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("broker: restart: %w", err)
	}
	b.mu.Lock()
	b.srv, b.running = srv, true
	b.mu.Unlock()
	b.serve(ln)
	return nil
}

// Close stops the broker and waits for its goroutines. Idempotent.
func (b *Broker) Close() {
	b.life.Lock()
	defer b.life.Unlock()
	b.stop()
}

// Publish sends a message from the broker itself (mochi's inline client).
func (b *Broker) Publish(topic string, payload []byte, qos byte) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	return srv.Publish(topic, payload, false, qos)
}

// Subscribe adds an inline subscription: handler runs synchronously on the
// goroutine of the connection that published the message. It lasts until
// the broker stops.
func (b *Broker) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	srv, err := b.server()
	if err != nil {
		return err
	}
	return srv.Subscribe(filter, 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		handler(pk.TopicName, pk.Payload)
	})
}

// Dropped returns how many messages the running broker dropped because a
// client's outbound queue was full.
func (b *Broker) Dropped() int64 {
	srv, err := b.server()
	if err != nil {
		return 0
	}
	return atomic.LoadInt64(&srv.Info.MessagesDropped)
}

func (b *Broker) server() (*mqtt.Server, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.running {
		return nil, ErrStopped
	}
	return b.srv, nil
}

func (b *Broker) newServer() (*mqtt.Server, error) {
	caps := mqtt.NewDefaultServerCapabilities()
	if b.opts.WritesPending > 0 {
		caps.MaximumClientWritesPending = b.opts.WritesPending
	}
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 slog.New(slog.DiscardHandler),
		InlineClient:           true,
		SysTopicResendInterval: 86400,
	})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		return nil, err
	}
	// No listener is registered: connections are handed over by serve.
	// Serve starts mochi's housekeeping loop, which Close ends.
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, err
	}
	return srv, nil
}

func (b *Broker) serve(ln net.Listener) {
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
			b.handle(srv, c)
		}
	}()
}

func (b *Broker) handle(srv *mqtt.Server, c net.Conn) {
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
		_ = srv.EstablishConnection("tcp", c)
		_ = c.Close()
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
	}()
}

// stop shuts the running server down; the caller holds b.life.
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
	for _, c := range conns {
		_ = c.Close()
	}
	b.wg.Wait()
	_ = srv.Close()
}

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

// allowAll lets every client connect, publish and subscribe (mochi refuses
// everything unless a hook allows it).
type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "allow-all" }

func (*allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }
