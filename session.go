package mqttkeep

import (
	"slices"
	"sync"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// session is the client's MQTT session state, which outlives every single
// connection: outbound messages (queued, in flight, released), packet
// identifiers, SUBSCRIBE/UNSUBSCRIBE requests, and inbound QoS 1/2
// messages not yet acknowledged. One mutex guards it together with the
// live link's send buffer, so that packets enter the stream in exactly the
// order the session decides. Nothing blocks while mu is held.
type session struct {
	c  *Client
	mu sync.Mutex

	link *link // the live connection, nil while there is none
	// lastRecv is when bytes last arrived on a link that has since been
	// detached (for Stats.LastReceived while there is none).
	lastRecv time.Time
	pumping  bool // link accepts queued messages (after subscriptions are restored)

	// Outbound messages. fifo holds accepted messages not yet written on
	// the live link, oldest first; inflight holds QoS 1/2 messages written
	// (or to be re-sent) and not yet completed.
	seq           uint64
	fifo          outList
	queuedBytes   int
	spaceWaiters  int
	space         chan struct{} // closed when the fifo shrinks and someone waits
	inflight      map[uint16]*outMsg
	inflightBytes int
	quota         int // QoS 1/2 PUBLISH packets the broker still accepts on this link

	// Packet identifiers are handed out downward from 65535, skipping every
	// one in use by us or by the broker's unacknowledged messages to us:
	// mochi v2.7.9 keeps one identifier map for both directions (see
	// allocID).
	nextID    uint16
	reserved  map[uint16]*outMsg  // identifiers of queued QoS 1/2 messages
	requests  map[uint16]*request // SUBSCRIBE and UNSUBSCRIBE awaiting their ack
	completed chan struct{}       // closed at the next completion, for Flush; nil when nobody waits

	// Inbound QoS 1/2 messages received and not yet acknowledged, by the
	// broker's packet identifier, and QoS 2 identifiers whose PUBREC was
	// sent (awaiting PUBREL): both are session state.
	inbound  map[uint16]*inMsg
	released map[uint16]struct{}

	persist persister // the store's steps (WithStore)
}

func newSession(c *Client) *session {
	return &session{c: c, nextID: 0xFFFF, space: make(chan struct{})}
}

// request is a SUBSCRIBE or UNSUBSCRIBE waiting for its SUBACK/UNSUBACK.
type request struct {
	id    uint16
	link  *link
	subs  []*subscription  // the subscriptions it was sent for
	unsub []string         // UNSUBSCRIBE: its filters
	reply chan wire.SubAck // buffered: one answer; closed if the link dies first
}

// idInUse reports whether packet identifier id is taken. s.mu held.
func (s *session) idInUse(id uint16) bool {
	if _, ok := s.inflight[id]; ok {
		return true
	}
	if _, ok := s.requests[id]; ok {
		return true
	}
	if _, ok := s.reserved[id]; ok {
		return true
	}
	// The broker's own identifiers: see the type's doc.
	if _, ok := s.inbound[id]; ok {
		return true
	}
	_, ok := s.released[id]
	return ok
}

// allocID returns a free packet identifier, or 0 when all 65,535 are in
// use. s.mu held.
//
// Identifiers go downward from 65535 while brokers count theirs upward
// from 1 (mochi and Mosquitto do): an identifier the broker hands out for
// a message to us after we chose ours cannot collide with ours until both
// ranges meet. That matters with mochi v2.7.9, which answers a SUBSCRIBE
// whose identifier equals one of its own unacknowledged messages with
// 0x91 and cancels its own in-flight message when a PUBLISH reuses one.
func (s *session) allocID() uint16 {
	for range 0xFFFF {
		id := s.nextID
		s.nextID--
		if s.nextID == 0 {
			s.nextID = 0xFFFF
		}
		if !s.idInUse(id) {
			return id
		}
	}
	return 0
}

// newRequest registers a SUBSCRIBE/UNSUBSCRIBE on link l. s.mu held.
func (s *session) newRequest(l *link) *request {
	id := s.allocID()
	if id == 0 {
		return nil
	}
	r := &request{id: id, link: l, reply: make(chan wire.SubAck, 1)}
	if s.requests == nil {
		s.requests = make(map[uint16]*request)
	}
	s.requests[id] = r
	return r
}

// cancelRequestLocked forgets r. s.mu held.
func (s *session) cancelRequestLocked(r *request) {
	if s.requests[r.id] == r {
		delete(s.requests, r.id)
	}
}

// subAckReceived completes the request a SUBACK/UNSUBACK answers; reader
// goroutine. A reply for an identifier nothing waits on is ignored.
func (s *session) subAckReceived(l *link, a wire.SubAck) {
	s.mu.Lock()
	r, ok := s.requests[a.PacketID]
	if !ok || r.link != l || (a.Type == wire.UNSUBACK) != (r.unsub != nil) {
		s.mu.Unlock()
		s.c.cfg.logger.Debug("mqttkeep: acknowledgement for an unknown packet identifier", "packet", wire.TypeName(a.Type), "id", a.PacketID)
		return
	}
	delete(s.requests, a.PacketID)
	s.c.subAckLocked(r, a)
	s.mu.Unlock()
	r.reply <- a
}

// detachLocked ends l's part in the session: requests written on it can no
// longer be answered (their subscriptions are sent again on the next
// link), and publishers waiting for room look again. s.mu held.
func (s *session) detachLocked(l *link) {
	if s.link != l {
		return
	}
	s.link, s.pumping = nil, false
	s.lastRecv = l.lastReceived()
	for id, r := range s.requests {
		if r.link != l {
			continue
		}
		delete(s.requests, id)
		for _, sub := range r.subs {
			switch sub.state {
			case subSent:
				sub.state = subWanted
			case subLeaving:
				s.c.retireLocked(sub, errUnsubscribed)
			}
		}
		for _, f := range r.unsub {
			if !slices.Contains(s.c.subs.leaving, f) {
				s.c.subs.leaving = append(s.c.subs.leaving, f)
			}
		}
		close(r.reply)
	}
	// A QoS 0 Publish waiting for room returns once its message is queued
	// for the next connection, as it would have if it came now.
	for o := s.fifo.head; o != nil; o = o.next {
		if o.pub.QoS == 0 && o.done != nil {
			o.own()
			o.caller = false
			close(o.done)
			o.done = nil
		}
	}
	s.wakeSpaceLocked()
}

// assignLocked gives o its sequence number and, for QoS 1/2, a packet
// identifier. s.mu held.
func (s *session) assignLocked(o *outMsg) error {
	if o.pub.QoS > 0 {
		id := s.allocID()
		if id == 0 {
			return errNoPacketID
		}
		o.pub.PacketID = id
		s.reserveIDLocked(id, o)
	}
	s.seq++
	o.seq = s.seq
	return nil
}

// reserveIDLocked marks a queued message's identifier as taken until it
// is in flight. s.mu held.
func (s *session) reserveIDLocked(id uint16, o *outMsg) {
	if s.reserved == nil {
		s.reserved = make(map[uint16]*outMsg)
	}
	s.reserved[id] = o
}

// releaseIDLocked frees a queued message's packet identifier. s.mu held.
func (s *session) releaseIDLocked(o *outMsg) {
	if o.pub.QoS > 0 && s.reserved[o.pub.PacketID] == o {
		delete(s.reserved, o.pub.PacketID)
	}
}
