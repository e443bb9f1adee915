package mqttkeep

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/eclipse/paho.golang/paho"
)

// subscription is one remembered topic filter.
type subscription struct {
	filter  string
	qos     byte
	handler MessageHandler
	seq     uint64 // registration order, for a stable re-subscribe order
}

// registry remembers subscriptions and their handlers across connections,
// so that they can be restored when the broker lost the session.
type registry struct {
	mu   sync.RWMutex
	seq  uint64
	subs map[string]subscription
}

// add remembers filter (replacing an earlier handler for the same filter)
// and returns what it replaced, for undo.
func (r *registry) add(filter string, qos byte, h MessageHandler) (prev subscription, existed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subs == nil {
		r.subs = make(map[string]subscription)
	}
	prev, existed = r.subs[filter]
	r.seq++
	r.subs[filter] = subscription{filter: filter, qos: qos, handler: h, seq: r.seq}
	return prev, existed
}

// undo reverts an add that the broker refused.
func (r *registry) undo(filter string, prev subscription, existed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if existed {
		r.subs[filter] = prev
	} else {
		delete(r.subs, filter)
	}
}

func (r *registry) remove(filters ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range filters {
		delete(r.subs, f)
	}
}

// snapshot returns every subscription in registration order.
func (r *registry) snapshot() []subscription {
	r.mu.RLock()
	out := make([]subscription, 0, len(r.subs))
	for _, s := range r.subs {
		out = append(out, s)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, bySeq)
	return out
}

// handlers appends to dst the handlers whose filter matches topic, in
// registration order.
func (r *registry) handlers(dst []subscription, topic string) []subscription {
	r.mu.RLock()
	for _, s := range r.subs {
		if matchTopic(s.filter, topic) {
			dst = append(dst, s)
		}
	}
	r.mu.RUnlock()
	if len(dst) > 1 {
		slices.SortFunc(dst, bySeq)
	}
	return dst
}

// bySeq orders subscriptions by registration.
func bySeq(a, b subscription) int { return cmp.Compare(a.seq, b.seq) }

// subackError turns paho's SUBACK result into an error naming each refused
// filter and carrying the first refusal as a *ReasonCodeError.
func subackError(sa *paho.Suback, opts []paho.SubscribeOptions, err error) error {
	if sa == nil {
		return fmt.Errorf("mqttkeep: subscribe: %w", mapPahoErr(err))
	}
	var errs []error
	for i, code := range sa.Reasons {
		if code < 0x80 {
			continue
		}
		rc := &ReasonCodeError{Packet: "SUBACK", Code: code}
		if sa.Properties != nil {
			rc.Reason = sa.Properties.ReasonString
		}
		filter := "?"
		if i < len(opts) {
			filter = opts[i].Topic
		}
		errs = append(errs, fmt.Errorf("filter %q: %w", filter, rc))
	}
	if len(errs) == 0 {
		return fmt.Errorf("mqttkeep: subscribe: %w", mapPahoErr(err))
	}
	return fmt.Errorf("mqttkeep: subscribe refused: %w", errors.Join(errs...))
}
