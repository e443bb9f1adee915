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
	PacketsOut uint64 // MQTT packets sent

	MessagesReceived uint64 // PUBLISH packets handed to handlers
	MessagesDropped  uint64 // QoS 0 messages dropped because handlers fell behind

	Queued            int    // messages waiting in the offline queue now
	QueuedBytes       int    // their size, as counted against the byte limit
	MessagesDiscarded uint64 // queued QoS 0 messages discarded: by Close, a final refusal, or a new broker's limits
}

// counters are the live values behind Stats; every field is safe for
// concurrent use.
type counters struct {
	connects, disconnects             atomic.Uint64
	keepAlive                         atomic.Int64
	pingsSent                         atomic.Uint64
	bytesIn, bytesOut                 atomic.Uint64
	packetsIn, packetsOut             atomic.Uint64
	messagesReceived, messagesDropped atomic.Uint64
	messagesDiscarded                 atomic.Uint64

	rttMu                   sync.Mutex
	rttN                    uint64
	rttLast, rttMin, rttMax time.Duration
	rttSum                  time.Duration
}

func (c *counters) recordRTT(rtt time.Duration) {
	c.rttMu.Lock()
	defer c.rttMu.Unlock()
	c.rttN++
	c.rttLast = rtt
	c.rttSum += rtt
	if c.rttN == 1 || rtt < c.rttMin {
		c.rttMin = rtt
	}
	c.rttMax = max(c.rttMax, rtt)
}

func (c *counters) snapshot(state State) Stats {
	s := Stats{
		State:            state,
		Connects:         c.connects.Load(),
		Disconnects:      c.disconnects.Load(),
		KeepAlive:        time.Duration(c.keepAlive.Load()),
		PingsSent:        c.pingsSent.Load(),
		BytesIn:          c.bytesIn.Load(),
		BytesOut:         c.bytesOut.Load(),
		PacketsIn:        c.packetsIn.Load(),
		PacketsOut:       c.packetsOut.Load(),
		MessagesReceived: c.messagesReceived.Load(),
		MessagesDropped:  c.messagesDropped.Load(),

		MessagesDiscarded: c.messagesDiscarded.Load(),
	}
	c.rttMu.Lock()
	s.PingResponses = c.rttN
	s.PingRTTLast, s.PingRTTMin, s.PingRTTMax = c.rttLast, c.rttMin, c.rttMax
	if c.rttN > 0 {
		s.PingRTTMean = c.rttSum / time.Duration(c.rttN)
	}
	c.rttMu.Unlock()
	return s
}
