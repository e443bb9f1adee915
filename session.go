package mqttkeep

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"
	"github.com/eclipse/paho.golang/paho/store/memory"
)

// sessionState is paho's in-memory session state, shared by every
// connection of a Client (so QoS 1/2 messages in flight survive a
// reconnect that resumes the session), with two changes.
//
// Acknowledgements: paho calls Ack for every received PUBLISH as soon as
// it is routed; here Ack hands the message to the client's message
// goroutine instead, which acknowledges a QoS 1/2 message only after its
// handlers returned. The broker's in-flight window (our Receive Maximum)
// then holds back further QoS 1/2 messages while handlers are behind, and
// paho's reader never waits for a handler.
//
// SUBSCRIBE and UNSUBSCRIBE packet identifiers are allocated here, from
// the top of the range down (see requests), instead of by paho.
type sessionState struct {
	*state.State
	store   *memory.Store // paho's client store: our QoS 1/2 PUBLISH and PUBREL in flight
	gen     atomic.Uint64 // increments with every CONNACK accepted
	deliver func(pb *packets.Publish, gen uint64)
	req     requests
}

func newSessionState(deliver func(*packets.Publish, uint64)) *sessionState {
	store := memory.New()
	return &sessionState{State: state.New(store, memory.New()), store: store, deliver: deliver}
}

// ConAckReceived starts a new connection generation.
func (s *sessionState) ConAckReceived(conn io.Writer, cp *packets.Connect, ca *packets.Connack) error {
	s.gen.Add(1)
	s.req.connected(true)
	return s.State.ConAckReceived(conn, cp, ca)
}

// ConnectionLost releases the SUBSCRIBE and UNSUBSCRIBE calls still
// waiting: no answer to them can come on another connection.
func (s *sessionState) ConnectionLost(dp *packets.Disconnect) error {
	s.req.connected(false)
	return s.State.ConnectionLost(dp)
}

// Close releases every waiting request and closes paho's state.
func (s *sessionState) Close() error {
	s.req.connected(false)
	return s.State.Close()
}

// AddToSession gives a SUBSCRIBE or UNSUBSCRIBE its packet identifier
// (see requests) and remembers resp for the answer; every other packet
// goes to paho's state.
func (s *sessionState) AddToSession(ctx context.Context, p session.Packet, resp chan<- packets.ControlPacket) error {
	switch p.Type() {
	case packets.SUBSCRIBE, packets.UNSUBSCRIBE:
		id, err := s.req.add(resp, s.publishIDs)
		if err != nil {
			return err
		}
		p.SetIdentifier(id)
		return nil
	}
	return s.State.AddToSession(ctx, p, resp)
}

// PacketReceived hands a SUBACK or UNSUBACK for one of our identifiers to
// its caller; paho's reader calls it (through session.SessionManager) for
// every packet with an identifier, and everything else goes to paho's
// state.
func (s *sessionState) PacketReceived(recv *packets.ControlPacket, pubChan chan<- *packets.Publish) error {
	var id uint16
	switch p := recv.Content.(type) {
	case *packets.Suback:
		id = p.PacketID
	case *packets.Unsuback:
		id = p.PacketID
	default:
		return s.State.PacketReceived(recv, pubChan)
	}
	if s.req.answer(id, *recv) {
		return nil
	}
	return s.State.PacketReceived(recv, pubChan) // unknown: paho logs and drops it
}

// publishIDs returns the identifiers of our QoS 1/2 PUBLISH (and PUBREL)
// packets in flight, which paho allocated.
func (s *sessionState) publishIDs() []uint16 {
	ids, _ := s.store.List() // the memory store never fails
	return ids
}

// Ack is called by paho on its router goroutine for every received
// PUBLISH, in order of arrival.
func (s *sessionState) Ack(pb *packets.Publish) error {
	s.deliver(pb, s.gen.Load())
	return nil
}

// ackHandled acknowledges a handled QoS 1/2 message, unless its connection
// has been replaced: the broker then re-sends it on the new connection
// (same packet identifier), and an acknowledgement from the old one could
// be taken for the new delivery.
func (s *sessionState) ackHandled(pb *packets.Publish, gen uint64) {
	if pb.QoS == 0 || gen != s.gen.Load() {
		return
	}
	_ = s.State.Ack(pb) // a write error also ends the connection
}

// requests tracks our SUBSCRIBE and UNSUBSCRIBE packets awaiting their
// SUBACK or UNSUBACK.
//
// It works around a mochi-mqtt v2.7.9 bug. MQTT keeps the packet
// identifiers of the two directions apart ([MQTT-2.2.1-3]: "currently
// unused" by the sender), but mochi keeps one in-flight map per client
// for both: processSubscribe and processUnsubscribe answer 0x91 (packet
// identifier in use) when our identifier equals that of a QoS 1/2
// PUBLISH mochi sent us and we have not yet acknowledged (which we do
// only after the handlers ran). paho, like mochi, allocates identifiers
// upwards from 1, so the two collide as soon as a few messages wait for
// a busy handler. Allocated from 65535 down, ours meet mochi's only after
// it sent some 65,000 QoS 1/2 messages on one session, and then only if
// the one at our identifier is still unacknowledged.
//
// QoS 1/2 PUBLISH identifiers stay paho's (ascending), and mochi has the
// same bug there: processPublish answers 0x91 when our identifier matches
// its PUBREC entry and, worse, deletes its own outbound in-flight entry
// when our PUBLISH reuses the identifier of a message it sent us (that
// message is lost if the link then drops before we acknowledge it). paho
// does not know our identifiers either, so its ascending counter could,
// after some 65,000 publishes, pick one of ours while its SUBACK is still
// due (SUBACK and PUBACK still reach the right caller: they differ by
// type). A full fix comes with the later rewrite of the session layer,
// which will allocate every identifier in one place.
type requests struct {
	mu      sync.Mutex
	up      bool                                    // between ConAckReceived and ConnectionLost
	waiting map[uint16]chan<- packets.ControlPacket // identifier → the caller's response channel
}

// add reserves the highest identifier that is neither waiting here nor
// among inUse, for resp. Like paho, it refuses while there is no
// connection.
func (r *requests) add(resp chan<- packets.ControlPacket, inUse func() []uint16) (uint16, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		return 0, session.ErrNoConnection
	}
	if r.waiting == nil {
		r.waiting = make(map[uint16]chan<- packets.ControlPacket)
	}
	busy := make(map[uint16]bool)
	for _, id := range inUse() {
		busy[id] = true
	}
	for id := uint16(65535); id > 0; id-- {
		if _, ok := r.waiting[id]; ok || busy[id] {
			continue
		}
		r.waiting[id] = resp
		return id, nil
	}
	return 0, session.ErrPacketIdentifiersExhausted
}

// answer passes the response for id to its caller and forgets id. It
// reports whether id was ours.
func (r *requests) answer(id uint16, recv packets.ControlPacket) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	resp, ok := r.waiting[id]
	if ok {
		delete(r.waiting, id)
		resp <- recv // buffered (paho's Subscribe and Unsubscribe), sent once
	}
	return ok
}

// connected records whether a connection is up. Either way the requests
// still waiting are released with a zero packet, which paho's Subscribe
// and Unsubscribe read as "connection lost" (paho does the same for its
// own requests when it closes).
func (r *requests) connected(up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.up = up
	for id, resp := range r.waiting {
		resp <- packets.ControlPacket{}
		delete(r.waiting, id)
	}
}
