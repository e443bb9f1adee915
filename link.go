package mqttkeep

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

const (
	// sendBufferLimit is how many bytes may wait in a connection's send
	// buffer before queued messages stop being moved into it.
	sendBufferLimit = 256 << 10
	// disconnectWait bounds how long a DISCONNECT may take to be written
	// before the socket is closed anyway.
	disconnectWait = time.Second
)

// link is one live network connection after a successful CONNACK: it owns
// the socket, a reader goroutine, a writer goroutine and the keepalive
// timer. The first failure reported by any part is its cause; after it the
// socket is closed and both goroutines end.
type link struct {
	c      *Client
	s      *session
	server *url.URL
	nc     net.Conn
	v      wire.Version // the protocol version the CONNECT asked for
	rd     *wire.Reader // reads through readRecorder; its buffer adapts to the traffic
	epoch  time.Time    // lastRecv and lastSent count from here (monotonic)
	upAt   time.Time
	caps   Capabilities

	sessionPresent bool
	cleanSession   bool          // the CONNECT's Clean Start (Clean Session in 3.1.1)
	sessionExpiry  time.Duration // in force: CONNECT's, or the broker's from CONNACK

	keepAlive    time.Duration // negotiated: the broker's Server Keep Alive wins
	pingTimeout  time.Duration // 0: no probing
	writeTimeout time.Duration
	progressOK   bool // a write that timed out after some progress may go on (plain TCP)

	// What the broker allows (from CONNACK).
	serverReceiveMax uint16
	serverMaxPacket  int // 0: no limit
	maxQoS           QoS // caps.MaximumQoS, lowered by downgradedLocked; s.mu

	healthy  atomic.Bool  // a packet other than DISCONNECT came after CONNACK
	lastRecv atomic.Int64 // ns since epoch of the last read that returned data
	lastSent atomic.Int64 // ns since epoch of the last write that completed

	// Guarded by s.mu: the send buffer, keepalive and probe state, the
	// order of inbound acknowledgements, outbound topic aliases.
	out        []byte
	queued     int64 // bytes ever put in out
	taken      int64 // bytes ever taken from out by the writer (being or been written)
	closing    bool  // a DISCONNECT is in out: close once it is written
	ka         keepalive
	acks       ackQueue
	aliasOut   aliasTable
	reauth     *reauth
	overRM     bool          // the broker exceeded our Receive Maximum (logged once)
	heldWarned bool          // held messages filled the receive window (logged once)
	paused     bool          // the reader waits for room in the receive window
	window     chan struct{} // closed when the window has room again; nil unless paused

	aliasIn     map[uint16]string // reader goroutine only
	bad         *badPacket        // reader goroutine: the packet refused as broken, read by the supervisor after wg
	overWindow  bool              // reader goroutine only: the last PUBLISH went beyond the window
	prevAliasIn map[uint16]string // the previous connection's, when the session was resumed

	wake      chan struct{} // cap 1: out has bytes for the writer
	lost      chan struct{} // closed by the first fail
	causeOnce sync.Once
	closeOnce sync.Once
	cause     error          // set once, before lost is closed
	closer    *time.Timer    // fails the link if a DISCONNECT is not written in time; s.mu
	wg        sync.WaitGroup // reader and writer
}

func newLink(c *Client, server *url.URL, nc net.Conn, v wire.Version) *link {
	l := &link{
		c: c, s: c.session, server: server, nc: nc, v: v,
		epoch: time.Now(),
		wake:  make(chan struct{}, 1),
		lost:  make(chan struct{}),
	}
	_, l.progressOK = nc.(*net.TCPConn)
	l.rd = wire.NewReader(readRecorder{l}, c.cfg.maxPacketSize)
	return l
}

// now is the time since the link's epoch.
func (l *link) now() time.Duration { return time.Since(l.epoch) }

// fail records the first cause and closes the socket, which ends the
// reader and the writer; timers that fire later see the link lost. It
// takes no lock, so it may be called anywhere.
func (l *link) fail(err error) {
	l.causeOnce.Do(func() { l.cause = err })
	l.closeOnce.Do(func() {
		close(l.lost)
		_ = l.nc.Close()
	})
}

// stopTimersLocked stops the link's timers once it is lost, so that they
// do not keep it (and the client) in memory. s.mu held.
func (l *link) stopTimersLocked() {
	if l.ka.timer != nil {
		l.ka.timer.Stop()
	}
	if l.closer != nil {
		l.closer.Stop()
	}
}

// lastReceived returns when bytes last arrived (the link's start if none
// did).
func (l *link) lastReceived() time.Time {
	return l.epoch.Add(time.Duration(l.lastRecv.Load()))
}

// isLost reports whether the link has failed.
func (l *link) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

// start runs the reader and writer goroutines and the keepalive.
func (l *link) start() {
	l.wg.Add(2)
	go l.readLoop()
	go l.writeLoop()
	l.s.mu.Lock()
	l.startKeepaliveLocked()
	l.s.mu.Unlock()
}

// hasRoom reports whether the send buffer takes more. s.mu held.
func (l *link) hasRoom() bool { return !l.closing && len(l.out) < sendBufferLimit }

// kick wakes the writer.
func (l *link) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// writePublish appends a PUBLISH to the send buffer, using a topic alias
// when the broker allows them. The packet was checked at acceptance, so
// encoding cannot fail. s.mu held.
func (l *link) writePublish(p *wire.Publish, size int) {
	if l.closing {
		return
	}
	l.reserveLocked(size)
	var err error
	before := len(l.out)
	if alias, first := l.aliasOut.lookup(p.Topic); alias != 0 {
		q := *p
		q.Props.Mark(wire.PropTopicAlias)
		q.Props.TopicAlias = alias
		if !first {
			q.Topic = ""
		}
		l.out, err = wire.AppendCheckedPublish(l.out, l.v, &q)
	} else {
		l.out, err = wire.AppendCheckedPublish(l.out, l.v, p)
	}
	if err != nil { // cannot happen: checked at acceptance
		l.c.cfg.logger.Error("mqttkeep: PUBLISH not encodable", "topic", p.Topic, "err", err)
	}
	l.queuedLocked(before)
}

// queuedLocked accounts for a packet appended to out, which had before
// bytes, and wakes the writer. s.mu held.
func (l *link) queuedLocked(before int) {
	l.queued += int64(len(l.out) - before)
	l.c.stats.packetsOut.Add(1)
	l.kick()
}

// writeAck appends a PUBACK, PUBREC, PUBREL or PUBCOMP. s.mu held.
func (l *link) writeAck(typ byte, id uint16, reason byte) {
	if l.closing {
		return
	}
	if l.v == wire.V311 {
		reason = 0 // 3.1.1 acknowledgements carry no reason code
	}
	before := len(l.out)
	l.out, _ = wire.AppendAck(l.out, l.v, &wire.Ack{Type: typ, PacketID: id, Reason: reason})
	l.queuedLocked(before)
}

// writeRaw appends an encoded packet. s.mu held.
func (l *link) writeRaw(b []byte) {
	if l.closing {
		return
	}
	before := len(l.out)
	l.out = append(l.out, b...)
	l.queuedLocked(before)
}

// errNoDisconnect: closeWithLocked closes without a DISCONNECT.
var errNoDisconnect = errors.New("no DISCONNECT")

// closeWith appends a DISCONNECT with reason and properties (none when d
// is nil, or when the version cannot carry them) and lets the writer
// close the socket once it is written (or after disconnectWait). cause
// becomes the link's cause. s.mu held.
func (l *link) closeWithLocked(d *wire.Disconnect, cause error) {
	if l.closing || l.isLost() {
		return
	}
	var b []byte
	err := errNoDisconnect
	if d != nil {
		b, err = wire.AppendDisconnect(nil, l.v, d)
	}
	if err == nil {
		before := len(l.out)
		l.out = append(l.out, b...)
		l.queuedLocked(before)
	}
	l.closing = true
	l.causeOnce.Do(func() { l.cause = cause }) // recorded now; lost closes once written
	l.kick()
	l.closer = time.AfterFunc(disconnectWait, func() { l.fail(cause) })
}

// writeLoop is the writer goroutine: it writes whatever the send buffer
// holds, one write call per batch, each bounded by the write timeout.
// Its two buffers (the batch being written, the one filling) keep their
// capacity while there is work; when the writer goes idle, large ones go
// back to a pool shared by all links (see sendbuf.go).
func (l *link) writeLoop() {
	defer l.wg.Done()
	var batch []byte
	l.s.mu.Lock()
	for {
		for len(l.out) == 0 {
			if l.closing {
				l.s.mu.Unlock()
				l.closed()
				return
			}
			batch = releaseSendBuffer(batch)
			l.out = releaseSendBuffer(l.out)
			l.s.mu.Unlock()
			select {
			case <-l.wake:
			case <-l.lost:
				return
			}
			l.s.mu.Lock()
		}
		batch, l.out = l.out, batch[:0]
		l.taken += int64(len(batch))
		if len(l.ka.pings) > 0 {
			l.pingsTakenLocked()
		}
		if !l.closing {
			l.s.pumpLocked() // room again: queued messages move in behind
		}
		l.s.mu.Unlock()
		err := l.writeAll(batch)
		l.s.mu.Lock()
		if err != nil {
			l.s.mu.Unlock()
			l.fail(fmt.Errorf("mqttkeep: connection lost: %w", err))
			return
		}
	}
}

// closed ends a link whose DISCONNECT was written.
func (l *link) closed() {
	l.fail(l.cause)
}

// writeAll writes b. A write that makes no progress within the write
// timeout fails the link; on plain TCP a slow write that still moves bytes
// may go on.
func (l *link) writeAll(b []byte) error {
	for len(b) > 0 {
		if l.writeTimeout > 0 {
			_ = l.nc.SetWriteDeadline(time.Now().Add(l.writeTimeout))
		}
		n, err := l.nc.Write(b)
		if n > 0 {
			l.lastSent.Store(int64(l.now()))
			l.c.stats.bytesOut.Add(uint64(n))
			b = b[n:]
		}
		if err != nil {
			var ne net.Error
			if n > 0 && l.progressOK && errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("%w: no byte written for %v", ErrWriteTimeout, l.writeTimeout)
			}
			return err
		}
	}
	return nil
}

// readRecorder sits under the packet reader's buffer so that lastRecv and the
// byte count follow real socket reads.
type readRecorder struct{ l *link }

func (r readRecorder) Read(p []byte) (int, error) {
	n, err := r.l.nc.Read(p)
	if n > 0 {
		r.l.lastRecv.Store(int64(r.l.now()))
		r.l.c.stats.bytesIn.Add(uint64(n))
	}
	return n, err
}

// readLoop is the reader goroutine: it decodes each packet and hands it
// on; it never waits for a handler.
func (l *link) readLoop() {
	defer l.wg.Done()
	defer l.rd.Release() // nothing reads after this goroutine
	for {
		typ, flags, body, err := l.rd.Next()
		if err != nil {
			l.readFailed(err)
			return
		}
		l.c.stats.packetsIn.Add(1)
		if err := l.dispatch(typ, flags, body); err != nil {
			l.bad = newBadPacket(typ, body)
			l.protocolFailure(err)
			return
		}
		if typ == wire.DISCONNECT {
			return
		}
		l.healthy.Store(true)
		if l.overWindow {
			l.overWindow = false
			if err := l.waitForWindow(); err != nil {
				l.protocolFailure(err)
				return
			}
		}
	}
}

// readFailed reports why reading stopped.
func (l *link) readFailed(err error) {
	switch {
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, wire.ErrTooLarge):
		l.protocolFailure(err)
	case errors.Is(err, io.EOF):
		l.fail(fmt.Errorf("mqttkeep: connection lost: the broker closed the connection: %w", err))
	default:
		l.fail(fmt.Errorf("mqttkeep: connection lost: %w", err))
	}
}

// protocolFailure ends the link after the broker broke the protocol:
// DISCONNECT with the matching reason code, then close ([MQTT-4.13.1]).
func (l *link) protocolFailure(err error) {
	reason, sentinel := byte(0x82), ErrProtocolViolation
	switch {
	case errors.Is(err, wire.ErrMalformed):
		reason, sentinel = 0x81, ErrMalformedPacket
	case errors.Is(err, wire.ErrTooLarge):
		reason, sentinel = 0x95, ErrPacketTooLarge
	case errors.Is(err, errReceiveMaxExceeded):
		reason = 0x93
	case errors.Is(err, errTopicAliasInvalid):
		reason = 0x94
	}
	cause := fmt.Errorf("%w from the broker (DISCONNECT 0x%02X sent): %w", sentinel, reason, err)
	if l.v == wire.V311 {
		cause = fmt.Errorf("%w from the broker (connection closed): %w", sentinel, err)
	}
	l.c.cfg.logger.Warn("mqttkeep: broker broke the protocol; disconnecting", "err", cause)
	l.s.mu.Lock()
	l.closeWithLocked(&wire.Disconnect{Reason: reason}, cause)
	l.s.mu.Unlock()
}

// dispatch handles one received packet on the reader goroutine. An error
// is a protocol violation by the broker.
func (l *link) dispatch(typ, flags byte, body []byte) error {
	switch typ {
	case wire.PUBLISH:
		return l.c.publishReceived(l, flags, body)
	case wire.PUBACK, wire.PUBREC, wire.PUBCOMP:
		a, err := wire.DecodeAck(l.v, typ, body)
		if err != nil {
			return err
		}
		l.s.ackReceived(l, a)
	case wire.PUBREL:
		a, err := wire.DecodeAck(l.v, typ, body)
		if err != nil {
			return err
		}
		l.s.releaseReceived(l, a)
	case wire.SUBACK, wire.UNSUBACK:
		a, err := wire.DecodeSubAck(l.v, typ, body)
		if err != nil {
			return err
		}
		l.s.subAckReceived(l, a)
	case wire.PINGRESP:
		if err := wire.CheckPingresp(l.v, body); err != nil {
			return err
		}
		l.pingResp()
	case wire.DISCONNECT:
		d, err := wire.DecodeDisconnect(l.v, body)
		if err != nil {
			return err
		}
		if err := checkServerDisconnect(&d); err != nil {
			return err
		}
		l.fail(disconnectError(d))
	case wire.AUTH:
		a, err := wire.DecodeAuth(l.v, body)
		if err != nil {
			return err
		}
		return l.c.authReceived(l, a)
	default:
		return fmt.Errorf("%w: a client does not receive %s", wire.ErrProtocol, wire.TypeName(typ))
	}
	return nil
}

// checkServerDisconnect refuses what only a client may put in a
// DISCONNECT: "The Session Expiry Interval MUST NOT be sent on a
// DISCONNECT by the Server" (MQTT v5 §3.14.2.2.2).
func checkServerDisconnect(d *wire.Disconnect) error {
	if d.Props.Has(wire.PropSessionExpiry) {
		return fmt.Errorf("%w: the broker's DISCONNECT (0x%02X) carries a Session Expiry Interval, which only a client may send", wire.ErrProtocol, d.Reason)
	}
	return nil
}

// disconnectError is the error for a server DISCONNECT.
func disconnectError(d wire.Disconnect) *ReasonCodeError {
	return &ReasonCodeError{Packet: "DISCONNECT", Code: ReasonCode(d.Reason), Reason: d.Props.ReasonString, ServerReference: d.Props.ServerReference}
}

// checkLimits refuses what the broker said in CONNACK it does not take.
func (l *link) checkLimits(p *wire.Publish, size int) error {
	if l.v == wire.V311 && p.Props.Set != 0 {
		return errV311("message properties (content type, expiry, user properties, request/response, payload format)")
	}
	if QoS(p.QoS) > l.maxQoS {
		return fmt.Errorf("%w: %d, the broker's maximum is %d", ErrInvalidQoS, p.QoS, l.maxQoS)
	}
	if p.Retain && !l.caps.RetainAvailable {
		return fmt.Errorf("%w: the broker does not support retained messages", ErrNotSupported)
	}
	if l.serverMaxPacket > 0 && size > l.serverMaxPacket {
		return fmt.Errorf("%w: %d bytes, the broker's Maximum Packet Size is %d", ErrPacketTooLarge, size, l.serverMaxPacket)
	}
	return nil
}
