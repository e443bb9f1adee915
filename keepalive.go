package mqttkeep

import (
	"fmt"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// maxPendingPings bounds the PINGREQs waiting for a PINGRESP.
const maxPendingPings = 64

// keepalive is a link's ping and probe state, guarded by s.mu. It runs on
// one timer, reset as needed; no goroutine waits for it.
//
// The rule, with K the negotiated keep alive and T the ping timeout:
//   - send PINGREQ when nothing was sent for K/2 or nothing was received
//     for K/2 (a client that only publishes QoS 0 still probes);
//   - every request owed an answer — PINGREQ, QoS 1/2 PUBLISH, PUBREL,
//     SUBSCRIBE, UNSUBSCRIBE — is a probe: if nothing at all arrives
//     within T after the first probe since the last byte received, the link
//     is dead ([ErrPingTimeout]).
//
// The timer decides, not the write: a probe counts from when it was handed
// to the send buffer, so a write stuck on a full socket cannot delay the
// verdict. An idle link's death is reported at most K/2 + T after its last
// byte; with requests in flight, at most T after the first unanswered one.
type keepalive struct {
	timer    *time.Timer
	armedFor time.Duration // link time the timer fires at; -1: not armed
	probing  bool
	probeAt  time.Duration // link time of the first probe since the last byte received
	pings    []pendingPing // PINGREQs in the order sent, answered in order
}

type pendingPing struct {
	at    time.Duration        // link time the PINGREQ was queued
	sent  time.Duration        // link time the writer took it; -1 before
	end   int64                // link.queued once it was in the send buffer
	reply chan<- time.Duration // nil for the keepalive's own pings
}

// startKeepaliveLocked arms the timer for the first check. s.mu held.
func (l *link) startKeepaliveLocked() {
	l.ka.armedFor = -1
	l.ka.timer = time.AfterFunc(time.Hour, l.keepaliveFired)
	l.ka.timer.Stop()
	if l.keepAlive > 0 {
		l.armLocked(l.now() + l.pingInterval())
	}
}

// pingInterval is how long the link may go without a ping: K/2, or K in
// the low-power mode (WithLowPowerKeepAlive).
func (l *link) pingInterval() time.Duration {
	if l.c.cfg.lowPower {
		return l.keepAlive
	}
	return l.keepAlive / 2
}

// deadLinkBound is how long after the link goes silent its death is
// reported at most: the ping interval plus the ping timeout (0: never,
// without keep alive).
func (l *link) deadLinkBound() time.Duration {
	if l.keepAlive <= 0 || l.pingTimeout <= 0 {
		return 0
	}
	return l.pingInterval() + l.pingTimeout
}

// armLocked makes the timer fire at link time at, unless it already fires
// earlier. s.mu held.
func (l *link) armLocked(at time.Duration) {
	if l.ka.armedFor >= 0 && l.ka.armedFor <= at {
		return
	}
	l.ka.armedFor = at
	l.ka.timer.Reset(max(at-l.now(), 0))
}

// probe records that a request owed an answer was queued now. s.mu held.
func (l *link) probe() {
	if l.pingTimeout <= 0 {
		return
	}
	now := l.now()
	if l.ka.probing && l.ka.probeAt > time.Duration(l.lastRecv.Load()) {
		return // an earlier probe since the last byte received already counts
	}
	l.ka.probing, l.ka.probeAt = true, now
	l.armLocked(now + l.pingTimeout)
}

// keepaliveFired runs on the timer's goroutine.
func (l *link) keepaliveFired() {
	if l.isLost() {
		return
	}
	l.s.mu.Lock()
	err := l.checkLocked()
	l.s.mu.Unlock()
	if err != nil {
		l.c.cfg.logger.Warn("mqttkeep: link dead", "err", err)
		l.fail(err)
	}
}

// checkLocked applies the rule and re-arms the timer; it returns the
// cause when the link is dead. s.mu held.
func (l *link) checkLocked() error {
	now := l.now()
	l.ka.armedFor = -1
	if l.paused {
		// The reader waits for handlers (waitForWindow): the silence is
		// the client's own. Looked at again later; the wait is bounded.
		if d := max(l.keepAlive/2, l.pingTimeout); d > 0 {
			l.armLocked(now + d)
		}
		return nil
	}
	lastRecv := time.Duration(l.lastRecv.Load())
	if l.ka.probing {
		if lastRecv < l.ka.probeAt {
			if now-l.ka.probeAt >= l.pingTimeout {
				return fmt.Errorf("%w after %v (keep alive %v)", ErrPingTimeout, l.pingTimeout, l.keepAlive)
			}
			l.armLocked(l.ka.probeAt + l.pingTimeout)
			return nil
		}
		l.ka.probing = false // answered
	}
	if l.keepAlive <= 0 {
		return nil
	}
	interval := l.pingInterval()
	// A ping is due when nothing was sent for the interval, or (but in the
	// low-power mode, which only holds the broker's keep alive) nothing
	// received.
	last := time.Duration(l.lastSent.Load())
	if !l.c.cfg.lowPower {
		last = min(last, lastRecv)
	}
	due := last + interval
	if now < due {
		l.armLocked(due)
		return nil
	}
	if err := l.pingLocked(nil); err != nil {
		// Too many user pings waiting: the probe is still measured by
		// "anything received since".
		l.c.cfg.logger.Debug("mqttkeep: keepalive ping not queued", "err", err)
		l.probe()
	}
	l.armLocked(now + interval) // the next due check, or the probe's deadline if earlier
	return nil
}

// pingLocked queues a PINGREQ. reply, if not nil, receives the round-trip
// time when its PINGRESP comes. s.mu held.
func (l *link) pingLocked(reply chan<- time.Duration) error {
	if len(l.ka.pings) >= maxPendingPings {
		return ErrTooManyPings
	}
	if l.closing {
		return ErrNotConnected
	}
	at := l.now()
	l.writeRaw(wire.Pingreq)
	l.ka.pings = append(l.ka.pings, pendingPing{at: at, sent: -1, end: l.queued, reply: reply})
	l.c.stats.pingsSent.Add(1)
	l.c.cfg.logger.Debug("mqttkeep: PINGREQ")
	l.probe()
	return nil
}

// cancelPing forgets reply's ping (its caller gave up); its PINGRESP, when
// it comes, still pairs with it so later pings stay in step.
func (l *link) cancelPing(reply chan<- time.Duration) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	for i := range l.ka.pings {
		if l.ka.pings[i].reply == reply {
			l.ka.pings[i].reply = nil
		}
	}
}

// pingsTakenLocked stamps the PINGREQs the writer just took from the send
// buffer with the time it took them. s.mu held.
func (l *link) pingsTakenLocked() {
	for i := range l.ka.pings {
		p := &l.ka.pings[i]
		if p.sent < 0 && p.end <= l.taken {
			p.sent = l.now()
		}
	}
}

// pingResp pairs a PINGRESP with the oldest unanswered PINGREQ and records
// the round-trip time, from the PINGREQ's queuing to the read that brought
// the PINGRESP; reader goroutine. A PINGRESP read before the writer took
// that PINGREQ from the send buffer cannot be its answer: it is
// unsolicited and measures nothing (MQTT pairs them by order alone, so a
// broker's stray PINGRESP would otherwise be taken for the answer to a
// ping sent after it, with a round trip below zero).
func (l *link) pingResp() {
	// The read that completed this packet is the reader's latest: it
	// reads only when the packet in hand needs more bytes.
	read := time.Duration(l.lastRecv.Load())
	l.s.mu.Lock()
	if len(l.ka.pings) == 0 || l.ka.pings[0].sent < 0 || read < l.ka.pings[0].sent {
		l.s.mu.Unlock()
		return
	}
	p := l.ka.pings[0]
	l.ka.pings = l.ka.pings[1:]
	if l.c.cfg.lowPower && l.keepAlive > 0 {
		// The answer ends the probe: the timer's next work is the next
		// ping, not a check at the probe's deadline (one wake-up per K).
		if l.ka.probing && l.ka.probeAt <= read {
			l.ka.probing = false
		}
		if !l.ka.probing {
			l.ka.armedFor = -1
			l.armLocked(time.Duration(l.lastSent.Load()) + l.pingInterval())
		}
	}
	l.s.mu.Unlock()
	rtt, at := read-p.at, l.epoch.Add(read)
	l.c.stats.recordRTT(rtt, at)
	l.c.cfg.logger.Debug("mqttkeep: PINGRESP", "rtt", rtt)
	if p.reply != nil {
		p.reply <- rtt // buffered, one slot per ping
	}
	l.c.events.post(PingEvent{RTT: rtt, At: at})
}
