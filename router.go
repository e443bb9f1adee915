package mqttkeep

import (
	"strings"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// router finds the subscriptions a received message belongs to: by the
// Subscription Identifiers the broker put in the PUBLISH when it supports
// them (one lookup per identifier), else by matching the topic against a
// trie of the filters (one step per topic level). Its cost does not grow
// with the number of subscriptions. Guarded by s.mu.
type router struct {
	byID     map[int]*subscription
	byFilter map[string]*subscription
	root     trieNode
}

type trieNode struct {
	children map[string]*trieNode
	plus     *trieNode       // "+" at this level
	hash     []*subscription // "#" at this level
	subs     []*subscription // filters ending at this level
}

// filterLevels returns the levels a filter matches on: a shared
// subscription ($share/{group}/{filter}) matches on its filter part.
func filterLevels(filter string) []string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, filter, _ = strings.Cut(rest, "/")
	}
	return strings.Split(filter, "/")
}

func (r *router) add(s *subscription) {
	if r.byFilter == nil {
		r.byFilter = make(map[string]*subscription)
		r.byID = make(map[int]*subscription)
	}
	r.byFilter[s.filter] = s
	r.byID[s.id] = s
	n := &r.root
	for _, level := range filterLevels(s.filter) {
		switch level {
		case "#":
			n.hash = append(n.hash, s)
			return
		case "+":
			if n.plus == nil {
				n.plus = &trieNode{}
			}
			n = n.plus
		default:
			if n.children == nil {
				n.children = make(map[string]*trieNode)
			}
			c := n.children[level]
			if c == nil {
				c = &trieNode{}
				n.children[level] = c
			}
			n = c
		}
	}
	n.subs = append(n.subs, s)
}

func (r *router) remove(s *subscription) {
	if r.byFilter[s.filter] == s {
		delete(r.byFilter, s.filter)
	}
	if r.byID[s.id] == s {
		delete(r.byID, s.id)
	}
	r.root.remove(filterLevels(s.filter), s)
}

// remove deletes s below n and reports whether n is then empty.
func (n *trieNode) remove(levels []string, s *subscription) bool {
	if len(levels) == 0 {
		n.subs = without(n.subs, s)
	} else {
		switch level := levels[0]; level {
		case "#":
			n.hash = without(n.hash, s)
		case "+":
			if n.plus != nil && n.plus.remove(levels[1:], s) {
				n.plus = nil
			}
		default:
			if c := n.children[level]; c != nil && c.remove(levels[1:], s) {
				delete(n.children, level)
			}
		}
	}
	return len(n.subs) == 0 && len(n.hash) == 0 && n.plus == nil && len(n.children) == 0
}

func without(list []*subscription, s *subscription) []*subscription {
	for i, x := range list {
		if x == s {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

// match appends to dst every subscription whose filter matches topic. A
// topic starting with "$" is not matched by a leading wildcard (MQTT v5
// 4.7.2).
func (r *router) match(dst []*subscription, topic string) []*subscription {
	dollar := strings.HasPrefix(topic, "$")
	return r.root.match(dst, topic, true, dollar)
}

func (n *trieNode) match(dst []*subscription, topic string, first, dollar bool) []*subscription {
	if !(first && dollar) {
		dst = append(dst, n.hash...) // "#" matches this level and all below, and the parent
	}
	level, rest, more := strings.Cut(topic, "/")
	if c := n.children[level]; c != nil {
		dst = c.matchRest(dst, rest, more)
	}
	if n.plus != nil && !(first && dollar) {
		dst = n.plus.matchRest(dst, rest, more)
	}
	return dst
}

// matchRest continues below a node that matched a level.
func (n *trieNode) matchRest(dst []*subscription, rest string, more bool) []*subscription {
	if !more {
		dst = append(dst, n.subs...)
		return append(dst, n.hash...) // "a/#" matches "a"
	}
	return n.match(dst, rest, false, false)
}

// targetsLocked returns the subscriptions a message belongs to. When the
// broker supports Subscription Identifiers every subscription has one,
// and a PUBLISH names the ones it was sent for: a broker that sends one
// copy per matching subscription (Mosquitto) then reaches each handler
// exactly once. A message that names none of ours is matched by topic
// against every filter: it comes from a broker without identifiers, is a
// retained message from mochi v2.7.9 (which leaves them out,
// [MQTT-3.3.4-3]), or belongs to a subscription an earlier process made
// in a session this one resumed — typically to the same filter, whose
// handler this process registered again. s.mu held.
func (c *Client) targetsLocked(p *wire.Publish) []*subscription {
	r := &c.subs.router
	dst := c.subs.scratch[:0]
	for _, id := range p.Props.SubscriptionIDs {
		// An identifier that is not ours, or whose filter does not match,
		// belongs to a subscription an earlier process left in this
		// session.
		if sub := r.byID[id]; sub != nil && !containsSub(dst, sub) && matchTopic(sub.filter, p.Topic) {
			dst = append(dst, sub)
		}
	}
	if len(dst) == 0 {
		dst = r.match(dst, p.Topic)
	}
	c.subs.scratch = dst
	return dst
}

func containsSub(list []*subscription, s *subscription) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
