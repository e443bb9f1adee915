package mqttkeep

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mqttkeep/mqttkeep/internal/wsconn"
)

// pingreqPacket is a whole MQTT PINGREQ packet.
var pingreqPacket = []byte{0xC0, 0x00}

const (
	// readBufferSize is the read buffer per connection: paho reads the fixed
	// header byte by byte, so without it each packet costs several syscalls.
	readBufferSize = 4 << 10
	// maxCoalesce is the largest packet copied into one buffer to be sent
	// with a single write; larger ones go out with writev (net.Buffers).
	maxCoalesce = 64 << 10
	// maxKeptWriteBuffer caps the write buffer kept between packets.
	maxKeptWriteBuffer = 16 << 10
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
		ws, resp, err := wd.DialContext(ctx, u.String(), nil)
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

// conn is the transport under one paho.Client. paho writes each packet as
// Lock, several Writes (fixed header, variable header, payload), Unlock;
// conn gathers those pieces and sends the packet with one write call. It
// reads through a buffer, records when bytes were last sent and received
// for the keepalive scheduler, and counts traffic for Stats.
//
// Every write must go through Lock/Write/Unlock (paho's ControlPacket.WriteTo
// does this because conn implements sync.Locker).
type conn struct {
	net.Conn
	r     *bufio.Reader
	epoch time.Time // times below are durations since epoch (monotonic)
	stats *counters
	fail  func(error) // reports a broken connection; set before use

	lastSent atomic.Int64 // nanoseconds since epoch of the last completed write
	lastRecv atomic.Int64 // nanoseconds since epoch of the last read that returned data

	pingPending atomic.Bool // a PINGREQ waits for the write lock
	frames      framer      // used by Read only (paho's single reader)

	mu      sync.Mutex // held for one whole packet
	parts   [][]byte   // pieces of the packet being written, referenced not copied
	partLen int        // bytes in parts
	want    int        // total packet length once the fixed header is known, else -1
	wbuf    []byte     // coalescing buffer, reused
}

func newConn(nc net.Conn, stats *counters, maxIncoming int) *conn {
	if maxIncoming <= 0 {
		maxIncoming = maxPacketSize
	}
	c := &conn{Conn: nc, epoch: time.Now(), stats: stats, want: -1, fail: func(error) {}}
	c.frames.max = maxIncoming
	c.r = bufio.NewReaderSize(readRecorder{c}, readBufferSize)
	return c
}

// now returns the time since the connection was made.
func (c *conn) now() time.Duration { return time.Since(c.epoch) }

// lastReceived returns when bytes last arrived (the connection's start if
// none did).
func (c *conn) lastReceived() time.Time {
	return c.epoch.Add(time.Duration(c.lastRecv.Load()))
}

// readRecorder sits under the bufio.Reader so that lastRecv and the byte
// count follow real socket reads.
type readRecorder struct{ c *conn }

func (r readRecorder) Read(p []byte) (int, error) {
	n, err := r.c.Conn.Read(p)
	if n > 0 {
		r.c.lastRecv.Store(int64(r.c.now()))
		r.c.stats.bytesIn.Add(uint64(n))
	}
	if err != nil {
		r.c.fail(err)
	}
	return n, err
}

// Read reads through the buffer, checking each packet's announced length
// before paho sees it (paho allocates the whole packet up front).
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		if ferr := c.frames.feed(p[:n]); ferr != nil {
			c.fail(ferr)
			return 0, ferr
		}
	}
	return n, err
}

// maxPacketSize is the largest packet MQTT can encode: a 5-byte fixed
// header and a remaining length of 268,435,455 bytes.
const maxPacketSize = 5 + 268435455

// framer follows packet boundaries in the received stream and refuses a
// packet larger than max before its body is read.
type framer struct {
	max       int // largest whole packet accepted
	inHeader  bool
	vbiBytes  int // bytes of remaining length read so far
	remaining int // remaining length being decoded, or body bytes left
	mult      int
}

func (f *framer) feed(p []byte) error {
	for len(p) > 0 {
		switch {
		case f.remaining > 0 && !f.inHeader: // in a body: skip it in one go
			k := min(f.remaining, len(p))
			f.remaining -= k
			p = p[k:]
		case !f.inHeader: // first byte of a fixed header
			if p[0]>>4 == 0 {
				return fmt.Errorf("%w: packet type 0", errMalformed)
			}
			f.inHeader, f.vbiBytes, f.remaining, f.mult = true, 0, 0, 1
			p = p[1:]
		default: // a remaining-length byte
			b := p[0]
			p = p[1:]
			f.vbiBytes++
			f.remaining += int(b&0x7F) * f.mult
			f.mult *= 128
			if b&0x80 != 0 {
				if f.vbiBytes == 4 {
					return fmt.Errorf("%w: remaining length longer than 4 bytes", errMalformed)
				}
				continue
			}
			f.inHeader = false
			if total := 1 + f.vbiBytes + f.remaining; total > f.max {
				return fmt.Errorf("%w: broker sent a %d-byte packet, limit %d", ErrPacketTooLarge, total, f.max)
			}
		}
	}
	return nil
}

// errMalformed reports bytes from the broker that are not MQTT.
var errMalformed = errors.New("mqttkeep: malformed packet from broker")

// Lock starts a packet write.
func (c *conn) Lock() { c.mu.Lock() }

// Unlock ends a packet write, flushing whatever was not yet sent, and then
// delivers a PINGREQ that arrived while the lock was held.
func (c *conn) Unlock() {
	if c.partLen > 0 {
		_ = c.flush() // the error is reported through c.fail
	}
	c.mu.Unlock()
	c.deliverPendingPing()
}

// Write adds one piece of the current packet. Once the pieces add up to the
// length the fixed header announced, the packet is sent in one write and
// that write's error is returned.
func (c *conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.partLen == 0 {
		c.want = packetLength(p)
	}
	c.parts = append(c.parts, p)
	c.partLen += len(p)
	if c.want >= 0 && c.partLen >= c.want {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush sends the gathered pieces (plus a pending PINGREQ) with one write,
// or one writev for packets larger than maxCoalesce. Caller holds mu.
func (c *conn) flush() error {
	ping := c.pingPending.Swap(false)
	var err error
	var n int64
	if c.partLen <= maxCoalesce {
		buf := c.wbuf[:0]
		for _, p := range c.parts {
			buf = append(buf, p...)
		}
		if ping {
			buf = append(buf, pingreqPacket...)
		}
		var k int
		k, err = c.Conn.Write(buf)
		n = int64(k)
		if cap(buf) <= maxKeptWriteBuffer {
			c.wbuf = buf[:0]
		}
	} else {
		bufs := net.Buffers(c.parts)
		if ping {
			bufs = append(bufs, pingreqPacket)
		}
		n, err = bufs.WriteTo(c.Conn)
	}
	packets := uint64(1)
	if ping {
		packets++
	}
	clear(c.parts)
	c.parts, c.partLen, c.want = c.parts[:0], 0, -1
	c.stats.bytesOut.Add(uint64(n))
	if err != nil {
		c.fail(err)
		return err
	}
	c.stats.packetsOut.Add(packets)
	c.lastSent.Store(int64(c.now()))
	return nil
}

// errPingWrite wraps a failed PINGREQ write.
var errPingWrite = errors.New("mqttkeep: PINGREQ write failed")

// sendPing writes a PINGREQ without ever waiting for the write lock: if
// another packet is being written, the PINGREQ is left for that writer to
// send right after it (see Unlock). deadline bounds a write that finds the
// socket buffer full; zero means no bound.
func (c *conn) sendPing(deadline time.Time) {
	c.pingPending.Store(true)
	c.tryDeliverPing(deadline)
}

// deliverPendingPing is called after the write lock is released: if a
// PINGREQ is pending and the lock is free, send it now. If the lock is
// taken, its holder will check again after its own Unlock.
func (c *conn) deliverPendingPing() {
	if c.pingPending.Load() {
		c.tryDeliverPing(time.Time{})
	}
}

func (c *conn) tryDeliverPing(deadline time.Time) {
	if !c.mu.TryLock() {
		return
	}
	if c.pingPending.Swap(false) {
		if !deadline.IsZero() {
			_ = c.Conn.SetWriteDeadline(deadline)
		}
		n, err := c.Conn.Write(pingreqPacket)
		if !deadline.IsZero() {
			_ = c.Conn.SetWriteDeadline(time.Time{})
		}
		c.stats.bytesOut.Add(uint64(n))
		if err != nil {
			c.fail(errors.Join(errPingWrite, err))
		} else {
			c.stats.packetsOut.Add(1)
			c.lastSent.Store(int64(c.now()))
		}
	}
	c.mu.Unlock()
	// A ping requested while we held the lock is ours to send.
	if c.pingPending.Load() {
		c.tryDeliverPing(deadline)
	}
}

// packetLength returns the total length of an MQTT packet from the start
// of its fixed header, or -1 if p does not hold the whole fixed header.
func packetLength(p []byte) int {
	remaining, mult := 0, 1
	for i := 1; i < len(p) && i <= 4; i++ {
		remaining += int(p[i]&0x7F) * mult
		if p[i]&0x80 == 0 {
			return i + 1 + remaining
		}
		mult *= 128
	}
	return -1
}
