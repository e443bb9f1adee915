package mqttkeep

import (
	"io"
	"sync/atomic"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// sessionState is paho's in-memory session state, shared by every
// connection of a Client (so QoS 1/2 messages in flight survive a
// reconnect that resumes the session), with one change: paho calls Ack for
// every received PUBLISH as soon as it is routed; here Ack hands the
// message to the client's message goroutine instead, which acknowledges a
// QoS 1/2 message only after its handlers returned. The broker's in-flight
// window (our Receive Maximum) then holds back further QoS 1/2 messages
// while handlers are behind, and paho's reader never waits for a handler.
type sessionState struct {
	*state.State
	gen     atomic.Uint64 // increments with every CONNACK accepted
	deliver func(pb *packets.Publish, gen uint64)
}

func newSessionState(deliver func(*packets.Publish, uint64)) *sessionState {
	return &sessionState{State: state.NewInMemory(), deliver: deliver}
}

// ConAckReceived starts a new connection generation.
func (s *sessionState) ConAckReceived(conn io.Writer, cp *packets.Connect, ca *packets.Connack) error {
	s.gen.Add(1)
	return s.State.ConAckReceived(conn, cp, ca)
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
