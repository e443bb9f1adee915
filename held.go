package mqttkeep

import (
	"slices"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// The held backlog. A broker that resumes a session sends what it queued
// for it right after CONNACK, before a program that calls Connect and then
// Subscribe (the order every paho and MQTT.js example uses) has registered
// its handlers. A received QoS 1/2 message that matches no subscription of
// the Client is therefore held, unacknowledged, and handed to the first
// subscription made later whose filter matches it. Nothing bounds the hold
// in time: a message whose subscription never comes stays unacknowledged
// until Close, and the broker sends it again to the next connection that
// resumes the session. The broker's own window bounds the memory: it
// sends at most Receive Maximum unacknowledged messages. Because MQTT
// acknowledges messages in the order they arrived, a held message also
// holds back the acknowledgements of the messages after it; a stale
// subscription that an earlier process left in the session is dropped with
// Unsubscribe (its held messages are then acknowledged unhandled and
// counted in Stats.InUnsubscribed), or handled with WithDefaultHandler.
//
// Messages that match a filter this Client unsubscribed from (a broker
// may still send some after its UNSUBACK) are not held: they are what the
// program asked not to get.

// heldMsg is a received message waiting for a subscription.
type heldMsg struct {
	msg Message
	in  *inMsg
}

// maxUnwanted bounds the unsubscribed filters remembered.
const maxUnwanted = 1024

// holdLocked holds a QoS 1/2 message that matches no subscription. s.mu
// held.
func (c *Client) holdLocked(p *wire.Publish, m *inMsg) {
	h := &heldMsg{in: m}
	messageFromPublish(&h.msg, p)
	m.pending++ // released by a subscription, an Unsubscribe or Close
	c.held = append(c.held, h)
	c.cfg.logger.Debug("mqttkeep: message held for a subscription not made yet", "topic", p.Topic, "qos", p.QoS)
	if l := c.session.link; l != nil && !l.heldWarned && len(c.held) >= int(c.cfg.receiveMaximum) {
		l.heldWarned = true
		c.cfg.logger.Warn("mqttkeep: messages held for subscriptions this client has not made fill the receive window; "+
			"Subscribe to a matching filter, Unsubscribe the stale one, or set WithDefaultHandler",
			"held", len(c.held), "topic", p.Topic)
	}
}

// releaseHeldLocked hands sub the held messages its filter matches, in
// the order they arrived. s.mu held.
func (c *Client) releaseHeldLocked(sub *subscription) {
	if len(c.held) == 0 {
		return
	}
	c.held = slices.DeleteFunc(c.held, func(h *heldMsg) bool {
		if !matchTopic(sub.filter, h.msg.Topic) {
			return false
		}
		c.enqueueHeldLocked(sub, h)
		return true
	})
}

// enqueueHeldLocked queues a held message on sub's lane; the hold ends
// once the delivery holds the message. s.mu held.
func (c *Client) enqueueHeldLocked(sub *subscription, h *heldMsg) {
	d := &delivery{c: c, in: h.in, lane: sub.lane, msg: h.msg}
	d.msg.delivery = d
	d.msg.SubscriptionFilter = sub.filter
	h.in.pending++
	c.pushLocked(sub.lane, d)
	h.in.pending-- // the hold's own share; the delivery keeps it pending
}

// unsubscribedLocked remembers filters the program unsubscribed from and
// acknowledges the held messages they match, unhandled: the program said
// it does not want them. s.mu held.
func (c *Client) unsubscribedLocked(filters []string) {
	for _, f := range filters {
		if !slices.Contains(c.unwanted, f) {
			c.unwanted = append(c.unwanted, f)
		}
	}
	if n := len(c.unwanted) - maxUnwanted; n > 0 {
		c.unwanted = slices.Delete(c.unwanted, 0, n)
	}
	if len(c.held) == 0 {
		return
	}
	c.held = slices.DeleteFunc(c.held, func(h *heldMsg) bool {
		if !c.unwantedLocked(h.msg.Topic) {
			return false
		}
		c.stats.messagesUnroutable.Add(1)
		c.session.deliveryDoneLocked(h.in)
		return true
	})
}

// unwantedLocked reports whether topic matches a filter the program
// unsubscribed from. s.mu held.
func (c *Client) unwantedLocked(topic string) bool {
	for _, f := range c.unwanted {
		if matchTopic(f, topic) {
			return true
		}
	}
	return false
}

// abandonHeldLocked gives up every held message when the client stops or
// drains: none is acknowledged, so a broker that keeps the session sends
// them again, and the acknowledgements of later messages no longer wait
// for them. It returns how many there were. s.mu held.
func (c *Client) abandonHeldLocked() int {
	n := len(c.held)
	s := c.session
	for _, h := range c.held {
		s.abandonLocked(h.in)
	}
	c.held = nil
	if n > 0 && s.link != nil {
		s.flushAcksLocked(s.link)
	}
	return n
}
