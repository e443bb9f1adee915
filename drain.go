package mqttkeep

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// Drain shuts down without losing a message (see the package doc's Delivery):
// what arrived is handled and acknowledged (manual acknowledgements too), every
// accepted publish completes, then it closes like [Client.Close]. A session
// that outlives the connection ([WithSessionExpiry] above zero) keeps its
// subscriptions and leaves new arrivals to the broker; otherwise Drain
// unsubscribes first. Meanwhile Subscribe is refused, handlers may publish.
// When ctx ends, Drain closes at once.
func (c *Client) Drain(ctx context.Context) error { return c.drain(ctx, false) }

// DrainUnsubscribe is [Client.Drain] that unsubscribes first, whatever the
// session expiry: to leave for good, or to scale down a shared subscription.
func (c *Client) DrainUnsubscribe(ctx context.Context) error { return c.drain(ctx, true) }

func (c *Client) drain(ctx context.Context, unsubscribe bool) error {
	if err := c.usable(); err != nil {
		return err
	}
	d := c.disconnectPacket()
	c.mu.Lock()
	c.finalDisconnect = d
	c.mu.Unlock()
	s := c.session
	s.mu.Lock()
	c.draining = true
	keep := !unsubscribe && c.sessionKeptLocked(d)
	c.drainKeep = keep
	if n := c.abandonHeldLocked(); n > 0 {
		c.stats.messagesAbandoned.Add(uint64(n))
	}
	var filters []string
	if !keep {
		for _, sub := range c.subs.all {
			filters = append(filters, sub.filter)
		}
	}
	s.mu.Unlock()

	err := func() error {
		if len(filters) > 0 {
			if err := c.Unsubscribe(ctx, filters...); err != nil {
				return fmt.Errorf("mqttkeep: drain: %w", err)
			}
		}
		wait := c.awaitQuiet
		if keep {
			wait = c.awaitHandled // new arrivals are left to the broker
		}
		if err := wait(ctx); err != nil {
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

// sessionKeptLocked reports whether the broker keeps the session after
// DISCONNECT d: the expiry d sets, else the one in force on the
// connection. s.mu held.
func (c *Client) sessionKeptLocked(d *wire.Disconnect) bool {
	if d.Props.Has(wire.PropSessionExpiry) {
		return d.Props.SessionExpiry > 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionExpiry > 0
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

// awaitHandled waits until no delivery waits or runs and every received
// QoS 1/2 message handed out was acknowledged. Called from a handler or
// hook (Drain in a callback), it does not wait for handler calls already
// running, nor for their acknowledgements: one of them may be its caller.
// It wakes on progress (a lane going idle, an acknowledgement), never on
// a timer.
func (c *Client) awaitHandled(ctx context.Context) error {
	fromCallback := inCallback()
	for {
		s := c.session
		s.mu.Lock()
		busy := !fromCallback && len(s.inbound) > 0
		lanes := c.allLanesLocked()
		for _, ln := range lanes {
			busy = busy || ln.waiting() > 0 || (!fromCallback && ln.running > 0)
		}
		if !busy {
			s.mu.Unlock()
			return nil
		}
		if c.progress == nil {
			c.progress = make(chan struct{})
		}
		progress := c.progress
		s.mu.Unlock()
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stopCh:
			return c.stopErr()
		}
	}
}

// allLanesLocked returns every lane that may hold deliveries: the
// subscriptions', the retired ones' and the fallback's. s.mu held.
func (c *Client) allLanesLocked() []*lane {
	lanes := make([]*lane, 0, len(c.subs.all)+len(c.subs.retired)+1)
	for _, sub := range c.subs.all {
		lanes = append(lanes, sub.lane)
	}
	lanes = append(lanes, c.subs.retired...)
	if c.fallback != nil {
		lanes = append(lanes, c.fallback)
	}
	return lanes
}

// progressedLocked wakes awaitHandled: a lane went idle or a received
// message left the session. s.mu held.
func (c *Client) progressedLocked() {
	if c.progress != nil {
		close(c.progress)
		c.progress = nil
	}
}
