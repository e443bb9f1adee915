package mqttkeep

import (
	"context"
	"fmt"
	"slices"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// SubscribeOption sets an option of one subscription; see [Client.Subscribe].
type SubscribeOption func(*subConfig)

type subConfig struct {
	noLocal, retainAsPublished bool
	retainHandling             byte
	concurrency                int
	user                       []UserProperty
}

// WithNoLocal: none of the client's own messages (not on $share); default off.
func WithNoLocal() SubscribeOption { return func(c *subConfig) { c.noLocal = true } }

// WithRetainAsPublished: RETAIN forwarded as published. Default: off, cleared.
func WithRetainAsPublished() SubscribeOption {
	return func(c *subConfig) { c.retainAsPublished = true }
}

// RetainHandling says when the broker sends retained messages on subscribing.
type RetainHandling byte

const (
	// SendRetained: send retained messages on every SUBSCRIBE (the default).
	SendRetained RetainHandling = 0
	// SendRetainedIfNew: only when the subscription did not exist.
	SendRetainedIfNew RetainHandling = 1
	// DontSendRetained: never send retained messages on subscribing.
	DontSendRetained RetainHandling = 2
)

// WithRetainHandling sets when retained messages come. Default: [SendRetained].
func WithRetainHandling(h RetainHandling) SubscribeOption {
	return func(c *subConfig) { c.retainHandling = byte(h) }
}

// WithSubscriptionUserProperty adds a user property to this subscription's
// SUBSCRIBE, which then goes alone. Default: none.
func WithSubscriptionUserProperty(key, value string) SubscribeOption {
	return func(c *subConfig) { c.user = append(c.user, UserProperty{key, value}) }
}

// WithConcurrency lets n ≥ 1 handler calls run at once, unordered. Default: 1.
func WithConcurrency(n int) SubscribeOption { return func(c *subConfig) { c.concurrency = n } }

// newSubscription builds a subscription from Subscribe's arguments.
func newSubscription(filter string, qos QoS, handler MessageHandler, opts []SubscribeOption) (*subscription, error) {
	if err := validateFilter(filter); err != nil {
		return nil, err
	}
	if qos > 2 {
		return nil, fmt.Errorf("%w: %d, want 0, 1 or 2", ErrInvalidQoS, qos)
	}
	if handler == nil {
		return nil, fmt.Errorf("%w: nil handler for %q", ErrInvalidArgument, filter)
	}
	cfg := subConfig{concurrency: 1}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil subscribe option", ErrInvalidArgument)
		}
		o(&cfg)
	}
	switch {
	case cfg.retainHandling > 2:
		return nil, fmt.Errorf("%w: retain handling %d, want 0, 1 or 2", ErrInvalidArgument, cfg.retainHandling)
	case cfg.concurrency < 1:
		return nil, fmt.Errorf("%w: concurrency %d, want at least 1", ErrInvalidArgument, cfg.concurrency)
	case cfg.noLocal && isShared(filter):
		return nil, fmt.Errorf("%w: No Local on the shared subscription %q ([MQTT-3.8.3-4])", ErrInvalidArgument, filter)
	}
	var user []wire.UserProperty
	if len(cfg.user) > 0 {
		user = make([]wire.UserProperty, len(cfg.user))
		for i, u := range cfg.user {
			user[i] = wire.UserProperty(u)
		}
		pr := wire.Props{User: user}
		pr.Mark(wire.PropUser)
		if err := pr.Check(); err != nil {
			return nil, fmt.Errorf("%w: subscription user property of %q: %w", ErrInvalidArgument, filter, err)
		}
	}
	return &subscription{
		filter: filter,
		opts: wire.Subscription{Filter: filter, QoS: byte(qos), NoLocal: cfg.noLocal,
			RetainAsPublished: cfg.retainAsPublished, RetainHandling: cfg.retainHandling},
		user:  user,
		lane:  &lane{name: filter, handler: handler, max: cfg.concurrency},
		ready: make(chan struct{}),
	}, nil
}

func isShared(filter string) bool { return len(filter) > 7 && filter[:7] == "$share/" }

// Subscribe subscribes to filter (wildcards, $share/{group}/) at qos, handing
// matching messages, held ones first, to handler. The subscription is the
// client's: sent when connected, again when the broker lost the session,
// replaced by another Subscribe to filter. It returns once acknowledged, or the
// [*ReasonCodeError]; when ctx ends first, it stays.
func (c *Client) Subscribe(ctx context.Context, filter string, qos QoS, handler MessageHandler, opts ...SubscribeOption) error {
	sub, err := newSubscription(filter, qos, handler, opts)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqttkeep: subscribe to %q: %w (not subscribed)", filter, err)
	}
	if err := c.usable(); err != nil {
		return err
	}
	if what := sub.needsV5(); what != "" && c.speaks311() {
		return fmt.Errorf("mqttkeep: subscribe to %q: %w", filter, errV311(what))
	}
	s := c.session
	s.mu.Lock()
	if c.draining {
		s.mu.Unlock()
		return fmt.Errorf("%w: the client is draining", ErrClosed)
	}
	c.addLocked(sub)
	s.mu.Unlock()
	select {
	case <-sub.ready:
		return sub.err
	case <-ctx.Done():
		return fmt.Errorf("mqttkeep: subscribe to %q: %w (the subscription stays and is sent when connected; Unsubscribe drops it)", filter, ctx.Err())
	case <-c.stopCh:
		return c.stopErr()
	}
}

// Unsubscribe drops the subscriptions to filters and sends UNSUBSCRIBE
// (offline: on the next connection), even for filters only the broker knows.
// Messages sent before the UNSUBACK are handled, later and held ones
// acknowledged unhandled. It returns once acknowledged (offline: at once).
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) error {
	for _, f := range filters {
		if err := validateFilter(f); err != nil {
			return err
		}
	}
	if len(filters) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqttkeep: unsubscribe: %w (nothing sent)", err)
	}
	if err := c.usable(); err != nil {
		return err
	}
	s := c.session
	s.mu.Lock()
	var subs []*subscription
	for _, f := range filters {
		if sub := c.subs.router.byFilter[f]; sub != nil {
			subs = append(subs, sub)
		}
	}
	c.unsubscribedLocked(filters)
	l := s.link
	if l == nil || l.closing || !s.pumping {
		for _, sub := range subs {
			c.retireLocked(sub, errUnsubscribed)
		}
		for _, f := range filters {
			if !slices.Contains(c.subs.leaving, f) {
				c.subs.leaving = append(c.subs.leaving, f)
			}
		}
		s.mu.Unlock()
		return nil
	}
	r := c.sendUnsubscribeLocked(l, filters, subs)
	s.mu.Unlock()
	if r == nil {
		return fmt.Errorf("mqttkeep: unsubscribe: %w", errNoPacketID)
	}
	select {
	case a, ok := <-r.reply:
		if !ok {
			return fmt.Errorf("mqttkeep: unsubscribe: %w: the connection dropped before the UNSUBACK", ErrNotConnected)
		}
		for i, code := range a.Reasons {
			if code >= 0x80 {
				f := "?"
				if i < len(filters) {
					f = filters[i]
				}
				return fmt.Errorf("mqttkeep: unsubscribe from %q: %w", f, &ReasonCodeError{Packet: "UNSUBACK", Code: ReasonCode(code), Reason: a.Props.ReasonString})
			}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqttkeep: unsubscribe: %w", ctx.Err())
	case <-c.stopCh:
		return c.stopErr()
	}
}
