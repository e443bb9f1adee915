package mqttkeeptest

import (
	"slices"
	"sync"
	"time"

	mqtt "github.com/mqttkeep/mqttkeep/internal/mochi"
	"github.com/mqttkeep/mqttkeep/internal/mochi/packets"
)

// The Broker's recorded observations. They cover the broker's whole life:
// they survive Stop, Restart and Bounce, and stay readable after Close.

// Connects returns how many CONNECT packets the broker has read, refused
// ones included.
func (b *Broker) Connects() int {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return len(b.rec.connects)
}

// ConnectTimes returns the arrival times of the CONNECT packets, oldest
// first, refused ones included.
func (b *Broker) ConnectTimes() []time.Time {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return slices.Clone(b.rec.connects)
}

// PingTimes returns the arrival times of the PINGREQ packets the client
// clientID sent, oldest first.
func (b *Broker) PingTimes(clientID string) []time.Time {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return slices.Clone(b.rec.pings[clientID])
}

// Packets returns how many packets of the MQTT control packet type
// packetType the broker has read from the client clientID: 1 CONNECT,
// 3 PUBLISH, 4 PUBACK, 5 PUBREC, 6 PUBREL, 7 PUBCOMP, 8 SUBSCRIBE,
// 10 UNSUBSCRIBE, 12 PINGREQ, 14 DISCONNECT, 15 AUTH (the constants of
// github.com/eclipse/paho.golang/packets). A CONNECT with an empty client
// ID counts under "".
func (b *Broker) Packets(clientID string, packetType byte) int {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return b.rec.counts[packetKey{clientID, packetType}]
}

// Payloads returns the payloads of the PUBLISH packets the broker read
// from clients on topic, in arrival order, re-sent duplicates included.
// [Broker.Publish]'s own messages are not included.
func (b *Broker) Payloads(topic string) [][]byte {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return cloneAll(b.rec.payloads[topic])
}

// SentTo returns the payloads of the PUBLISH packets the broker wrote to
// the client clientID, in order, re-sends included. A packet is recorded
// once its write returned, which may be just after the client read it.
func (b *Broker) SentTo(clientID string) [][]byte {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return cloneAll(b.rec.sentTo[clientID])
}

// Disconnects returns how many accepted connections of the client with ID
// clientID the broker has finished with. mochi processes a connection's
// packets one after another, fanning a PUBLISH out to the subscribers
// before it acknowledges it and reads the next packet, so once
// Disconnects has grown every packet that connection sent has been
// processed.
func (b *Broker) Disconnects(clientID string) int {
	b.rec.mu.Lock()
	defer b.rec.mu.Unlock()
	return b.rec.disconnects[clientID]
}

func cloneAll(ps [][]byte) [][]byte {
	if ps == nil {
		return nil
	}
	out := make([][]byte, len(ps))
	for i, p := range ps {
		out[i] = slices.Clone(p)
	}
	return out
}

type packetKey struct {
	clientID   string
	packetType byte
}

// recorder keeps what the broker observed, for all of its mochi servers.
type recorder struct {
	mu       sync.Mutex
	connects []time.Time
	pings    map[string][]time.Time
	counts   map[packetKey]int
	payloads map[string][][]byte // PUBLISH payloads read, by topic
	sentTo   map[string][][]byte // PUBLISH payloads written, by client ID
	// disconnects counts the accepted connections mochi finished with, by
	// client ID.
	disconnects map[string]int
}

func newRecorder() *recorder {
	return &recorder{
		pings:       make(map[string][]time.Time),
		counts:      make(map[packetKey]int),
		payloads:    make(map[string][][]byte),
		sentTo:      make(map[string][][]byte),
		disconnects: make(map[string]int),
	}
}

// hook returns a new mochi hook (one per server: mochi initialises a hook
// when it is added) that records into r.
func (r *recorder) hook() mqtt.Hook { return &recordHook{r: r} }

func (r *recorder) read(clientID string, pk packets.Packet) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch pk.FixedHeader.Type {
	case packets.Connect:
		clientID = pk.Connect.ClientIdentifier // cl.ID is set only later
		r.connects = append(r.connects, now)
	case packets.Pingreq:
		r.pings[clientID] = append(r.pings[clientID], now)
	case packets.Publish:
		r.payloads[pk.TopicName] = append(r.payloads[pk.TopicName], slices.Clone(pk.Payload))
	}
	r.counts[packetKey{clientID, pk.FixedHeader.Type}]++
}

func (r *recorder) sent(clientID string, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sentTo[clientID] = append(r.sentTo[clientID], slices.Clone(payload))
}

// recordHook is the mochi hook that feeds a recorder.
type recordHook struct {
	mqtt.HookBase
	r *recorder
}

func (h *recordHook) ID() string { return "mqttkeeptest-record" }

func (h *recordHook) Provides(b byte) bool {
	return b == mqtt.OnPacketRead || b == mqtt.OnPacketSent || b == mqtt.OnDisconnect
}

// OnDisconnect runs when mochi has stopped reading an accepted
// connection: after the last packet it read was processed. (mochi also
// runs it for each session restored from a WithDataDir directory, which
// has no connection: not counted.)
func (h *recordHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if cl.Net.Conn == nil {
		return
	}
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	h.r.disconnects[cl.ID]++
}

// OnPacketRead runs for every packet read from a client, the CONNECT
// included, before the client is known by its ID.
func (h *recordHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.r.read(cl.ID, pk)
	return pk, nil
}

// OnPacketSent records the payloads of the PUBLISH packets written to
// clients.
func (h *recordHook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type == packets.Publish {
		h.r.sent(cl.ID, pk.Payload)
	}
}
