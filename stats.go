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

	// Inbound messages. Every PUBLISH received counts once in
	// InPublishes; it is then handed to handlers (InHandlerCalls), or is a
	// re-send not handed out twice (InRedelivered), or is counted in one
	// of InDroppedQoS0, InUnsubscribed, InAbandoned, or waits in InHeld.
	InPublishes    uint64 // PUBLISH packets received, re-sent ones included
	InHandlerCalls uint64 // handler calls: a message given to two subscriptions counts twice
	InRedelivered  uint64 // QoS 1/2 re-sends of a message still being (or, QoS 2, already) handled
	// InDroppedQoS0 counts QoS 0 messages dropped because
	// [WithMessageBuffer] messages already waited for their handlers.
	InDroppedQoS0 uint64
	// InUnsubscribed counts messages that matched no subscription of the
	// client with no fallback handler set: QoS 0 ones, and QoS 1/2 ones
	// that match only filters it unsubscribed from (acknowledged: the
	// program asked not to get them). Other QoS 1/2 ones are held (InHeld).
	InUnsubscribed uint64
	// InAbandoned counts messages never handed to a handler because Close
	// or Drain came first (waiting for a handler, held, or arrived during
	// Drain): QoS 1/2 ones were left unacknowledged, for a broker that
	// keeps the session to send again; QoS 0 ones are lost.
	InAbandoned uint64
	// InHeld is how many QoS 1/2 messages wait, unacknowledged, for a
	// subscription not made yet (see [Client.Subscribe]).
	InHeld int
	// InHandlerPanics counts handler calls that panicked (recovered; the
	// message is acknowledged).
	InHandlerPanics uint64
	// InOverReceiveMaximum counts QoS 1/2 messages the broker sent beyond
	// [WithReceiveMaximum] (Mosquitto 2.0.11 does under load): each is
	// kept and handled, and the client stops reading until the window has
	// room again.
	InOverReceiveMaximum uint64

	// Outbound messages.
	OutQueued        int    // accepted messages not yet written on a connection
	OutQueuedBytes   int    // their size, as counted against the queue's byte limit
	OutInFlight      int    // QoS 1/2 messages written and not yet acknowledged
	OutInFlightBytes int    // their packets' size
	OutRestored      uint64 // accepted messages an earlier process left in the store (WithStore)
	// OutDiscarded counts accepted messages dropped with no caller to
	// tell: queued QoS 0 messages discarded by Close or a final refusal,
	// and queued messages a new broker's limits refuse.
	OutDiscarded uint64
	// OutPoisoned counts QoS 1/2 messages given up with
	// [ErrMessagePoisoned].
	OutPoisoned uint64

	// SessionsAbandoned counts resumed sessions given up for a new one
	// because they failed every connection
	// ([ReconnectPolicy].MaxFailedResumes).
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

		InPublishes:       c.messagesIn.Load(),
		InHandlerCalls:    c.messagesReceived.Load(),
		InRedelivered:     c.messagesRedelivered.Load(),
		InDroppedQoS0:     c.messagesDropped.Load(),
		InUnsubscribed:    c.messagesUnroutable.Load(),
		InAbandoned:       c.messagesAbandoned.Load(),
		InHandlerPanics:   c.handlerPanics.Load(),
		OutDiscarded:      c.messagesDiscarded.Load(),
		SessionsAbandoned: c.sessionsAbandoned.Load(),
		OutRestored:       c.messagesRestored.Load(),
		OutPoisoned:       c.messagesPoisoned.Load(),

		InOverReceiveMaximum: c.messagesOverReceiveMax.Load(),
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
