// Package faultproxy is a TCP proxy that simulates network faults between
// an MQTT client and its broker. It is the core of mqttkeeptest.Proxy and
// of "mqttkeep demo", so it must never import package testing.
//
// A Proxy listens on 127.0.0.1 (an ephemeral port) and forwards every accepted
// connection to a fixed target address. Its mode can be switched at any time
// and any number of times; a mode change applies at once to every existing
// connection and to every connection accepted later:
//
//   - Pass forwards bytes in both directions (the default).
//   - Blackhole silently drops every byte: both sockets stay open, the proxy
//     keeps reading (so the peers' writes succeed) and discards what it reads.
//     No FIN and no RST is sent.
//   - Stall stops reading from both sides, so the peers' socket buffers fill
//     up and their writes eventually block.
//   - Delay forwards with an added one-way latency in each direction.
//
// Independently of the mode, Reset aborts all current connections with a TCP
// RST, CloseAll closes them with a normal FIN, and Refuse makes the proxy
// reset newly accepted connections, as if the broker were down.
//
// Bytes are handled according to the mode in effect when the proxy processes
// them: bytes dropped during Blackhole stay dropped, and forwarding of new
// bytes resumes when the mode changes back to Pass or Delay, like a real link
// coming back. An end of stream (FIN) or reset (RST) received from one side
// while the link is blackholed or stalled is held back and passed on once the
// mode returns to Pass or Delay.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

type mode int

const (
	modePass mode = iota
	modeBlackhole
	modeStall
	modeDelay
)

const (
	// readBufSize is the size of one read from a socket.
	readBufSize = 32 << 10
	// maxQueued bounds the bytes buffered per direction (in Delay mode, or
	// while draining a delay queue). The reader stops reading while the queue
	// holds at least this many bytes.
	maxQueued = 4 << 20
)

// aLongTimeAgo is a read deadline in the past, used to interrupt blocked reads
// when the proxy enters Stall mode.
var aLongTimeAgo = time.Unix(1, 0)

// Proxy is a fault-injecting TCP proxy. Create one with New. All
// methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	ctx    context.Context // cancelled by Close; bounds dials to the target
	cancel context.CancelFunc

	accepted atomic.Int64

	mu      sync.Mutex
	mode    mode
	delay   time.Duration
	changed chan struct{} // closed and replaced on every mode change
	refuse  bool
	closed  bool
	conns   map[*conn]struct{}

	closeOnce sync.Once
	wg        sync.WaitGroup // every goroutine started by the proxy
}

// New starts a proxy listening on 127.0.0.1 (ephemeral port) that forwards
// every accepted connection to target (a "host:port" address). The proxy
// starts in Pass mode. Call Close to stop it.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target:  target,
		ln:      ln,
		ctx:     ctx,
		cancel:  cancel,
		changed: make(chan struct{}),
		conns:   make(map[*conn]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the proxy's listening address, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns "mqtt://" + Addr().
func (p *Proxy) URL() string { return "mqtt://" + p.Addr() }

// Pass makes the proxy forward bytes in both directions without added
// latency. This is the default mode. Switching from Stall resumes reading;
// switching from Blackhole resumes forwarding of bytes read from now on.
func (p *Proxy) Pass() { p.setMode(modePass, 0) }

// Blackhole simulates a silent link death. Both sockets of every connection
// stay open; the proxy keeps reading from both sides and discards every byte,
// so the peers' writes succeed but nothing arrives. No FIN or RST is sent:
// an end of stream or reset received from one side is held back until the
// mode changes to Pass or Delay. Bytes still waiting in a Delay queue are
// dropped too.
//
// Connections accepted while in Blackhole mode are accepted and connected to
// the target as usual, but nothing is forwarded on them until the mode
// changes (so the broker sees a silent connection).
func (p *Proxy) Blackhole() { p.setMode(modeBlackhole, 0) }

// Stall makes the proxy stop reading from both sides of every connection, so
// the peers' socket buffers fill and their writes eventually block, modelling
// a receiver that stopped reading. Sockets stay open. Bytes already read (for
// example, queued by Delay) are still delivered. New connections are
// accepted and connected to the target but not read from. Any other mode
// resumes reading.
func (p *Proxy) Stall() { p.setMode(modeStall, 0) }

// Delay makes the proxy forward bytes with an added one-way latency d in each
// direction (so an echo round trip takes at least 2*d longer). Byte order is
// preserved, and throughput is not serialized by the latency: each direction
// queues (deadline, chunk) pairs, up to 4 MiB, after which the proxy stops
// reading from that side until the queue drains. A negative d is treated as
// zero. Bytes already queued keep their deadline when the mode changes
// (except Blackhole, which drops them).
func (p *Proxy) Delay(d time.Duration) { p.setMode(modeDelay, max(d, 0)) }

// Reset aborts every current connection with a TCP RST on both sides (the
// sockets are closed with SO_LINGER 0). The mode is unchanged and applies to
// new connections.
func (p *Proxy) Reset() { p.closeConns(true) }

// CloseAll closes every current connection on both sides with a normal FIN.
// (As with any TCP close, the kernel sends an RST instead if unread data is
// still pending on a socket, e.g. in Stall mode.) The mode is unchanged.
func (p *Proxy) CloseAll() { p.closeConns(false) }

// Refuse controls whether new connections are refused. While on, every newly
// accepted connection is immediately reset (closed with SO_LINGER 0), which
// simulates a broker that is down while the proxy address stays the same: the
// listener stays open, so the client sees "connection reset by peer" (from
// its first read or write, or, if the reset wins the race with the end of
// the handshake, from the connect itself). Existing connections are not
// affected; use Reset for that.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Connections returns the number of connections accepted so far, including
// ones reset because of Refuse.
func (p *Proxy) Connections() int { return int(p.accepted.Load()) }

// Active returns the number of connections currently open through the
// proxy (accepted and not yet closed, reset or refused).
func (p *Proxy) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops listening, closes every connection (with a FIN) and returns
// only after every goroutine started by the proxy has ended. It is
// idempotent and safe to call concurrently.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		conns := p.snapshotLocked()
		p.mu.Unlock()
		_ = p.ln.Close()
		p.cancel()
		for _, c := range conns {
			c.shutdown(false)
		}
	})
	p.wg.Wait()
}

func (p *Proxy) setMode(m mode, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.delay = m, d
	close(p.changed)
	p.changed = make(chan struct{})
	if m == modeStall {
		// Interrupt reads that are already blocked. Readers clear the
		// deadline under p.mu only when the mode is not Stall, so this
		// cannot be lost.
		for c := range p.conns {
			_ = c.client.SetReadDeadline(aLongTimeAgo)
			if c.upstream != nil {
				_ = c.upstream.SetReadDeadline(aLongTimeAgo)
			}
		}
	}
}

// state returns the current mode, its delay and the channel closed on the
// next mode change.
func (p *Proxy) state() (mode, time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.delay, p.changed
}

func (p *Proxy) snapshotLocked() []*conn {
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	return conns
}

func (p *Proxy) closeConns(rst bool) {
	p.mu.Lock()
	conns := p.snapshotLocked()
	p.mu.Unlock()
	for _, c := range conns {
		c.shutdown(rst)
	}
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
				return
			}
			// Transient error (e.g. too many open files): back off
			// instead of spinning.
			select {
			case <-time.After(10 * time.Millisecond):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		p.accepted.Add(1)
		tc := nc.(*net.TCPConn)

		p.mu.Lock()
		if p.closed || p.refuse {
			p.mu.Unlock()
			_ = tc.SetLinger(0)
			_ = tc.Close()
			continue
		}
		ctx, cancel := context.WithCancel(p.ctx)
		c := &conn{p: p, client: tc, dialCtx: ctx, cancelDial: cancel, done: make(chan struct{})}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go c.run()
	}
}

// conn is one proxied connection: the accepted client socket and the socket
// dialed to the target.
type conn struct {
	p          *Proxy
	client     *net.TCPConn
	dialCtx    context.Context
	cancelDial context.CancelFunc
	done       chan struct{} // closed by shutdown
	ended      atomic.Int32  // directions that delivered their end of stream

	// Guarded by p.mu.
	upstream *net.TCPConn
	closed   bool
}

func (c *conn) run() {
	defer c.p.wg.Done()
	var d net.Dialer
	nc, err := d.DialContext(c.dialCtx, "tcp", c.p.target)
	c.cancelDial()
	if err != nil {
		// The target is unreachable: the closest a proxy that already
		// accepted can get to "connection refused" is a reset.
		c.shutdown(true)
		return
	}
	up := nc.(*net.TCPConn)

	p := c.p
	p.mu.Lock()
	if c.closed {
		p.mu.Unlock()
		_ = up.SetLinger(0)
		_ = up.Close()
		return
	}
	c.upstream = up
	p.wg.Add(4)
	p.mu.Unlock()

	for _, pp := range []*pipe{newPipe(c, c.client, up), newPipe(c, up, c.client)} {
		go pp.readLoop()
		go pp.writeLoop()
	}
}

// shutdown closes both sockets, with an RST if rst is set and a FIN
// otherwise, and wakes every goroutine of the connection. Only the first
// call has an effect.
func (c *conn) shutdown(rst bool) {
	p := c.p
	p.mu.Lock()
	if c.closed {
		p.mu.Unlock()
		return
	}
	c.closed = true
	delete(p.conns, c)
	up := c.upstream
	p.mu.Unlock()

	c.cancelDial()
	close(c.done)
	for _, s := range []*net.TCPConn{c.client, up} {
		if s == nil {
			continue
		}
		if rst {
			_ = s.SetLinger(0)
		}
		_ = s.Close()
	}
}

func (c *conn) isDone() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
