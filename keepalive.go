package mqttkeep

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho/log"
)

// maxPendingPings bounds the PINGREQs waiting for a PINGRESP.
const maxPendingPings = 64

// scheduler is the keepalive for one connection; it implements paho.Pinger
// and paho runs it on one goroutine per connection.
//
// The rule, with K the negotiated keep alive:
//   - send PINGREQ when nothing was sent for K/2 or nothing was received
//     for K/2 (a client that only publishes QoS 0 still probes the
//     broker);
//   - after a PINGREQ, if nothing at all arrives within the ping timeout
//     (default K/2), the link is dead: close it with ErrPingTimeout.
//
// The timer decides, not the write: the PINGREQ is never written while
// waiting for the write lock, and a write that finds the socket buffer full
// is bounded by the ping timeout. A silent link death is therefore
// reported at most K/2 + ping timeout after the last byte received.
type scheduler struct {
	conn        *conn
	pingTimeout time.Duration // 0: K/2
	stats       *counters
	logger      *slog.Logger
	fail        func(error)

	kick    chan struct{} // wakes Run when traffic arrives during a probe
	probing atomic.Bool   // a probe is waiting for traffic

	mu      sync.Mutex
	pending []pendingPing // PINGREQs in the order sent, answered in order
}

type pendingPing struct {
	at    time.Duration        // conn.now() when the PINGREQ was requested
	reply chan<- time.Duration // nil for the scheduler's own pings
}

func newScheduler(c *conn, pingTimeout time.Duration, stats *counters, logger *slog.Logger, fail func(error)) *scheduler {
	return &scheduler{
		conn:        c,
		pingTimeout: pingTimeout,
		stats:       stats,
		logger:      logger,
		fail:        fail,
		kick:        make(chan struct{}, 1),
	}
}

// Run implements paho.Pinger: it keeps the connection alive until ctx ends
// or the link is found dead. keepAlive is the negotiated value in seconds
// (paho passes the broker's Server Keep Alive when there is one).
func (s *scheduler) Run(ctx context.Context, _ net.Conn, keepAlive uint16) error {
	if keepAlive == 0 {
		return nil
	}
	half := time.Duration(keepAlive) * time.Second / 2
	timeout := s.pingTimeout
	if timeout == 0 {
		timeout = half
	}
	timer := time.NewTimer(half)
	defer timer.Stop()
	var probeAt time.Duration = -1 // when the unanswered probe was sent; -1: none
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.kick:
		}
		now := s.conn.now()
		lastRecv := time.Duration(s.conn.lastRecv.Load())
		if probeAt >= 0 {
			if lastRecv < probeAt {
				if now-probeAt >= timeout {
					err := fmt.Errorf("%w after %v (keep alive %v)", ErrPingTimeout, timeout, 2*half)
					s.logger.Warn("mqttkeep: link dead", "err", err)
					s.fail(err)
					return err
				}
				timer.Reset(probeAt + timeout - now)
				continue
			}
			probeAt = -1
			s.probing.Store(false)
		}
		lastSent := time.Duration(s.conn.lastSent.Load())
		due := min(lastSent, lastRecv) + half
		if now < due {
			timer.Reset(due - now)
			continue
		}
		probeAt = now
		s.probing.Store(true)
		if err := s.ping(nil, timeout); err != nil {
			// Too many user pings waiting: the probe is still measured
			// by "anything received since probeAt".
			s.logger.Debug("mqttkeep: keepalive ping not queued", "err", err)
		}
		timer.Reset(timeout)
	}
}

// ping queues a PINGREQ and writes it without waiting for the write lock.
// reply, if not nil, receives the round-trip time when the PINGRESP comes.
func (s *scheduler) ping(reply chan<- time.Duration, timeout time.Duration) error {
	s.mu.Lock()
	if len(s.pending) >= maxPendingPings {
		s.mu.Unlock()
		return ErrTooManyPings
	}
	s.pending = append(s.pending, pendingPing{at: s.conn.now(), reply: reply})
	s.mu.Unlock()
	s.stats.pingsSent.Add(1)
	s.logger.Debug("mqttkeep: PINGREQ")
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	s.conn.sendPing(deadline)
	return nil
}

// cancelPing forgets reply's ping (its caller gave up); its PINGRESP, when
// it comes, still pairs with it so later pings stay in step.
func (s *scheduler) cancelPing(reply chan<- time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.pending {
		if s.pending[i].reply == reply {
			s.pending[i].reply = nil
		}
	}
}

// PacketSent implements paho.Pinger; conn records sends itself.
func (s *scheduler) PacketSent() {}

// PacketReceived implements paho.Pinger: it counts packets and wakes Run
// so that an answered probe is noticed at once.
func (s *scheduler) PacketReceived() {
	s.stats.packetsIn.Add(1)
	if s.probing.Load() {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// PingResp implements paho.Pinger: it pairs the PINGRESP with the oldest
// unanswered PINGREQ and records the round-trip time.
func (s *scheduler) PingResp() {
	now := s.conn.now()
	s.mu.Lock()
	if len(s.pending) == 0 {
		s.mu.Unlock()
		return // unsolicited; nothing to measure
	}
	p := s.pending[0]
	s.pending = s.pending[1:]
	s.mu.Unlock()
	rtt := now - p.at
	s.stats.recordRTT(rtt)
	s.logger.Debug("mqttkeep: PINGRESP", "rtt", rtt)
	if p.reply != nil {
		p.reply <- rtt // buffered, one slot per ping
	}
}

// SetDebug implements paho.Pinger; the scheduler logs through slog.
func (s *scheduler) SetDebug(log.Logger) {}
