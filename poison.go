package mqttkeep

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mqttkeep/mqttkeep/internal/wire"
)

// Poison loops. A broker that cannot handle one of the client's messages
// may answer it with a packet the client must refuse: the echo of the
// client's own publish on a topic it subscribes to, forwarded with a
// property the broker encodes wrongly (the Eclipse Paho test broker writes
// wrong lengths for non-ASCII strings), or a broken acknowledgement of it.
// The client disconnects (0x81 or 0x82), reconnects, sends the message
// again because it was never acknowledged — and the same happens on every
// connection, resumed session or new. Two rules end it:
//
//   - A connection the broker ended by breaking the protocol does not
//     reset the backoff, whatever came before: such losses back off like
//     failed attempts instead of reconnecting at once.
//   - A message in flight that the bad packet names — a PUBLISH on the
//     message's topic, or an acknowledgement of its packet identifier — is
//     a suspect of that loss. A message that is a suspect of the limit of
//     losses in a row (ReconnectPolicy.MaxFailedResumes) is given up: its Publish or
//     PublishResult fails with ErrMessagePoisoned, it is counted in
//     Stats.OutPoisoned, taken out of the store, never sent again,
//     and the DisconnectEvent of that loss carries ErrMessagePoisoned
//     beside the cause.

// ErrMessagePoisoned fails a QoS 1/2 message whose answers broke the protocol
// on MaxFailedResumes connections in a row; it may have arrived.
var ErrMessagePoisoned = errors.New("mqttkeep: message given up: the broker's answer to it broke the protocol on every connection")

// brokerFault reports a connection that ended because the broker broke
// the protocol.
func brokerFault(err error) bool {
	return errors.Is(err, ErrMalformedPacket) || errors.Is(err, ErrProtocolViolation) || errors.Is(err, ErrPacketTooLarge)
}

// badPacket is the packet whose refusal ended a link, as far as the
// client can still read it: its type and the start of its body.
type badPacket struct {
	typ  byte
	head []byte // at most badPacketHead bytes of the body
}

// badPacketHead is how much of a refused packet's body is kept: enough
// for a topic of any usual length, or a packet identifier.
const badPacketHead = 512

func newBadPacket(typ byte, body []byte) *badPacket {
	return &badPacket{typ: typ, head: append([]byte(nil), body[:min(len(body), badPacketHead)]...)}
}

// names reports whether the refused packet is about o: a PUBLISH on o's
// topic, or an acknowledgement of o's packet identifier.
func (b *badPacket) names(o *outMsg) bool {
	if b == nil || len(b.head) < 2 {
		return false
	}
	switch b.typ {
	case wire.PUBLISH:
		n := int(binary.BigEndian.Uint16(b.head))
		return n > 0 && 2+n <= len(b.head) && string(b.head[2:2+n]) == o.pub.Topic
	case wire.PUBACK, wire.PUBREC, wire.PUBCOMP:
		return binary.BigEndian.Uint16(b.head) == o.pub.PacketID
	}
	return false
}

// suspectsLocked updates the count of losses in a row that each message in
// flight is a suspect of, after l was lost, and gives up those that reach
// the limit. It returns ErrMessagePoisoned, naming them, when it gave any
// up. Supervisor, after l's goroutines ended; s.mu held.
func (s *session) suspectsLocked(l *link) error {
	limit := s.c.cfg.poisonLimit
	fault := brokerFault(l.cause)
	var given []*outMsg
	for _, o := range s.inflight {
		if !fault || o.state != outSent || !l.bad.names(o) {
			o.suspected = 0
			continue
		}
		o.suspected++
		if limit > 0 && o.suspected >= limit {
			given = append(given, o)
		}
	}
	if len(given) == 0 {
		return nil
	}
	sortBySeq(given)
	topics := make([]string, len(given))
	for i, o := range given {
		topics[i] = o.pub.Topic
		delete(s.inflight, o.pub.PacketID)
		s.inflightBytes -= o.wsize
		s.c.stats.messagesPoisoned.Add(1)
		s.completeLocked(o, 0, fmt.Errorf("%w (%d connections in a row: %w)", ErrMessagePoisoned, o.suspected, l.cause))
	}
	err := fmt.Errorf("%w: %d message(s), to %q", ErrMessagePoisoned, len(given), topics)
	s.c.cfg.logger.Warn("mqttkeep: messages given up: the broker's answer to them broke the protocol on every connection",
		"count", len(given), "topics", topics, "connections", limit, "err", l.cause)
	return err
}
