package mqttkeep

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats are a Client's counters (see the package doc's Observability).
type Stats struct {
	State State // connection state when the snapshot was taken

	Connects    uint64 // successful CONNACKs
	Disconnects uint64 // connections lost or closed after a successful CONNACK

	// ConnectedSince is when the current connection's CONNACK came; zero while down.
	ConnectedSince time.Time
	// LastReceived is when bytes last arrived (current or last connection).
	LastReceived time.Time
	// LastPingResponse is when the latest PINGRESP arrived.
	LastPingResponse time.Time

	// KeepAlive is the keep alive in force (the broker's, if it imposed one).
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
	Dials      uint64 // network dials started (TCP, or WithDialer calls), overlapping ones included

	// Inbound messages (see the package doc's Observability).
	InPublishes          uint64 // PUBLISH packets received, re-sent ones included
	InHandlerCalls       uint64 // handler calls: a message given to two subscriptions counts twice
	InRedelivered        uint64 // QoS 1/2 re-sends of a message still being (QoS 2: already) handled
	InDroppedQoS0        uint64 // dropped: [WithMessageBuffer] messages already waiting
	InUnsubscribed       uint64 // QoS 0 matching no subscription, QoS 1/2 only unsubscribed ones
	InAbandoned          uint64 // never handed out: Close or Drain came first
	InHeld               int    // QoS 1/2 held for a subscription not made yet (a gauge)
	InHandlerPanics      uint64 // handler calls that panicked
	InOverReceiveMaximum uint64 // QoS 1/2 beyond [WithReceiveMaximum]

	// Outbound messages.
	OutQueued        int    // accepted messages not yet written on a connection
	OutQueuedBytes   int    // their size, as counted against the queue's byte limit
	OutInFlight      int    // QoS 1/2 messages written and not yet acknowledged
	OutInFlightBytes int    // their packets' size
	OutRestored      uint64 // accepted messages an earlier process left in the store (WithStore)
	OutDiscarded     uint64 // accepted, then dropped with no caller to tell
	OutPoisoned      uint64 // QoS 1/2 given up with [ErrMessagePoisoned]

	// SessionsAbandoned: resumed sessions given up for a new one.
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
	messagesPoisoned, dials                           atomic.Uint64

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
		Dials:       c.dials.Load(),

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
