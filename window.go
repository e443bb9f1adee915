package mqttkeep

import (
	"fmt"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// The receive window. A broker may have at most Receive Maximum QoS 1/2
// messages unacknowledged with us ([MQTT-3.3.4-9] asks it to stop there).
// One that sends more (Mosquitto 2.0.11 does under load, and after
// resuming a session) is not disconnected at once: the message is kept
// and handled, and the reader stops reading until handlers have freed a
// slot, so what the client holds stays bounded by the window (plus the
// one message over it) and TCP makes the broker wait. The connection is
// closed with 0x93 only if the window stays over for the write timeout:
// a handler that waits for an answer the reader would have to read (a
// QoS 1 Publish from inside a handler) cannot hold the link forever.

// checkWindowLocked notes, after a QoS 1/2 message joined the
// acknowledgement queue, whether it went beyond our Receive Maximum; the
// reader then waits before reading on. Reader goroutine, s.mu held.
func (l *link) checkWindowLocked() {
	rm := int(l.c.cfg.receiveMaximum)
	n := l.acks.len()
	if n <= rm {
		return
	}
	l.overWindow = true
	l.c.stats.messagesOverReceiveMax.Add(1)
	if !l.overRM {
		l.overRM = true
		l.c.cfg.logger.Warn("mqttkeep: broker exceeds our Receive Maximum; reading waits for handlers",
			"unacknowledged", n, "receive_maximum", rm)
	}
}

// windowFreedLocked wakes a reader waiting for room in the window once
// there is some. s.mu held.
func (l *link) windowFreedLocked() {
	if l.window != nil && l.acks.len() <= int(l.c.cfg.receiveMaximum) {
		close(l.window)
		l.window = nil
	}
}

// waitForWindow makes the reader wait until the receive window has room,
// the link is lost, or the write timeout passes (then it returns the
// protocol error that closes the link with 0x93). While it waits, the
// keepalive does not count the broker's silence: bytes may be waiting
// that the client chose not to read. Reader goroutine.
func (l *link) waitForWindow() error {
	s := l.s
	rm := int(l.c.cfg.receiveMaximum)
	s.mu.Lock()
	if l.acks.len() <= rm {
		s.mu.Unlock()
		return nil
	}
	l.paused = true
	// An MQTT 3.1.1 broker knows no Receive Maximum: sending more than it
	// is normal there, and the pause lasts as long as the handlers need.
	var expired <-chan time.Time
	if l.v != wire.V311 {
		timer := time.NewTimer(l.writeTimeout)
		defer timer.Stop()
		expired = timer.C
	}
	for l.acks.len() > rm {
		ch := make(chan struct{})
		l.window = ch
		s.mu.Unlock()
		select {
		case <-ch:
		case <-l.lost:
			s.mu.Lock()
			l.paused, l.window = false, nil
			s.mu.Unlock()
			return nil // the next read fails with the link's cause
		case <-expired:
			s.mu.Lock()
			n := l.acks.len()
			l.paused, l.window = false, nil
			s.mu.Unlock()
			return fmt.Errorf("%w: %w: %d unacknowledged for %v, Receive Maximum %d",
				wire.ErrProtocol, errReceiveMaxExceeded, n, l.writeTimeout, rm)
		}
		s.mu.Lock()
	}
	l.paused = false
	// The time spent waiting does not count against an outstanding probe.
	if now := l.now(); l.ka.probing && l.ka.probeAt < now {
		l.ka.probeAt = now
		l.armLocked(now + l.pingTimeout)
	}
	s.mu.Unlock()
	return nil
}
