package mqttkeeptest

import (
	"fmt"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/faultproxy"
)

// Proxy is a TCP proxy that injects network faults. It listens on
// 127.0.0.1 with a free port and forwards every connection it accepts to a
// fixed target (a broker's [Broker.Addr], or any TCP server), dialling the
// target once per accepted connection.
//
// The proxy is in one mode at a time, [Proxy.Pass] at first. A mode change
// applies at once to every open connection and to every later one, and can
// be made any number of times. The bytes the proxy reads are handled by the
// mode in effect when it reads them: bytes dropped in Blackhole stay
// dropped, like a real link that comes back. An end of stream (FIN) or
// reset (RST) from one side while the link is blackholed or stalled is held
// back and passed on when the mode returns to Pass or Delay.
//
// Its methods are safe for concurrent use.
type Proxy struct {
	p *faultproxy.Proxy
}

// StartProxy starts a proxy to target ("host:port"), in Pass mode. The
// caller must call [Proxy.Close]; in a test, [NewProxy] does that.
func StartProxy(target string) (*Proxy, error) {
	p, err := faultproxy.New(target)
	if err != nil {
		return nil, fmt.Errorf("mqttkeeptest: proxy to %s: %w", target, err)
	}
	return &Proxy{p: p}, nil
}

// Addr returns the proxy's address, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.p.Addr() }

// URL returns "mqtt://" + Addr(). For a TLS or WebSocket broker behind
// the proxy, put Addr into a URL of that scheme instead (with TLS, the
// client must then accept the broker's certificate for 127.0.0.1).
func (p *Proxy) URL() string { return p.p.URL() }

// Pass makes the proxy forward bytes both ways without added latency: the
// default mode. From Stall, reading resumes; from Blackhole, bytes read
// from now on are forwarded.
func (p *Proxy) Pass() { p.p.Pass() }

// Blackhole simulates a silent link death, as when a NAT entry expires, a
// Wi-Fi access point goes away or a cable is pulled: both sockets of every
// connection stay open, and the proxy keeps reading both sides and drops
// every byte, so both peers' writes succeed but nothing arrives. No FIN and
// no RST is sent; a FIN or RST from either side is held back until the
// mode changes. Bytes still waiting in a Delay queue are dropped too. A
// connection accepted while blackholed is accepted and connected to the
// target as usual, and nothing passes (so the broker sees a silent
// connection). Only a client's own keep alive can tell that the link is
// dead.
func (p *Proxy) Blackhole() { p.p.Blackhole() }

// Stall stops reading from both sides of every connection, so the peers'
// socket buffers fill up and their writes eventually block, as with a
// receiver that stopped reading. Sockets stay open. Bytes already read
// (queued by Delay) are still delivered. New connections are accepted and
// connected to the target but not read from. Any other mode resumes
// reading, and nothing is lost.
func (p *Proxy) Stall() { p.p.Stall() }

// Delay forwards bytes with an added one-way latency d in each direction
// (a round trip takes at least 2*d longer). Byte order is kept and
// throughput is not bound by the latency: each direction queues up to
// 4 MiB, after which the proxy stops reading that side until the queue
// drains. A negative d counts as zero. Bytes already queued keep their
// time when the mode changes (except to Blackhole, which drops them).
func (p *Proxy) Delay(d time.Duration) { p.p.Delay(d) }

// Reset aborts every open connection with a TCP RST to both sides (the
// client sees "connection reset by peer"). The mode is unchanged and
// applies to new connections.
func (p *Proxy) Reset() { p.p.Reset() }

// CloseAll closes every open connection on both sides with a normal FIN
// (the client reads EOF). As with any TCP close, the kernel sends an RST
// instead to a side whose data the proxy has not read yet (in Stall
// mode). The mode is unchanged.
func (p *Proxy) CloseAll() { p.p.CloseAll() }

// Refuse(true) makes the proxy reset every connection it accepts from now
// on, at once, as if the broker behind it were down while its address
// stays the same: the client sees "connection reset by peer" from its
// first read or write (or from the connect itself, if the reset wins the
// race with the end of the TCP handshake). Open connections are not
// affected (use [Proxy.Reset] for them). Refuse(false) accepts
// connections again.
func (p *Proxy) Refuse(on bool) { p.p.Refuse(on) }

// Connections returns how many connections the proxy has accepted, refused
// ones included.
func (p *Proxy) Connections() int { return p.p.Connections() }

// Active returns how many connections are open through the proxy (accepted
// and not yet closed, reset or refused).
func (p *Proxy) Active() int { return p.p.Active() }

// Close stops listening, closes every connection (with a FIN) and returns
// once every goroutine of the proxy has exited. It is idempotent; the mode
// methods do nothing afterwards.
func (p *Proxy) Close() { p.p.Close() }
