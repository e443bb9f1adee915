package mqttkeep

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Client's counters since New, taken by
// [Client.Stats]. Counters cover every connection the client made.
type Stats struct {
	State State // connection state when the snapshot was taken

	Connects    uint64 // successful CONNACKs
	Disconnects uint64 // connections lost or closed after a successful CONNACK

	// ConnectedSince is when the current connection's CONNACK arrived;
	// zero while there is no connection.
	ConnectedSince time.Time
	// LastReceived is when bytes from the broker last arrived, on the
	// current connection or the last one; zero before the first.
	LastReceived time.Time
	// LastPingResponse is when the latest PINGRESP arrived (the one
	// PingRTTLast measures); zero before the first.
	LastPingResponse time.Time

	// KeepAlive is the keep alive in force on the current (or last)
	// connection: the broker's Server Keep Alive when it sent one.
	KeepAlive time.Duration

	PingsSent     uint64        // PINGREQs sent, automatic and by Ping
	PingResponses uint64        // PINGRESPs received
	PingRTTLast   time.Duration // round-trip time of the latest PINGREQ/PINGRESP
	PingRTTMin    time.Duration
	PingRTTMean   time.Duration
	PingRTTMax    time.Duration

	BytesIn    uint64 // bytes read from the network
	BytesOut   uint64 // bytes written to the network
	PacketsIn  uint64 // MQTT packets received
	PacketsOut uint64 // MQTT packets queued for sending (CONNECT included)

	// Received messages. Every PUBLISH the broker sent is counted once in
	// MessagesIn; each is then handed to handlers, or is one of the
	// following.
	MessagesIn uint64 // PUBLISH packets received, re-sent ones included
	// MessagesReceived counts messages handed to a handler (a
	// subscription's or the fallback's): one per handler call, so a
	// message delivered to two subscriptions counts twice.
	MessagesReceived uint64
	// MessagesRedelivered counts QoS 1/2 messages the broker sent again
	// while their first delivery was still being handled (or, QoS 2,
	// already handled): not handed out a second time.
	MessagesRedelivered uint64
	// MessagesDropped counts QoS 0 messages dropped because
	// [WithMessageBuffer] messages already waited for their handlers.
	MessagesDropped uint64
	// MessagesUnroutable counts messages not handled because they matched
	// only filters the program unsubscribed from (a broker may send some
	// after its UNSUBACK), with no fallback handler ([WithDefaultHandler])
	// set, and QoS 0 messages that matched no subscription at all. A QoS
	// 1/2 one was acknowledged: the program asked not to get it. (A QoS
	// 1/2 message that matches no subscription yet is held instead: see
	// Held.)
	MessagesUnroutable uint64
	// MessagesAbandoned counts received messages never handed to a
	// handler because the client stopped or drained first: deliveries
	// still waiting for a handler when Close came, messages held for a
	// subscription never made (see Held), and messages that arrived once
	// Drain had begun. A QoS 1/2 one was left unacknowledged, for a broker
	// that keeps the session to send again; a QoS 0 one is lost.
	MessagesAbandoned uint64
	// Held is how many received QoS 1/2 messages wait, unacknowledged, for
	// a subscription not made yet: a resumed session's backlog that came
	// before the program's Subscribe (see [Client.Subscribe]).
	Held int
	// HandlerPanics counts handler calls that panicked (recovered; the
	// message is acknowledged).
	HandlerPanics uint64
	// MessagesOverReceiveMaximum counts QoS 1/2 PUBLISH packets that
	// arrived while [WithReceiveMaximum] received ones already waited for
	// their acknowledgement: the broker sent more than the window allows
	// (Mosquitto 2.0.11 does under load). Each is kept and handled; the
	// client stops reading until the window has room again.
	MessagesOverReceiveMaximum uint64

	// Outbound messages.
	Queued        int // accepted messages not yet written on a connection
	QueuedBytes   int // their size, as counted against the queue's byte limit
	InFlight      int // QoS 1/2 messages written and not yet acknowledged
	InFlightBytes int // their packets' size
	// MessagesDiscarded counts accepted messages dropped without a caller
	// to tell: queued QoS 0 messages discarded by Close or a final
	// refusal, and queued messages a new broker's limits refuse.
	MessagesDiscarded uint64

	// MessagesPoisoned counts accepted QoS 1/2 messages given up with
	// [ErrMessagePoisoned]: the broker's answer to each broke the
	// protocol on WithMaxFailedResumes connections in a row.
	MessagesPoisoned uint64

	// MessagesRestored counts the accepted messages a Connect found in the
	// store (WithStore), left by an earlier process, and sends.
	MessagesRestored uint64

	// SessionsAbandoned counts resumed sessions the client gave up for a
	// new one because they failed every connection (WithMaxFailedResumes).
	SessionsAbandoned uint64
}

// counters are the live values behind Stats; every field is safe for
// concurrent use.
type counters struct {
	connects, disconnects atomic.Uint64
	keepAlive             atomic.Int64
	pingsSent             atomic.Uint64
	bytesIn, bytesOut     atomic.Uint64
	packetsIn, packetsOut atomic.Uint64

	messagesIn, messagesReceived, messagesRedelivered atomic.Uint64
	messagesDropped, messagesUnroutable               atomic.Uint64
	messagesAbandoned, handlerPanics                  atomic.Uint64
	messagesDiscarded, sessionsAbandoned              atomic.Uint64
	messagesRestored, messagesOverReceiveMax          atomic.Uint64
	messagesPoisoned                                  atomic.Uint64

	rttMu                   sync.Mutex
	rttN                    uint64
	rttLast, rttMin, rttMax time.Duration
	rttSum                  time.Duration
	rttAt                   time.Time // when the latest PINGRESP arrived
}

func (c *counters) recordRTT(rtt time.Duration, at time.Time) {
	c.rttMu.Lock()
	defer c.rttMu.Unlock()
	c.rttN++
	c.rttAt = at
	c.rttLast = rtt
	c.rttSum += rtt
	if c.rttN == 1 || rtt < c.rttMin {
		c.rttMin = rtt
	}
	c.rttMax = max(c.rttMax, rtt)
}

func (c *counters) snapshot(state State) Stats {
	s := Stats{
		State:       state,
		Connects:    c.connects.Load(),
		Disconnects: c.disconnects.Load(),
		KeepAlive:   time.Duration(c.keepAlive.Load()),
		PingsSent:   c.pingsSent.Load(),
		BytesIn:     c.bytesIn.Load(),
		BytesOut:    c.bytesOut.Load(),
		PacketsIn:   c.packetsIn.Load(),
		PacketsOut:  c.packetsOut.Load(),

		MessagesIn:          c.messagesIn.Load(),
		MessagesReceived:    c.messagesReceived.Load(),
		MessagesRedelivered: c.messagesRedelivered.Load(),
		MessagesDropped:     c.messagesDropped.Load(),
		MessagesUnroutable:  c.messagesUnroutable.Load(),
		MessagesAbandoned:   c.messagesAbandoned.Load(),
		HandlerPanics:       c.handlerPanics.Load(),
		MessagesDiscarded:   c.messagesDiscarded.Load(),
		SessionsAbandoned:   c.sessionsAbandoned.Load(),
		MessagesRestored:    c.messagesRestored.Load(),
		MessagesPoisoned:    c.messagesPoisoned.Load(),

		MessagesOverReceiveMaximum: c.messagesOverReceiveMax.Load(),
	}
	c.rttMu.Lock()
	s.PingResponses = c.rttN
	s.PingRTTLast, s.PingRTTMin, s.PingRTTMax = c.rttLast, c.rttMin, c.rttMax
	s.LastPingResponse = c.rttAt
	if c.rttN > 0 {
		s.PingRTTMean = c.rttSum / time.Duration(c.rttN)
	}
	c.rttMu.Unlock()
	return s
}
