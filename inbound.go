package mqttkeep

import (
	"errors"
	"fmt"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

var (
	errReceiveMaxExceeded = errors.New("more unacknowledged QoS 1/2 messages than our Receive Maximum")
	errTopicAliasInvalid  = errors.New("topic alias invalid")
)

// inMsg is a received QoS 1/2 message until its acknowledgement is sent:
// the PUBACK (QoS 1) or PUBREC (QoS 2) leaves once every handler it was
// given to is done with it, in the order the messages arrived
// ([MQTT-4.6.0-2]).
type inMsg struct {
	id         uint16
	qos        byte
	pending    int   // deliveries not yet done
	link       *link // the link whose acknowledgement order holds it
	ready      bool  // every delivery done: acknowledge when its turn comes
	persisting bool  // QoS 2: being recorded in the store before its PUBREC
	persisted  bool  // QoS 2: recorded (or no store)
	superseded bool  // the broker reused its identifier for a new message: never acknowledged
	abandoned  bool  // given up by Close or Drain before any handler had it: never acknowledged
}

// unacked reports a message that is never acknowledged: its place in the
// acknowledgement order holds nothing back.
func (m *inMsg) unacked() bool { return m.superseded || m.abandoned }

// ackQueue is a link's inbound QoS 1/2 messages in arrival order.
type ackQueue struct {
	q    []*inMsg
	head int
}

func (a *ackQueue) push(m *inMsg) { a.q = append(a.q, m) }
func (a *ackQueue) len() int      { return len(a.q) - a.head }

// flushAcksLocked sends the acknowledgements whose turn has come. s.mu
// held.
func (s *session) flushAcksLocked(l *link) {
	a := &l.acks
	for a.head < len(a.q) && (a.q[a.head].ready || a.q[a.head].unacked()) {
		m := a.q[a.head]
		if m.qos == 2 && !m.persisted && !m.unacked() {
			if s.c.cfg.store == nil {
				m.persisted = true
			} else {
				// Recorded on disk before its PUBREC, so that a restarted
				// process does not hand it out again; later
				// acknowledgements wait their turn meanwhile.
				if !m.persisting {
					m.persisting = true
					s.persistLocked(persistOp{puts: []Record{{Key: keyInbound | uint64(m.id)}}, durable: true, done: func(error) {
						m.persisted = true
						if m.superseded {
							// Superseded while being recorded: take the
							// record back unless a newer message with
							// this identifier holds it now.
							_, rel := s.released[m.id]
							if _, in := s.inbound[m.id]; !rel && !in {
								s.persistLocked(persistOp{deletes: []uint64{keyInbound | uint64(m.id)}})
							}
						}
						if cur := s.link; cur != nil && m.link == cur {
							s.flushAcksLocked(cur)
						}
					}})
				}
				break
			}
		}
		a.q[a.head] = nil
		a.head++
		s.acknowledgeLocked(l, m)
	}
	a.q, a.head = compact(a.q, a.head)
	l.windowFreedLocked()
}

// acknowledgeLocked sends m's PUBACK or PUBREC and updates the session.
// s.mu held.
func (s *session) acknowledgeLocked(l *link, m *inMsg) {
	if s.inbound[m.id] == m {
		delete(s.inbound, m.id)
		s.c.progressedLocked()
	}
	if m.unacked() {
		return // superseded: it would be taken for the new message's
	}
	if m.qos == 1 {
		l.writeAck(wire.PUBACK, m.id, 0)
		return
	}
	// QoS 2: remember that it was handled, so a re-sent PUBLISH with this
	// identifier is not handled again before PUBREL.
	if s.released == nil {
		s.released = make(map[uint16]struct{})
	}
	s.released[m.id] = struct{}{}
	l.writeAck(wire.PUBREC, m.id, 0)
}

// deliveryDone marks one delivery of m done; m is acknowledged when all
// are. Any goroutine. Once the client stops (Close, or a final refusal)
// the acknowledgement cannot be sent any more: it returns why.
func (s *session) deliveryDone(m *inMsg) error {
	if m == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveryDoneLocked(m)
	if s.c.stopping {
		return fmt.Errorf("%w: the acknowledgement was not sent; a broker that keeps the session sends the message again", s.c.stopErr())
	}
	return nil
}

// deliveryDoneLocked is deliveryDone with s.mu held.
func (s *session) deliveryDoneLocked(m *inMsg) {
	m.pending--
	if m.pending > 0 || m.ready {
		return
	}
	m.ready = true
	if l := m.link; l != nil && l == s.link {
		s.flushAcksLocked(l)
	}
}

// abandonLocked gives m up unacknowledged: the broker sends it again if
// the session survives. s.mu held.
func (s *session) abandonLocked(m *inMsg) {
	m.abandoned = true
	if s.inbound[m.id] == m {
		delete(s.inbound, m.id)
		s.c.progressedLocked()
	}
}

// releaseReceived answers a PUBREL for an inbound QoS 2 message with
// PUBCOMP; reader goroutine.
func (s *session) releaseReceived(l *link, a wire.Ack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link != l {
		return
	}
	reason := byte(0)
	if _, ok := s.released[a.PacketID]; ok {
		delete(s.released, a.PacketID)
		if s.c.cfg.store != nil {
			s.persistLocked(persistOp{deletes: []uint64{keyInbound | uint64(a.PacketID)}})
		}
	} else if _, handling := s.inbound[a.PacketID]; !handling {
		reason = 0x92 // packet identifier not found
	}
	l.writeAck(wire.PUBCOMP, a.PacketID, reason)
}

// publishReceived handles a PUBLISH on the reader goroutine: it resolves a
// topic alias, recognises a re-sent QoS 1/2 message that is still being
// handled (or, QoS 2, already handled), routes the message to its
// subscriptions, and never waits for a handler.
func (c *Client) publishReceived(l *link, flags byte, body []byte) error {
	var p wire.Publish
	if err := wire.DecodePublish(l.v, flags, body, &p); err != nil {
		return err
	}
	if err := l.resolveAlias(&p); err != nil {
		return err
	}
	c.stats.messagesIn.Add(1)
	s := c.session
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link != l {
		return nil
	}
	var m *inMsg
	if p.QoS > 0 {
		if !p.Dup {
			s.supersedeLocked(p.PacketID)
		}
		if _, ok := s.released[p.PacketID]; ok && p.QoS == 2 {
			// Handled and PUBREC sent; the broker did not get it yet.
			c.stats.messagesRedelivered.Add(1)
			l.writeAck(wire.PUBREC, p.PacketID, 0)
			return nil
		}
		if old, ok := s.inbound[p.PacketID]; ok && old.qos == p.QoS {
			// Re-sent after a reconnect while its handlers still run:
			// acknowledge it on this link once they are done, in this
			// link's order, and don't hand it out twice.
			c.stats.messagesRedelivered.Add(1)
			if old.link != l {
				old.link = l
				l.acks.push(old)
				l.checkWindowLocked()
				if old.ready {
					s.flushAcksLocked(l)
				}
			}
			return nil
		}
		if c.drainKeep {
			// Drain keeps the session: the broker sends it again to the
			// next connection that resumes it.
			c.stats.messagesAbandoned.Add(1)
			return nil
		}
		m = &inMsg{id: p.PacketID, qos: p.QoS, link: l}
		if s.inbound == nil {
			s.inbound = make(map[uint16]*inMsg)
		}
		s.inbound[p.PacketID] = m
		l.acks.push(m)
		l.checkWindowLocked()
	}
	if p.QoS == 0 && c.drainKeep {
		c.stats.messagesAbandoned.Add(1)
		return nil
	}
	c.routeLocked(&p, m)
	if m != nil && m.pending == 0 {
		m.ready = true
		s.flushAcksLocked(l)
	}
	return nil
}

// supersedeLocked forgets what packet identifier id carried before, when
// a PUBLISH arrives with it and without DUP. A re-delivery always carries
// DUP ([MQTT-3.3.1-1]), so this is a new message and the broker is done
// with the earlier one: it lost that state (Mosquitto restarted from a
// database saved before the earlier message was sent does this, and then
// reuses the identifier). Taking the new message for a re-send would
// acknowledge it without a handler; the earlier one, if its handlers
// still run, is not acknowledged when they finish. s.mu held.
func (s *session) supersedeLocked(id uint16) {
	if old, ok := s.inbound[id]; ok {
		old.superseded = true
		delete(s.inbound, id)
		s.c.progressedLocked()
	}
	if _, ok := s.released[id]; ok {
		delete(s.released, id)
		if s.c.cfg.store != nil {
			s.persistLocked(persistOp{deletes: []uint64{keyInbound | uint64(id)}})
		}
	}
}

// resolveAlias applies the Topic Alias of a received PUBLISH; reader
// goroutine.
func (l *link) resolveAlias(p *wire.Publish) error {
	if !p.Props.Has(wire.PropTopicAlias) {
		return nil
	}
	a := p.Props.TopicAlias
	if int(a) > int(l.c.cfg.topicAliasMaximum) {
		return fmt.Errorf("%w: %w: alias %d, our Topic Alias Maximum is %d", wire.ErrProtocol, errTopicAliasInvalid, a, l.c.cfg.topicAliasMaximum)
	}
	if p.Topic != "" {
		if l.aliasIn == nil {
			l.aliasIn = make(map[uint16]string)
		}
		l.aliasIn[a] = p.Topic
		return nil
	}
	t, ok := l.aliasIn[a]
	if !ok && p.Dup {
		// mochi v2.7.9 re-sends a message it had sent with an alias on the
		// connection before, alias only, although aliases end with their
		// connection ([MQTT-3.3.2-7]); the topic is the one the alias had
		// there.
		if t, ok = l.prevAliasIn[a]; ok {
			l.c.cfg.logger.Debug("mqttkeep: broker re-sent a message with a topic alias of the previous connection", "alias", a, "topic", t)
		}
	}
	if !ok {
		return fmt.Errorf("%w: %w: alias %d was never set on this connection", wire.ErrProtocol, errTopicAliasInvalid, a)
	}
	p.Topic = t
	return nil
}

// sessionLostLocked forgets the inbound session state when the broker
// did not keep the session: the broker will not re-send what we had not
// acknowledged, nor expect PUBCOMP for what we had. s.mu held.
func (s *session) forgetInboundLocked() {
	for id, m := range s.inbound {
		m.link = nil // its handlers may still finish; nothing is sent
		delete(s.inbound, id)
	}
	s.c.progressedLocked()
	if s.c.cfg.store != nil && len(s.released) > 0 {
		var dels []uint64
		for id := range s.released {
			dels = append(dels, keyInbound|uint64(id))
		}
		s.persistLocked(persistOp{deletes: dels})
	}
	clear(s.released)
}
