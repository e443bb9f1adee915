package mqttkeep

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// States of a subscription.
const (
	subWanted  = iota // to be sent on the live link, or the next one
	subSent           // SUBSCRIBE written, awaiting SUBACK
	subActive         // acknowledged by the broker on this session
	subLeaving        // UNSUBSCRIBE written, awaiting UNSUBACK; still routed
	subDrained        // unsubscribed by Drain: still routed, never sent again
	subGone           // refused, replaced or unsubscribed
)

// subscription is one topic filter with its options and handler. It
// exists independently of the connection: given in New or made by
// Subscribe at any time, it is sent on the live link or the next one and
// re-sent whenever the broker lost the session.
type subscription struct {
	id     int // Subscription Identifier, unique within the client
	filter string
	opts   wire.Subscription
	user   []wire.UserProperty // SUBSCRIBE's user properties; such a subscription goes in a packet of its own
	lane   *lane
	state  int
	seq    uint64        // registration order
	ready  chan struct{} // closed when active, refused or gone
	err    error         // why it is gone, set before ready closes
}

// registry is the client's subscriptions, guarded by s.mu.
type registry struct {
	router   router
	all      []*subscription // live (not gone), in registration order
	retired  []*lane         // lanes of gone subscriptions still holding deliveries
	leaving  []string        // filters to unsubscribe on the next link (Unsubscribe while offline)
	nextID   int
	seq      uint64
	idsInUse bool // the live link's broker supports Subscription Identifiers
	scratch  []*subscription
}

// SubscribeOption sets an option of one subscription; see [Client.Subscribe].
type SubscribeOption func(*subConfig)

type subConfig struct {
	noLocal, retainAsPublished bool
	retainHandling             byte
	concurrency                int
	user                       []UserProperty
}

// WithNoLocal asks the broker not to send this client its own messages on
// this subscription (MQTT v5 No Local). Not allowed on a shared
// subscription.
func WithNoLocal() SubscribeOption { return func(c *subConfig) { c.noLocal = true } }

// WithRetainAsPublished asks the broker to keep the RETAIN flag of the
// messages it forwards as the publisher set it (MQTT v5 Retain As
// Published); by default a forwarded live message has RETAIN cleared.
func WithRetainAsPublished() SubscribeOption {
	return func(c *subConfig) { c.retainAsPublished = true }
}

// RetainHandling says when the broker sends retained messages on
// subscribing (MQTT v5 Retain Handling).
type RetainHandling byte

const (
	// SendRetained: send retained messages on every SUBSCRIBE (the default).
	SendRetained RetainHandling = 0
	// SendRetainedIfNew: only when the subscription did not exist.
	SendRetainedIfNew RetainHandling = 1
	// DontSendRetained: never send retained messages on subscribing.
	DontSendRetained RetainHandling = 2
)

// WithRetainHandling sets when the broker sends retained messages for this
// subscription. Default: [SendRetained].
func WithRetainHandling(h RetainHandling) SubscribeOption {
	return func(c *subConfig) { c.retainHandling = byte(h) }
}

// WithSubscriptionUserProperty adds a user property to the SUBSCRIBE that
// carries this subscription, every time it is sent (also when a reconnect
// restores it); it may be given more than once. User properties belong to
// the whole SUBSCRIBE packet in MQTT, so a subscription that has them is
// sent in a SUBSCRIBE of its own. Names and values must be valid UTF-8 of
// at most 65,535 bytes.
func WithSubscriptionUserProperty(key, value string) SubscribeOption {
	return func(c *subConfig) { c.user = append(c.user, UserProperty{key, value}) }
}

// WithConcurrency lets up to n handler calls of this subscription run at
// once, on as many goroutines; messages are then no longer handled in
// order. Default: 1 (one at a time, in the order received).
func WithConcurrency(n int) SubscribeOption { return func(c *subConfig) { c.concurrency = n } }

// newSubscription builds a subscription from Subscribe's arguments.
func newSubscription(filter string, qos byte, handler MessageHandler, opts []SubscribeOption) (*subscription, error) {
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
		opts: wire.Subscription{Filter: filter, QoS: qos, NoLocal: cfg.noLocal,
			RetainAsPublished: cfg.retainAsPublished, RetainHandling: cfg.retainHandling},
		user:  user,
		lane:  &lane{name: filter, handler: handler, max: cfg.concurrency},
		ready: make(chan struct{}),
	}, nil
}

func isShared(filter string) bool { return len(filter) > 7 && filter[:7] == "$share/" }

// addLocked registers sub, replacing a subscription to the same filter,
// and sends it if a link is up. s.mu held.
func (c *Client) addLocked(sub *subscription) {
	r := &c.subs
	if r.nextID == 0 {
		// Start anywhere in the first million: an earlier process with
		// this client ID may have left subscriptions with small
		// identifiers in a session the broker kept.
		r.nextID = rand.IntN(1 << 20)
	}
	r.nextID++
	for r.nextID > wire.MaxVBI || r.router.byID[r.nextID] != nil {
		r.nextID = r.nextID%wire.MaxVBI + 1
	}
	sub.id = r.nextID
	r.seq++
	sub.seq = r.seq
	if old := r.router.byFilter[sub.filter]; old != nil {
		c.retireLocked(old, nil)
	}
	r.leaving = slices.DeleteFunc(r.leaving, func(f string) bool { return f == sub.filter })
	r.router.add(sub)
	r.all = append(r.all, sub)
	sub.state = subWanted
	if s := c.session; s.link != nil && !s.link.closing && s.pumping {
		c.sendSubscribesLocked(s.link, []*subscription{sub})
	}
}

// retireLocked takes sub out of routing; deliveries already queued still
// run. err, if any, is what Subscribe reports. s.mu held.
func (c *Client) retireLocked(sub *subscription, err error) {
	if sub.state == subGone {
		return
	}
	r := &c.subs
	r.router.remove(sub)
	r.all = slices.DeleteFunc(r.all, func(x *subscription) bool { return x == sub })
	if sub.lane.waiting() > 0 || sub.lane.running > 0 {
		r.retired = append(r.retired, sub.lane)
	}
	if !sub.signalled() {
		sub.err = err
	}
	sub.state = subGone
	sub.signal()
}

// signal wakes Subscribe calls waiting for sub, once.
func (sub *subscription) signal() {
	if !sub.signalled() {
		close(sub.ready)
	}
}

func (sub *subscription) signalled() bool {
	select {
	case <-sub.ready:
		return true
	default:
		return false
	}
}

// sendSubscribesLocked sends SUBSCRIBE for subs on l: one packet per
// subscription when each carries its own Subscription Identifier or has
// user properties, else as few packets as the broker's Maximum Packet Size
// allows. It returns the requests it made. s.mu held.
func (c *Client) sendSubscribesLocked(l *link, subs []*subscription) []*request {
	var reqs []*request
	for len(subs) > 0 {
		r := c.session.newRequest(l)
		if r == nil {
			c.cfg.logger.Warn("mqttkeep: no packet identifier free for SUBSCRIBE; retrying on the next connection")
			return reqs
		}
		p := wire.Subscribe{PacketID: r.id}
		if c.subs.idsInUse {
			p.Props.Mark(wire.PropSubscriptionID)
		}
		n := 0
		for _, sub := range subs {
			if n == 1 && (c.subs.idsInUse || subs[0].user != nil) || n > 0 && sub.user != nil {
				break
			}
			p.Subscriptions = append(p.Subscriptions, sub.opts)
			if c.subs.idsInUse {
				p.Props.SubscriptionIDs = []int{sub.id}
			}
			if sub.user != nil {
				p.Props.Mark(wire.PropUser)
				p.Props.User = sub.user
			}
			if l.serverMaxPacket > 0 && n > 0 && wire.SubscribeSize(wire.V5, &p) > l.serverMaxPacket {
				p.Subscriptions = p.Subscriptions[:n]
				break
			}
			n++
		}
		b, err := wire.AppendSubscribe(nil, wire.V5, &p)
		if err != nil { // filters were checked when registered
			c.session.cancelRequestLocked(r)
			c.cfg.logger.Error("mqttkeep: SUBSCRIBE not encodable", "err", err)
			return reqs
		}
		r.subs = append([]*subscription(nil), subs[:n]...)
		for _, sub := range r.subs {
			sub.state = subSent
		}
		l.writeRaw(b)
		l.probe()
		reqs = append(reqs, r)
		subs = subs[n:]
	}
	return reqs
}

// sendUnsubscribeLocked sends UNSUBSCRIBE for filters on l. s.mu held.
func (c *Client) sendUnsubscribeLocked(l *link, filters []string, subs []*subscription) *request {
	r := c.session.newRequest(l)
	if r == nil {
		return nil
	}
	b, err := wire.AppendUnsubscribe(nil, wire.V5, &wire.Unsubscribe{PacketID: r.id, Filters: filters})
	if err != nil {
		c.session.cancelRequestLocked(r)
		return nil
	}
	r.unsub, r.subs = filters, subs
	for _, sub := range subs {
		sub.state = subLeaving
	}
	l.writeRaw(b)
	l.probe()
	return r
}

// subAckLocked applies a SUBACK or UNSUBACK to the subscriptions of its
// request. s.mu held.
func (c *Client) subAckLocked(r *request, a wire.SubAck) {
	if a.Type == wire.UNSUBACK {
		for _, sub := range r.subs {
			switch {
			case sub.state != subLeaving:
			case c.draining:
				// Messages the broker had queued for this subscription
				// still come; Drain hands them to its handler.
				sub.state = subDrained
			default:
				c.retireLocked(sub, errUnsubscribed)
			}
		}
		return
	}
	for i, sub := range r.subs {
		if sub.state != subSent {
			continue // replaced or unsubscribed meanwhile
		}
		code := byte(0x80)
		if i < len(a.Reasons) {
			code = a.Reasons[i]
		}
		if code >= 0x80 {
			rc := &ReasonCodeError{Packet: "SUBACK", Code: code, Reason: a.Props.ReasonString}
			c.cfg.logger.Warn("mqttkeep: subscription refused", "filter", sub.filter, "err", rc)
			c.retireLocked(sub, fmt.Errorf("mqttkeep: subscribe to %q refused: %w", sub.filter, rc))
			continue
		}
		sub.state = subActive
		sub.signal()
	}
}

// errUnsubscribed is why a subscription ended with Unsubscribe.
var errUnsubscribed = errors.New("mqttkeep: unsubscribed")

// restoreLocked sends what the subscriptions need on a new link: every
// one when the broker lost the session, else only those not yet
// acknowledged; and the UNSUBSCRIBE of filters dropped while offline. It
// returns the requests to wait for. s.mu held.
func (c *Client) restoreLocked(l *link, sessionPresent bool) []*request {
	r := &c.subs
	r.idsInUse = l.caps.SubscriptionIDsAvailable
	var send []*subscription
	for _, sub := range r.all {
		if sub.state == subDrained {
			continue
		}
		if !sessionPresent || sub.state != subActive {
			sub.state = subWanted
			send = append(send, sub)
		}
	}
	reqs := c.sendSubscribesLocked(l, send)
	if sessionPresent && len(r.leaving) > 0 {
		if q := c.sendUnsubscribeLocked(l, r.leaving, nil); q != nil {
			reqs = append(reqs, q)
		}
	}
	r.leaving = nil
	return reqs
}

// Subscribe subscribes to a topic filter (wildcards + and #, and shared
// subscriptions $share/{group}/{filter}, are allowed) with the given
// maximum QoS, and hands matching messages to handler (see
// [MessageHandler]). opts set the MQTT v5 subscription options and how
// many handler calls may run at once.
//
// The subscription belongs to the client, not to one connection: it may
// be made before Connect or while reconnecting, is sent on the next
// connection if there is none, and is re-sent whenever a reconnect finds
// that the broker lost the session. Subscribing again to the same filter
// replaces the handler and options.
//
// Subscribe returns nil once the broker acknowledged the subscription; a
// refusal is a [*ReasonCodeError] (the filter is then forgotten). When ctx
// ends first, Subscribe returns ctx's error and the subscription stays:
// it is still sent and acknowledged on this or a later connection, and
// its handler gets what matches; [Client.Unsubscribe] drops it.
func (c *Client) Subscribe(ctx context.Context, filter string, qos byte, handler MessageHandler, opts ...SubscribeOption) error {
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

// Unsubscribe drops the subscriptions to filters and sends UNSUBSCRIBE for
// them. Messages the broker sent before its UNSUBACK still reach their
// handlers; messages already handed to a handler are handled. While there
// is no connection the filters are forgotten at once and the UNSUBSCRIBE
// is sent on the next connection that resumes the session. Unsubscribe
// returns when the broker acknowledged it (or at once while offline), or
// with ctx's error, the subscriptions then being dropped when the
// UNSUBACK comes. Filters that are not subscribed are sent all the same
// (the broker may hold them from an earlier process).
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
				return fmt.Errorf("mqttkeep: unsubscribe from %q: %w", f, &ReasonCodeError{Packet: "UNSUBACK", Code: code, Reason: a.Props.ReasonString})
			}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqttkeep: unsubscribe: %w", ctx.Err())
	case <-c.stopCh:
		return c.stopErr()
	}
}
