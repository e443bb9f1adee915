// Package faultproxy is a TCP proxy on 127.0.0.1 that can silently
// blackhole every connection through it: both sockets stay open, bytes
// from either side are read and dropped, and no FIN or RST is passed on,
// as when a Wi-Fi handover, a NAT timeout or a pulled cable kills a link.
//
// Adapted from github.com/mqttkeep/mqttkeep/internal/faultproxy (the root
// module's test helper, which another module cannot import), trimmed to
// the two modes the benchmarks use: Pass and Blackhole.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy forwards every accepted connection to a target address. Its methods
// are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener

	mu        sync.Mutex
	blackhole bool
	changed   chan struct{} // closed and replaced on every mode change
	closed    bool
	conns     map[*conn]struct{}
	wg        sync.WaitGroup
}

// New starts a proxy on 127.0.0.1 (random port) to target ("host:port"),
// in Pass mode.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, changed: make(chan struct{}), conns: make(map[*conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Pass forwards bytes again (bytes dropped meanwhile stay dropped) and lets
// a held-back end of stream through.
func (p *Proxy) Pass() { p.set(false) }

// Blackhole drops every byte in both directions from now on, keeping both
// sockets open; an end of stream or reset from either side is held back
// until Pass.
func (p *Proxy) Blackhole() { p.set(true) }

func (p *Proxy) set(blackhole bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackhole = blackhole
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Proxy) mode() (blackhole bool, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blackhole, p.changed
}

// Close stops listening, closes every connection and waits for every
// goroutine of the proxy. Idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, c := range conns {
		c.shutdown()
	}
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = nc.(*net.TCPConn).SetLinger(0) // target down: reset
			_ = nc.Close()
			continue
		}
		c := &conn{p: p, client: nc.(*net.TCPConn), upstream: up.(*net.TCPConn), done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.client.Close()
			_ = c.upstream.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go c.pump(c.client, c.upstream)
		go c.pump(c.upstream, c.client)
	}
}

// conn is one proxied connection.
type conn struct {
	p                *Proxy
	client, upstream *net.TCPConn
	once             sync.Once
	done             chan struct{}
	ended            atomic.Int32 // directions that reached end of stream
}

func (c *conn) shutdown() {
	c.once.Do(func() {
		close(c.done)
		_ = c.client.Close()
		_ = c.upstream.Close()
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	})
}

// pump copies src to dst, dropping bytes while blackholed.
func (c *conn) pump(src, dst *net.TCPConn) {
	defer c.p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if bh, _ := c.p.mode(); !bh {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					c.shutdown()
					return
				}
			}
		}
		if err != nil {
			// Hold the end of stream back while blackholed.
			for {
				bh, changed := c.p.mode()
				if !bh {
					break
				}
				select {
				case <-changed:
				case <-c.done:
					return
				}
			}
			if errors.Is(err, io.EOF) {
				_ = dst.CloseWrite()
				if c.ended.Add(1) < 2 {
					return // the other direction is still open
				}
			}
			c.shutdown()
			return
		}
	}
}
