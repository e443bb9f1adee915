package mqttkeep

import (
	"context"
	"errors"
	"net"
	"net/url"
	"time"
)

// Overlapping dials.
const (
	// maxDials bounds the dials of one attempt running at once; starting
	// another cancels the oldest.
	maxDials = 4
	// overlapMin and overlapMax clamp the time after which a dial that has
	// not completed is overlapped by a fresh one.
	overlapMin = 200 * time.Millisecond
	overlapMax = time.Second
	// overlapDefault is used before any dial completed.
	overlapDefault = 500 * time.Millisecond
	// overlapSlowest is the overlap after many attempts whose dials timed
	// out.
	overlapSlowest = 4 * time.Second
)

// dial opens the network connection of one attempt to server. With the
// built-in dialer only the TCP connection is overlapped (a TLS or
// WebSocket handshake runs once, on the winner); a WithDialer function is
// overlapped as a whole, since the client cannot see inside it. slow
// counts the attempts before this one whose dials timed out.
func (c *Client) dial(ctx context.Context, server *url.URL, slow int) (net.Conn, error) {
	if c.cfg.dial != nil {
		return c.dialOverlapped(ctx, slow, func(ctx context.Context) (net.Conn, error) {
			return c.cfg.dial(ctx, server)
		})
	}
	return c.cfg.builtinDial.dial(ctx, server, func(ctx context.Context, network, addr string) (net.Conn, error) {
		return c.dialOverlapped(ctx, slow, func(ctx context.Context) (net.Conn, error) {
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
func (c *Client) dialOverlapped(ctx context.Context, slow int, dialOnce func(ctx context.Context) (net.Conn, error)) (net.Conn, error) {
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
		id := started
		started++
		cancels[id] = cancel
		go func() {
			began := time.Now()
			nc, err := dialOnce(dctx)
			results <- result{nc, err, id, time.Since(began)}
		}()
	}
	overlap := time.Duration(c.dialTime.Load()) * 4
	if overlap == 0 {
		overlap = overlapDefault
	}
	overlap = min(max(overlap, overlapMin), overlapMax)
	// Attempts whose dials all timed out (a long partition) overlap less
	// and less often: 2x per such attempt, up to overlapSlowest.
	for range min(slow, 5) {
		overlap = min(2*overlap, overlapSlowest)
	}
	start()
	timer := time.NewTimer(overlap)
	defer timer.Stop()
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
			timer.Reset(overlap)
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
