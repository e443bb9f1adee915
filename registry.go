package mqttkeep

import (
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
	c.unwanted = slices.DeleteFunc(c.unwanted, func(f string) bool { return f == sub.filter })
	r.router.add(sub)
	r.all = append(r.all, sub)
	sub.state = subWanted
	c.releaseHeldLocked(sub)
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

// needsV5 names the MQTT 5 feature sub uses, or returns "".
func (sub *subscription) needsV5() string {
	o := sub.opts
	if o.NoLocal || o.RetainAsPublished || o.RetainHandling != 0 || sub.user != nil {
		return "subscription options (No Local, Retain As Published, Retain Handling, user properties)"
	}
	return ""
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
	if l.v == wire.V311 {
		subs = slices.DeleteFunc(slices.Clone(subs), func(sub *subscription) bool {
			if what := sub.needsV5(); what != "" {
				err := fmt.Errorf("mqttkeep: subscribe to %q: %w", sub.filter, errV311(what))
				c.cfg.logger.Warn("mqttkeep: subscription refused: the broker speaks MQTT 3.1.1", "filter", sub.filter, "err", err)
				c.retireLocked(sub, err)
				return true
			}
			return false
		})
	}
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
			if l.serverMaxPacket > 0 && n > 0 && wire.SubscribeSize(l.v, &p) > l.serverMaxPacket {
				p.Subscriptions = p.Subscriptions[:n]
				break
			}
			n++
		}
		b, err := wire.AppendSubscribe(nil, l.v, &p)
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
	b, err := wire.AppendUnsubscribe(nil, l.v, &wire.Unsubscribe{PacketID: r.id, Filters: filters})
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
			rc := &ReasonCodeError{Packet: "SUBACK", Code: ReasonCode(code), Reason: a.Props.ReasonString}
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
