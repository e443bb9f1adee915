package mqttkeep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// States of an outbound message.
const (
	outQueued    = iota // in the fifo, not yet written on the live link
	outSent             // QoS 1/2 written, awaiting PUBACK or PUBREC
	outReleasing        // QoS 2 PUBREC received, being stored before PUBREL
	outReleased         // QoS 2 PUBREC received, PUBREL sent, awaiting PUBCOMP
	outDone             // completed (acknowledged, refused, discarded)
)

// outMsg is one accepted outbound message.
type outMsg struct {
	seq       uint64
	pub       wire.Publish // PacketID set at acceptance for QoS 1/2
	size      int          // what counts against the queue's byte limit
	wsize     int          // its PUBLISH packet's size
	state     int
	sent      bool // written at least once (a re-send carries DUP)
	persisted bool // in the store, or no store step needed: may be written
	stored    bool // has a record in the store, to remove once complete
	owned     bool // pub's payload and properties are copies of our own
	caller    bool // a Publish call waits for the outcome
	suspected int  // losses in a row whose bad packet named it (poison.go)

	prev, next *outMsg // fifo links

	done   chan struct{} // closed on completion; nil when nobody waits
	err    error         // why it did not complete, set before done closes
	reason byte          // the broker's reason code (PUBACK, PUBREC or PUBCOMP)
	result *PublishResult
}

// outList is an intrusive FIFO of outbound messages.
type outList struct {
	head, tail *outMsg
	n          int
}

func (q *outList) pushBack(o *outMsg) {
	o.prev, o.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = o
	} else {
		q.head = o
	}
	q.tail = o
	q.n++
}

func (q *outList) pushFront(o *outMsg) {
	o.prev, o.next = nil, q.head
	if q.head != nil {
		q.head.prev = o
	} else {
		q.tail = o
	}
	q.head = o
	q.n++
}

func (q *outList) remove(o *outMsg) {
	if o.prev != nil {
		o.prev.next = o.next
	} else {
		q.head = o.next
	}
	if o.next != nil {
		o.next.prev = o.prev
	} else {
		q.tail = o.prev
	}
	o.prev, o.next = nil, nil
	q.n--
}

// own makes o independent of the caller's buffers, so that the caller may
// reuse them while o waits or is re-sent.
func (o *outMsg) own() {
	if o.owned {
		return
	}
	o.owned = true
	p := &o.pub
	p.Payload = append([]byte(nil), p.Payload...)
	if p.Props.CorrelationData != nil {
		p.Props.CorrelationData = append([]byte(nil), p.Props.CorrelationData...)
	}
	p.Props.User = append([]wire.UserProperty(nil), p.Props.User...)
}

// complete ends o with the broker's reason code or an error, and wakes
// whoever waits. s.mu held.
func (s *session) completeLocked(o *outMsg, reason byte, err error) {
	if o.state == outDone {
		return
	}
	o.state, o.reason, o.err = outDone, reason, err
	o.pub.Payload = nil // free it; the result keeps what it needs
	s.releaseIDLocked(o)
	if o.stored && !errors.Is(err, errKeepStored) {
		o.stored = false
		s.persistLocked(persistOp{deletes: []uint64{keyOut | o.seq, keyReleased | o.seq}})
	}
	s.notifyCompletedLocked()
	if o.result != nil {
		o.result.finish(reason, err)
	}
	if o.done != nil {
		close(o.done)
	}
}

// notifyCompletedLocked wakes Flush, which waits for completions. s.mu
// held.
func (s *session) notifyCompletedLocked() {
	if s.completed != nil {
		close(s.completed)
		s.completed = nil
	}
}

// queueFullLocked reports whether one more message of size bytes would
// exceed the queue's limits. s.mu held.
func (s *session) queueFullLocked(size int) bool {
	cfg := s.c.cfg
	return s.fifo.n+1 > cfg.queueMessages || s.queuedBytes+size > cfg.queueBytes
}

// enqueueLocked appends o to the fifo. s.mu held.
func (s *session) enqueueLocked(o *outMsg) {
	o.state = outQueued
	s.fifo.pushBack(o)
	s.queuedBytes += o.size
}

// dequeueLocked takes o out of the fifo. s.mu held.
func (s *session) dequeueLocked(o *outMsg) {
	s.fifo.remove(o)
	s.queuedBytes -= o.size
	s.wakeSpaceLocked()
}

// wakeSpaceLocked tells publishers waiting for room in the fifo to look
// again. s.mu held.
func (s *session) wakeSpaceLocked() {
	if s.spaceWaiters > 0 {
		close(s.space)
		s.space = make(chan struct{})
	}
}

// canSendLocked reports whether o may be written on the live link now:
// the broker's Receive Maximum and our in-flight limits leave room for a
// QoS 1/2 message, and the send buffer has room. s.mu held.
func (s *session) canSendLocked(o *outMsg) bool {
	l := s.link
	if l == nil || !s.pumping || !l.hasRoom() || !o.persisted {
		return false
	}
	if o.pub.QoS == 0 {
		return true
	}
	if s.quota <= 0 {
		return false
	}
	if len(s.inflight) >= s.c.cfg.inflightMessages {
		return false
	}
	return len(s.inflight) == 0 || s.inflightBytes+o.wsize <= s.c.cfg.inflightBytes
}

// canSendQoS0Locked reports whether a QoS 0 message that needs no store
// step may be written on the live link now. s.mu held.
func (s *session) canSendQoS0Locked() bool {
	l := s.link
	return l != nil && s.pumping && l.hasRoom()
}

// writeQoS0Locked writes a QoS 0 message at once (canSendQoS0Locked said
// yes): it is then complete, unless this broker refuses it (its CONNACK
// limits). s.mu held.
func (s *session) writeQoS0Locked(p *wire.Publish, size int) error {
	l := s.link
	if err := l.checkLimits(p, size); err != nil {
		return err
	}
	l.writePublish(p, size)
	s.notifyCompletedLocked()
	return nil
}

// writeLocked writes o on the live link (canSendLocked said yes). A QoS 0
// message is then complete; a QoS 1/2 message is in flight. An error means
// this broker refuses o (its CONNACK limits): o is completed with it.
// s.mu held.
func (s *session) writeLocked(o *outMsg) {
	l := s.link
	if err := l.checkLimits(&o.pub, o.wsize); err != nil {
		if !o.caller && o.result == nil {
			s.c.stats.messagesDiscarded.Add(1)
			s.c.cfg.logger.Warn("mqttkeep: queued QoS 0 message discarded", "topic", o.pub.Topic, "err", err)
		}
		s.completeLocked(o, 0, err)
		return
	}
	o.pub.Dup = o.sent && o.pub.QoS > 0
	l.writePublish(&o.pub, o.wsize)
	o.sent = true
	if o.pub.QoS == 0 {
		s.completeLocked(o, 0, nil)
		return
	}
	o.state = outSent
	s.releaseIDLocked(o)
	if s.inflight == nil {
		s.inflight = make(map[uint16]*outMsg)
	}
	s.inflight[o.pub.PacketID] = o
	s.inflightBytes += o.wsize
	s.quota--
	l.probe()
}

// pumpLocked writes queued messages, oldest first, while the link takes
// them. s.mu held.
func (s *session) pumpLocked() {
	for o := s.fifo.head; o != nil; o = s.fifo.head {
		if !s.canSendLocked(o) {
			return
		}
		s.dequeueLocked(o)
		s.writeLocked(o)
	}
}

// finishInflightLocked removes a completed QoS 1/2 message and returns
// its slot of the broker's Receive Maximum. s.mu held.
func (s *session) finishInflightLocked(o *outMsg, reason byte, err error) {
	delete(s.inflight, o.pub.PacketID)
	s.inflightBytes -= o.wsize
	s.quota++
	s.completeLocked(o, reason, err)
}

// adoptLocked returns the queued message an acknowledgement belongs to
// when it is one that an earlier connection or process already sent and
// that waits to be sent again: a broker resuming the session may re-send
// its PUBREC (mochi v2.7.9 re-sends every PUBREC it holds) before the
// client re-sent the PUBLISH. The broker has the message, so it moves in
// flight and the acknowledgement applies to it; answering it as unknown
// (PUBREL 0x92) would make the broker drop its state and then deliver the
// re-sent PUBLISH a second time. nil when no such message exists. s.mu
// held.
func (s *session) adoptLocked(a wire.Ack) *outMsg {
	o := s.reserved[a.PacketID]
	if o == nil || !o.sent || o.state != outQueued ||
		!(a.Type == wire.PUBACK && o.pub.QoS == 1 || a.Type == wire.PUBREC && o.pub.QoS == 2) {
		return nil
	}
	s.dequeueLocked(o)
	o.state = outSent
	s.releaseIDLocked(o)
	if s.inflight == nil {
		s.inflight = make(map[uint16]*outMsg)
	}
	s.inflight[o.pub.PacketID] = o
	s.inflightBytes += o.wsize
	s.quota--
	return o
}

// ackReceived handles PUBACK, PUBREC and PUBCOMP for our messages, on the
// reader goroutine.
func (s *session) ackReceived(l *link, a wire.Ack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link != l {
		return
	}
	o := s.inflight[a.PacketID]
	if o == nil {
		o = s.adoptLocked(a)
	}
	switch a.Type {
	case wire.PUBACK:
		if o != nil && o.pub.QoS == 2 && o.state == outSent && l.v == wire.V311 {
			s.downgradedLocked(l, o)
			return
		}
		if o == nil || o.pub.QoS != 1 {
			s.c.cfg.logger.Debug("mqttkeep: PUBACK for an unknown packet identifier", "id", a.PacketID)
			return
		}
		s.finishInflightLocked(o, a.Reason, ackError("PUBACK", a))
	case wire.PUBREC:
		if o == nil || o.pub.QoS != 2 {
			// [MQTT-4.3.3]: answer an unknown identifier with 0x92.
			l.writeAck(wire.PUBREL, a.PacketID, 0x92)
			return
		}
		if a.Reason == 0x91 && o.pub.Dup {
			// mochi v2.7.9 answers a re-sent PUBLISH whose identifier it
			// holds past PUBREC with 0x91 "packet identifier in use"
			// instead of 0x00: it has the message; release it.
			s.c.cfg.logger.Debug("mqttkeep: PUBREC 0x91 for a re-sent QoS 2 message: the broker has it", "id", a.PacketID)
			a.Reason = 0
		}
		if a.Reason >= 0x80 {
			s.finishInflightLocked(o, a.Reason, ackError("PUBREC", a))
			return
		}
		if o.state == outReleasing {
			return // a PUBREC again while the first one's step is stored
		}
		if o.state == outSent {
			o.reason = a.Reason
			o.pub.Payload = nil // the broker has it; only the identifier is left
			s.inflightBytes -= o.wsize - wire.AckSize
			o.wsize = wire.AckSize
			if o.stored {
				// PUBREL only once "past PUBREC" is on disk: a restarted
				// process must not send this message again as a PUBLISH.
				o.state = outReleasing
				s.persistLocked(persistOp{puts: []Record{{Key: keyReleased | o.seq}}, durable: true, done: func(err error) {
					if o.state != outReleasing {
						return
					}
					o.state = outReleased
					if cur := s.link; err == nil && cur != nil && !cur.isLost() {
						cur.writeAck(wire.PUBREL, o.pub.PacketID, 0)
						cur.probe()
					}
				}})
				return
			}
			o.state = outReleased
		}
		l.writeAck(wire.PUBREL, a.PacketID, 0)
		l.probe()
	case wire.PUBCOMP:
		if o == nil || o.state != outReleased {
			s.c.cfg.logger.Debug("mqttkeep: PUBCOMP for an unknown packet identifier", "id", a.PacketID)
			return
		}
		reason := o.reason // PUBREC's code (0x10 "no matching subscribers" is kept)
		if a.Reason >= 0x80 {
			reason = a.Reason
		}
		s.finishInflightLocked(o, reason, ackError("PUBCOMP", a))
	}
	s.pumpLocked()
}

// downgradedLocked handles a 3.1.1 broker that answered a QoS 2 PUBLISH
// with PUBACK: it took the message at QoS 1 (RabbitMQ 3.10 does, having no
// QoS 2). The message is complete — delivered at least once, not exactly
// once — and fails with ErrNotSupported saying so; the broker's maximum QoS
// is 1 from then on, so that later QoS 2 publishes are refused at call
// time (ErrInvalidQoS). s.mu held.
func (s *session) downgradedLocked(l *link, o *outMsg) {
	s.c.qos1Only.Store(true)
	if l.maxQoS > 1 {
		l.maxQoS = 1
		s.c.mu.Lock()
		s.c.caps.MaximumQoS = 1
		s.c.mu.Unlock()
		s.c.cfg.logger.Warn("mqttkeep: the broker answered a QoS 2 message with PUBACK: it supports QoS 1 at most", "topic", o.pub.Topic)
	}
	s.finishInflightLocked(o, 0, fmt.Errorf("%w: the broker acknowledged the QoS 2 message with PUBACK, taking it at QoS 1 (delivered at least once, maybe more)", ErrNotSupported))
}

// ackError is the error for an acknowledgement with a failure code, else
// nil.
func ackError(packet string, a wire.Ack) error {
	if a.Reason < 0x80 {
		return nil
	}
	return &ReasonCodeError{Packet: packet, Code: ReasonCode(a.Reason), Reason: a.Props.ReasonString}
}

// resumeLocked prepares the outbound state for a new link. With the
// session kept by the broker, every message in flight is re-sent in its
// original order with its original identifier (DUP set), and every
// released QoS 2 message gets its PUBREL again. Without it, the broker
// forgot them: a released QoS 2 message had been accepted (the broker
// sent PUBREC), so it is complete; every other one goes back to the head
// of the fifo, in order, to be sent as new. s.mu held.
func (s *session) resumeLocked(l *link, sessionPresent bool) {
	ordered := make([]*outMsg, 0, len(s.inflight))
	for _, o := range s.inflight {
		ordered = append(ordered, o)
	}
	sortBySeq(ordered)
	s.quota = int(l.serverReceiveMax)
	if !sessionPresent {
		for i := len(ordered) - 1; i >= 0; i-- {
			o := ordered[i]
			delete(s.inflight, o.pub.PacketID)
			s.inflightBytes -= o.wsize
			if o.state == outReleased || o.state == outReleasing {
				s.completeLocked(o, o.reason, nil)
				continue
			}
			o.sent = false
			o.state = outQueued
			s.fifo.pushFront(o)
			s.queuedBytes += o.size
		}
		return
	}
	for _, o := range ordered {
		if l.v == wire.V311 && o.pub.Props.Set != 0 && o.state == outSent {
			// Sent on an MQTT 5 connection before; 3.1.1 cannot carry it.
			delete(s.inflight, o.pub.PacketID)
			s.inflightBytes -= o.wsize
			s.completeLocked(o, 0, l.checkLimits(&o.pub, o.wsize))
			continue
		}
		if o.state == outReleased || o.state == outReleasing {
			if o.state == outReleasing {
				continue // its PUBREL goes once stored, on the link then live
			}
			l.writeAck(wire.PUBREL, o.pub.PacketID, 0)
		} else {
			o.pub.Dup = true
			l.writePublish(&o.pub, o.wsize)
		}
		s.quota-- // re-sent messages use the quota too, and may take it below zero
	}
	if len(ordered) > 0 {
		l.probe()
	}
}

// sortBySeq orders messages by acceptance.
func sortBySeq(os []*outMsg) {
	slices.SortFunc(os, func(a, b *outMsg) int { return cmp.Compare(a.seq, b.seq) })
}

// discardAllLocked ends every outbound message when the client stops for
// good: waiting callers get err, queued QoS 0 messages nobody waits for
// are counted as discarded. s.mu held.
func (s *session) discardAllLocked(err error) {
	for o := s.fifo.head; o != nil; o = s.fifo.head {
		s.dequeueLocked(o)
		if !o.caller && o.result == nil && !o.stored {
			s.c.stats.messagesDiscarded.Add(1)
		}
		s.completeLocked(o, 0, keepStored(o, err))
	}
	for id, o := range s.inflight {
		delete(s.inflight, id)
		s.completeLocked(o, 0, keepStored(o, err))
	}
	s.inflightBytes = 0
}

// errKeepStored marks a completion that leaves the message in the store:
// the client stopped, and a later process with the store sends it.
var errKeepStored = errors.New("it stays in the store and is sent by the next process that opens it")

// keepStored returns err, marked so that a stored message stays stored.
func keepStored(o *outMsg, err error) error {
	if o.stored {
		return fmt.Errorf("%w (%w)", err, errKeepStored)
	}
	return err
}

// errNoPacketID is returned when all 65,535 packet identifiers are in use.
var errNoPacketID = fmt.Errorf("%w: all 65535 packet identifiers are in use", ErrQueueFull)

// newOut validates m and builds its outbound message.
func (c *Client) newOut(m *Message) (*outMsg, error) {
	p, size, err := m.toPublish()
	if err != nil {
		return nil, err
	}
	if p.Props.Set != 0 && c.speaks311() {
		return nil, fmt.Errorf("mqttkeep: publish to %q: %w", m.Topic, errV311("message properties"))
	}
	return newOutMsg(p, size), nil
}

// newOutMsg is the outbound message for p, whose PUBLISH takes size
// bytes.
func newOutMsg(p wire.Publish, size int) *outMsg {
	return &outMsg{pub: p, wsize: size, size: messageSize(&p), persisted: true}
}

// waitSpaceLocked waits for room in the fifo; it returns with s.mu held.
func (s *session) waitSpaceLocked(ctx context.Context, stop <-chan struct{}) error {
	ch := s.space
	s.spaceWaiters++
	s.mu.Unlock()
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = ctx.Err()
	case <-stop:
		err = ErrClosed
	}
	s.mu.Lock()
	s.spaceWaiters--
	return err
}

// pendingUpToLocked reports whether a message with sequence number <= seq
// is still queued or in flight. s.mu held.
func (s *session) pendingUpToLocked(seq uint64) bool {
	for o := s.fifo.head; o != nil; o = o.next {
		if o.seq <= seq {
			return true
		}
	}
	for _, o := range s.inflight {
		if o.seq <= seq {
			return true
		}
	}
	return false
}

// completedCh returns a channel closed at the next completion. s.mu held.
func (s *session) completedCh() <-chan struct{} {
	if s.completed == nil {
		s.completed = make(chan struct{})
	}
	return s.completed
}
