package mqttkeep

import (
	"context"
	"errors"
	"net"
	"net/url"
	"time"
)

// Overlapping dials, and the dial budget of a partition. While no dial is
// answered (the network drops SYNs: a partition), a lone dial would reach
// a healed host only at the kernel's next SYN retransmission (1, 3, 7 s
// after it began), so fresh dials overlap it — but only in the first
// seconds of the outage, where a quick heal is likely and worth the SYNs:
//
//   - in the first fastPhase (10 s) of an outage, dials start in pairs every
//     2 s, half a second apart (0, 0.5, 2, 2.5, ... 8.5 s): with each
//     socket's own retransmissions, a SYN leaves at least every 0.5 s,
//     so a heal in that time is reached within 0.5 s, at 10 dials;
//   - after it, an attempt makes one dial (its SYN retransmissions still
//     run), and attempts whose dials all timed out start at least
//     minAttemptSpacing apart, plus up to as much jitter (retry.go): with
//     the default connect timeout, one dial per 10 to 15 s, at most 15 in
//     a 60 s partition.
//
// A dial that is answered (connected, refused, TLS) ends the outage.
const (
	// maxDials bounds the dials of one attempt running at once; starting
	// another cancels the oldest.
	maxDials = 4
	// overlapMin and overlapMax clamp how long the first dial of an
	// outage runs alone: four times the last unhurried dial's duration.
	overlapMin = 200 * time.Millisecond
	overlapMax = time.Second
	// overlapDefault is used before any dial completed.
	overlapDefault = 500 * time.Millisecond
	// fastPhase is how long after an outage began dials overlap.
	fastPhase = 10 * time.Second
	// pairEvery and pairGap shape the fast phase's schedule.
	pairEvery, pairGap = 2 * time.Second, 500 * time.Millisecond
)

// nextDial returns when the fast phase's next dial is due after now, for
// an outage that began at since, or false once the fast phase is over.
func nextDial(since, now time.Time) (time.Time, bool) {
	e := now.Sub(since)
	for at := time.Duration(0); at < fastPhase; at += pairEvery {
		if e < at {
			return since.Add(at), true
		}
		if e < at+pairGap {
			return since.Add(at + pairGap), true
		}
	}
	return time.Time{}, false
}

// dial opens the network connection of one attempt to server. With the
// built-in dialer only the TCP connection is overlapped (a TLS or
// WebSocket handshake runs once, on the winner); a WithDialer function is
// overlapped as a whole, since the client cannot see inside it.
func (c *Client) dial(ctx context.Context, server *url.URL) (net.Conn, error) {
	if c.cfg.dial != nil {
		return c.dialOverlapped(ctx, func(ctx context.Context) (net.Conn, error) {
			return c.cfg.dial(ctx, server)
		})
	}
	return c.cfg.builtinDial.dial(ctx, server, func(ctx context.Context, network, addr string) (net.Conn, error) {
		return c.dialOverlapped(ctx, func(ctx context.Context) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, addr)
		})
	})
}

// dialOverlapped runs dialOnce; a dial that has not completed within the
// overlap time (four times the last unhurried dial's duration, 200 ms to
// 1 s) is overlapped by a fresh one, so that a host that comes back from a
// partition is reached by a new SYN within that time instead of by the
// kernel's retransmission schedule (+1, +3, +7 s...). The first dial to
// succeed wins; the others are cancelled and closed before this returns,
// so at most one socket stays open. A refusal or a server certificate
// that does not verify ends the attempt at once (the host answered, and
// will answer the same); another failure ends it once no dial is left.
func (c *Client) dialOverlapped(ctx context.Context, dialOnce func(ctx context.Context) (net.Conn, error)) (net.Conn, error) {
	type result struct {
		nc   net.Conn
		err  error
		id   int
		took time.Duration
	}
	results := make(chan result, 16)
	cancels := map[int]context.CancelFunc{}
	started := 0
	start := func() {
		if len(cancels) >= maxDials {
			oldest := started
			for id := range cancels {
				oldest = min(oldest, id)
			}
			cancels[oldest]()
			delete(cancels, oldest)
		}
		dctx, cancel := context.WithCancel(ctx)
		c.stats.dials.Add(1)
		id := started
		started++
		cancels[id] = cancel
		go func() {
			began := time.Now()
			nc, err := dialOnce(dctx)
			results <- result{nc, err, id, time.Since(began)}
		}()
	}
	first := time.Now()
	if c.unanswered.IsZero() {
		c.unanswered = first // an outage begins, unless this dial is answered
	}
	overlap := time.Duration(c.dialTime.Load()) * 4
	if overlap == 0 {
		overlap = overlapDefault
	}
	overlap = min(max(overlap, overlapMin), overlapMax)
	// next arms the timer for the fast phase's next dial, not before the
	// first dial had its overlap time alone; false: no more overlaps.
	next := func(now time.Time) (time.Duration, bool) {
		at, ok := nextDial(c.unanswered, now)
		if !ok {
			return 0, false
		}
		return max(at.Sub(now), first.Add(overlap).Sub(now), 0), true
	}
	start()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	if d, ok := next(first); ok {
		timer.Reset(d)
	}
	pending := 1
	var winner net.Conn
	var lastErr error
	stop := false
	for winner == nil && pending > 0 && !stop {
		select {
		case r := <-results:
			pending--
			if cancel, ok := cancels[r.id]; ok {
				cancel()
				delete(cancels, r.id)
			}
			if r.err == nil || !errors.Is(r.err, context.Canceled) && !errors.Is(r.err, context.DeadlineExceeded) && !isTimeout(r.err) {
				c.unanswered = time.Time{} // the network answered: no outage
			}
			switch {
			case r.err == nil:
				winner = r.nc
				if r.took < overlap {
					// A dial the network answered in its own time: what
					// the next overlap is based on (0 means "not
					// measured").
					c.dialTime.Store(int64(r.took) + 1)
				}
			case refused(r.err) || isTLSVerifyError(r.err) || ctx.Err() != nil:
				lastErr, stop = r.err, true
			case !errors.Is(r.err, context.Canceled):
				lastErr = r.err // an answer (no route, DNS, TLS): wait for the others, if any
			}
		case <-timer.C:
			start()
			pending++
			if d, ok := next(time.Now()); ok {
				timer.Reset(d)
			}
		case <-ctx.Done():
			lastErr, stop = ctx.Err(), true
		}
	}
	for _, cancel := range cancels {
		cancel()
	}
	if pending > 0 {
		// The losers end at once with a dialer that honours ctx; their
		// sockets, if any, are closed as they come, without holding up
		// this attempt (nor Close, if a dialer does not honour ctx).
		go func(n int) {
			for range n {
				if r := <-results; r.nc != nil {
					_ = r.nc.Close()
				}
			}
		}(pending)
	}
	if winner != nil {
		return winner, nil
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, lastErr
}

// isTimeout reports a network timeout (a dial whose SYNs got no answer).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
