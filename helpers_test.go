package mqttkeep_test

import (
	"context"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/require"
)

// newClient creates a client for server and closes it at the end of the
// test.
func newClient(t *testing.T, opts ...mqttkeep.Option) *mqttkeep.Client {
	t.Helper()
	c, err := mqttkeep.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, c.Close(ctx))
	})
	return c
}

// connect connects c within a generous bound.
func connect(t *testing.T, c *mqttkeep.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Connect(ctx))
}

// pipeDialer dials the broker through an in-memory pipe, for tests inside
// a synctest bubble.
func pipeDialer(b *mqttkeeptest.Broker) mqttkeep.Option {
	return mqttkeep.WithDialer(func(context.Context, *url.URL) (net.Conn, error) {
		return b.Pipe(), nil
	})
}

// pipeLink is an in-memory link between a client and a broker pipe that
// can go silent like a dead Wi-Fi link: while blackholed, every byte in
// either direction is read and dropped, no end of stream is passed on,
// and the client's socket stays open. It works inside a synctest bubble.
type pipeLink struct {
	broker    *mqttkeeptest.Broker
	blackhole atomic.Bool
	wg        sync.WaitGroup
}

func (p *pipeLink) dialer() mqttkeep.Option {
	return mqttkeep.WithDialer(func(context.Context, *url.URL) (net.Conn, error) {
		return p.connect(), nil
	})
}

// connect returns the client end of a new relayed connection.
func (p *pipeLink) connect() net.Conn {
	client, mid := net.Pipe()
	upstream := p.broker.Pipe()
	p.wg.Add(2)
	go p.relay(upstream, mid)
	go p.relay(mid, upstream)
	return client
}

// relay copies src to dst until src fails. While blackholed the bytes are
// dropped and a failure of src is not passed on to dst; the relay reading
// the client's side always ends when the client closes its end.
func (p *pipeLink) relay(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.blackhole.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				_ = src.Close()
				return
			}
		}
		if err != nil {
			_ = src.Close()
			if !p.blackhole.Load() {
				_ = dst.Close()
			}
			return
		}
	}
}

// events records hook calls with their times.
type events struct {
	mu          sync.Mutex
	connects    []mqttkeep.ConnectEvent
	disconnects []mqttkeep.DisconnectEvent
	disconnAt   []time.Time
	order       []string // "connect" and "disconnect", as delivered
	lost        chan mqttkeep.DisconnectEvent
}

func newEvents() *events {
	return &events{lost: make(chan mqttkeep.DisconnectEvent, 16)}
}

func (e *events) options() []mqttkeep.Option {
	return []mqttkeep.Option{
		mqttkeep.HooksForTest(func(ev mqttkeep.ConnectEvent) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.connects = append(e.connects, ev)
			e.order = append(e.order, "connect")
		}, nil, nil, nil),
		mqttkeep.HooksForTest(nil, func(ev mqttkeep.DisconnectEvent) {
			e.mu.Lock()
			e.disconnects = append(e.disconnects, ev)
			e.disconnAt = append(e.disconnAt, time.Now())
			e.order = append(e.order, "disconnect")
			e.mu.Unlock()
			select {
			case e.lost <- ev:
			default:
			}
		}, nil, nil),
	}
}

func (e *events) counts() (connects, disconnects int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.connects), len(e.disconnects)
}

// connectEvent waits (up to 10 s) for the i-th OnConnect event (from 0)
// and returns it; hooks run on their own goroutine, after Connect returns.
func (e *events) connectEvent(t *testing.T, i int) mqttkeep.ConnectEvent {
	t.Helper()
	return waitEvent(t, e, &e.connects, i, "OnConnect")
}

// disconnectEvent is connectEvent for OnDisconnect.
func (e *events) disconnectEvent(t *testing.T, i int) mqttkeep.DisconnectEvent {
	t.Helper()
	return waitEvent(t, e, &e.disconnects, i, "OnDisconnect")
}

// waitEvent waits (up to 10 s) until list, guarded by e.mu, has an i-th
// element, and returns it.
func waitEvent[E any](t *testing.T, e *events, list *[]E, i int, hook string) E {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		n := len(*list)
		if n > i {
			ev := (*list)[i]
			e.mu.Unlock()
			return ev
		}
		e.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%s event %d never came (%d so far)", hook, i, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// orderSnapshot returns the hook calls so far, in order.
func (e *events) orderSnapshot() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.order...)
}

// silentListener accepts TCP connections on 127.0.0.1 and never writes a
// byte (a broker that hangs): it returns the address. Connections are
// closed when the test ends.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}
