package mqttkeep

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// drainPoll is how often Drain looks again while handlers run.
const drainPoll = 5 * time.Millisecond

// Drain shuts the client down without losing a message: it unsubscribes
// every subscription (the broker stops sending, and a shared subscription
// sends the rest to the other members), lets every message already
// received run through its handler and be acknowledged, waits until every
// accepted outbound message completed, then sends DISCONNECT and closes
// like [Client.Close]. New subscriptions are refused from the start;
// handlers may still publish (a reply, say) until the outbound wait
// begins. When ctx ends first, Drain closes at once (as Close does) and
// returns ctx's error. Called from a handler or hook, Drain does not wait
// for the calling goroutine.
func (c *Client) Drain(ctx context.Context) error {
	if err := c.usable(); err != nil {
		return err
	}
	s := c.session
	s.mu.Lock()
	c.draining = true
	var filters []string
	for _, sub := range c.subs.all {
		filters = append(filters, sub.filter)
	}
	s.mu.Unlock()

	err := func() error {
		if len(filters) > 0 {
			if err := c.Unsubscribe(ctx, filters...); err != nil {
				return fmt.Errorf("mqttkeep: drain: %w", err)
			}
		}
		if err := c.awaitQuiet(ctx); err != nil {
			return fmt.Errorf("mqttkeep: drain: %w", err)
		}
		if err := c.Flush(ctx); err != nil {
			return fmt.Errorf("mqttkeep: drain: %w", err)
		}
		return nil
	}()
	closeCtx := ctx
	if err != nil {
		var cancel context.CancelFunc
		closeCtx, cancel = context.WithTimeout(context.Background(), disconnectWait+time.Second)
		defer cancel()
	}
	if cerr := c.Close(closeCtx); err == nil {
		err = cerr
	}
	return err
}

// awaitQuiet waits until everything received is handled and the broker
// has nothing more queued for us: a PINGREQ sent after the last
// acknowledgement comes back with no PUBLISH before its PINGRESP (a broker
// sends what it queued for a session as acknowledgements free its window,
// in order with its answers).
func (c *Client) awaitQuiet(ctx context.Context) error {
	for {
		if err := c.awaitHandled(ctx); err != nil {
			return err
		}
		before := c.stats.messagesIn.Load()
		if _, err := c.Ping(ctx); err != nil {
			if errors.Is(err, ErrNotConnected) {
				return nil // no connection: nothing more can come
			}
			return err
		}
		if c.stats.messagesIn.Load() == before {
			return c.awaitHandled(ctx)
		}
	}
}

// awaitHandled waits until no delivery waits or runs (but the calling
// goroutine's own) and every received QoS 1/2 message was acknowledged.
func (c *Client) awaitHandled(ctx context.Context) error {
	self := goroutineID()
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		s := c.session
		s.mu.Lock()
		busy := len(s.inbound) > 0 || (c.fallback != nil && c.fallback.busy())
		for _, sub := range c.subs.all {
			busy = busy || sub.lane.busy()
		}
		for _, ln := range c.subs.retired {
			busy = busy || ln.busy()
		}
		s.mu.Unlock()
		if !busy || c.onlyCaller(self) {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stopCh:
			return c.stopErr()
		}
	}
}

// busy reports whether a lane has deliveries waiting or running. s.mu
// held.
func (ln *lane) busy() bool { return ln.waiting() > 0 || ln.running > 0 }

// onlyCaller reports whether the only callback goroutine left running is
// the caller (Drain called from a handler: its own delivery cannot finish
// before Drain returns).
func (c *Client) onlyCaller(self uint64) bool {
	g := &c.callbacks
	g.mu.Lock()
	defer g.mu.Unlock()
	_, inside := g.inside[self]
	return inside && g.n == 1
}
