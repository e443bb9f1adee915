package rabbitmq

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttkeep/mqttkeep/internal/mqtt311"
)

// What RabbitMQ 3.10's MQTT plugin does where a client could expect
// otherwise. Each finding was read in the plugin's code
// (rabbit_mqtt_processor, rabbit_mqtt_frame, rabbit_mqtt_reader) and is
// checked here over a socket, on the node shared by the package's tests
// (TestSharedNode runs them side by side).
var behaviours = []struct {
	name string
	test func(*testing.T, *Node)
}{
	{"MQTT 5 CONNECT closed", rabbitMQClosesAnMQTT5Connect},
	{"takeover", rabbitMQTakeoverClosesTheFirstConnection},
	{"QoS 2 downgraded", rabbitMQDowngradesQoS2},
	{"retained for the exact topic only", rabbitMQRetainedOnlyForTheExactTopic},
	{"overlapping subscriptions", rabbitMQOverlappingSubscriptions},
	{"keep alive", rabbitMQKeepAlive},
	{"client identifiers", rabbitMQClientIdentifiers},
	{"persistent session keeps QoS 1 only", rabbitMQPersistentSessionKeepsOnlyQoS1},
	{"virtual host of a test's own", rabbitMQVhost},
}

// A level-5 (MQTT v5) CONNECT: the frame parser fails on the properties
// and the socket is closed without any CONNACK.
func rabbitMQClosesAnMQTT5Connect(t *testing.T, n *Node) {
	nc, err := net.DialTimeout("tcp", n.MQTTAddr(), ioTimeout)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(ioTimeout)))
	id := UniqueName(t, "v5")
	body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30, 0 /* properties */, 0, byte(len(id))}, id...)
	_, err = nc.Write(append([]byte{0x10, byte(len(body))}, body...))
	require.NoError(t, err)
	p, err := mqtt311.ReadPacket(nc, 0)
	assert.True(t, closedByPeer(err), "closed without a CONNACK; got %v, %v", p, err)
}

// A second connection with the same client identifier takes the session
// over: the broker closes the first connection (3.1.1 has no DISCONNECT
// from the server) and accepts the second.
func rabbitMQTakeoverClosesTheFirstConnection(t *testing.T, n *Node) {
	id := UniqueName(t, "twin")
	first, _ := dial(t, n.MQTTAddr(), n.Connect(id, false))
	second, _ := dial(t, n.MQTTAddr(), n.Connect(id, false))
	_, err := first.Read()
	assert.True(t, closedByPeer(err), "the first connection is closed: %v", err)
	require.NoError(t, second.Send(mqtt311.Pingreq()))
	_, err = second.Expect(mqtt311.PINGRESP)
	require.NoError(t, err, "the second connection lives on")
	require.NoError(t, cleanUp(n, id))
}

// QoS 2 is downgraded to QoS 1 everywhere: a subscription asking for 2 is
// granted 1, a QoS 2 PUBLISH is answered with a PUBACK (no PUBREC) and
// delivered at QoS 1.
func rabbitMQDowngradesQoS2(t *testing.T, n *Node) {
	topic := UniqueName(t, "t")
	sub, _ := dial(t, n.MQTTAddr(), n.Connect(UniqueName(t, "sub"), true))
	codes, err := sub.Subscribe(1, mqtt311.Filter{Topic: topic, QoS: 2})
	require.NoError(t, err)
	assert.Equal(t, []byte{1}, codes, "QoS 2 asked, 1 granted")

	pub, _ := dial(t, n.MQTTAddr(), n.Connect(UniqueName(t, "pub"), true))
	pkt, err := mqtt311.Publish(topic, []byte("two"), 2, 5, false, false)
	require.NoError(t, err)
	require.NoError(t, pub.Send(pkt))
	p, err := pub.Read()
	require.NoError(t, err)
	assert.Equal(t, mqtt311.PUBACK, p.Type, "a QoS 2 PUBLISH is acknowledged as QoS 1")
	m := receive(t, sub)
	assert.EqualValues(t, 1, m.QoS)
	assert.Equal(t, "two", string(m.Payload))
	require.NoError(t, sub.Ack(mqtt311.PUBACK, m.PacketID))
}

// A retained message is sent to a new subscription whose filter is its
// very topic, and not to one whose filter only matches it by a wildcard
// (the plugin looks the filter up as a topic in its store).
func rabbitMQRetainedOnlyForTheExactTopic(t *testing.T, n *Node) {
	base := UniqueName(t, "r")
	pub, _ := dial(t, n.MQTTAddr(), n.Connect(UniqueName(t, "pub"), true))
	require.NoError(t, pub.Publish(base+"/a", []byte("kept"), 1, 1, true))
	_, err := pub.Expect(mqtt311.PUBACK)
	require.NoError(t, err)

	exact, _ := dial(t, n.MQTTAddr(), n.Connect(UniqueName(t, "exact"), true))
	// The retainer stores the message asynchronously: ask until it is
	// there (bounded).
	var m mqtt311.Message
	for i := 0; ; i++ {
		_, err := exact.Subscribe(uint16(i+1), mqtt311.Filter{Topic: base + "/a", QoS: 1})
		require.NoError(t, err)
		exact.SetTimeout(time.Second)
		p, err := exact.Read()
		exact.SetTimeout(ioTimeout)
		if err == nil {
			m, err = p.Publish()
			require.NoError(t, err)
			break
		}
		require.Less(t, i, 30, "no retained message after %d subscriptions: %v", i+1, err)
	}
	assert.True(t, m.Retain)
	assert.Equal(t, "kept", string(m.Payload))

	wild, _ := dial(t, n.MQTTAddr(), n.Connect(UniqueName(t, "wild"), true))
	_, err = wild.Subscribe(1, mqtt311.Filter{Topic: base + "/+", QoS: 1})
	require.NoError(t, err)
	// The retained message would come right after the SUBACK; a message
	// published now shows what came first.
	publish1(t, pub, base+"/b", "live", 2)
	m = receive(t, wild)
	assert.Equal(t, base+"/b", m.Topic, "the retained message on %s/a was not sent for %s/+", base, base)
	assert.False(t, m.Retain)
	require.NoError(t, pub.Publish(base+"/a", nil, 1, 3, true)) // clear it
}

// Each client has one queue per QoS: overlapping filters of the same QoS
// deliver one copy of a message, filters of different QoS two.
func rabbitMQOverlappingSubscriptions(t *testing.T, n *Node) {
	base := UniqueName(t, "o")
	sub, _ := dial(t, n.MQTTAddr(), n.Connect(UniqueName(t, "sub"), true))
	_, err := sub.Subscribe(1, mqtt311.Filter{Topic: base + "/#", QoS: 1}, mqtt311.Filter{Topic: base + "/x", QoS: 1},
		mqtt311.Filter{Topic: base + "/q/#", QoS: 0}, mqtt311.Filter{Topic: base + "/q/x", QoS: 1})
	require.NoError(t, err)
	pub, _ := dial(t, n.MQTTAddr(), n.Connect(UniqueName(t, "pub"), true))

	publish1(t, pub, base+"/x", "same QoS", 1)
	publish1(t, pub, base+"/y", "marker", 2)
	m := receive(t, sub)
	assert.Equal(t, base+"/x", m.Topic)
	require.NoError(t, sub.Ack(mqtt311.PUBACK, m.PacketID))
	m = receive(t, sub)
	assert.Equal(t, base+"/y", m.Topic, "one copy for %s/# and %s/x", base, base)
	require.NoError(t, sub.Ack(mqtt311.PUBACK, m.PacketID))

	publish1(t, pub, base+"/q/x", "two QoS", 3)
	got := map[byte]int{}
	for range 2 {
		m = receive(t, sub)
		assert.Equal(t, base+"/q/x", m.Topic)
		got[m.QoS]++
		if m.QoS == 1 {
			require.NoError(t, sub.Ack(mqtt311.PUBACK, m.PacketID))
		}
	}
	// base/q/x matches base/# (QoS 1) too, which shares the QoS 1 queue
	// with base/q/x: one QoS 1 copy and one QoS 0 copy.
	assert.Equal(t, map[byte]int{0: 1, 1: 1}, got)
}

// A keep alive of K seconds is enforced by a check every K seconds that
// closes the connection at the second check in a row that saw no new
// byte from the client: 2 to 3 K after its last byte (MQTT says 1.5 K).
func rabbitMQKeepAlive(t *testing.T, n *Node) {
	c := n.Connect(UniqueName(t, "quiet"), true)
	c.KeepAlive = 1
	conn, _ := dial(t, n.MQTTAddr(), c)
	began := time.Now()
	_, err := conn.Read()
	assert.True(t, closedByPeer(err), "closed by the broker: %v", err)
	t.Logf("a silent client with keep alive 1 s was closed after %v", time.Since(began))
}

// Client identifiers: an empty one is refused (2) with Clean Session 0,
// and replaced by a generated one with Clean Session 1.
func rabbitMQClientIdentifiers(t *testing.T, n *Node) {
	_, _, err := mqtt311.Dial(n.MQTTAddr(), n.Connect("", false), ioTimeout)
	var refusedErr *mqtt311.RefusedError
	require.ErrorAs(t, err, &refusedErr)
	assert.EqualValues(t, 2, refusedErr.Code, "identifier rejected")
	conn, _ := dial(t, n.MQTTAddr(), n.Connect("", true))
	_, err = conn.Subscribe(1, mqtt311.Filter{Topic: UniqueName(t, "t"), QoS: 1})
	require.NoError(t, err)

	// The plugin names a client's queues after its identifier; AMQP
	// limits queue names to 255 bytes on the wire, yet the MQTT plugin's
	// internal connections take a longer one.
	long := UniqueName(t, "long") + strings.Repeat("x", 250)
	topic := UniqueName(t, "t")
	conn, _ = dial(t, n.MQTTAddr(), n.Connect(long, true))
	_, err = conn.Subscribe(1, mqtt311.Filter{Topic: topic, QoS: 1})
	require.NoError(t, err)
	pub, _ := dial(t, n.MQTTAddr(), n.Connect(UniqueName(t, "pub"), true))
	publish1(t, pub, topic, "to the long one", 2)
	m := receive(t, conn)
	assert.Equal(t, "to the long one", string(m.Payload), "a %d-byte client identifier works", len(long))
	require.NoError(t, conn.Ack(mqtt311.PUBACK, m.PacketID))
}

// A persistent session keeps its QoS 1 subscriptions only: QoS 0 ones go
// with the connection (their queue is not durable), and Session Present
// says only whether the QoS 1 queue exists.
func rabbitMQPersistentSessionKeepsOnlyQoS1(t *testing.T, n *Node) {
	base := UniqueName(t, "s")
	only0 := n.Connect(UniqueName(t, "only0"), false)
	c, _ := dial(t, n.MQTTAddr(), only0)
	_, err := c.Subscribe(1, mqtt311.Filter{Topic: base + "/zero", QoS: 0})
	require.NoError(t, err)
	require.NoError(t, c.Disconnect())
	_, present := dial(t, n.MQTTAddr(), only0)
	assert.False(t, present, "a session with only QoS 0 subscriptions is not kept")

	both := n.Connect(UniqueName(t, "both"), false)
	c, _ = dial(t, n.MQTTAddr(), both)
	_, err = c.Subscribe(1, mqtt311.Filter{Topic: base + "/zero", QoS: 0}, mqtt311.Filter{Topic: base + "/one", QoS: 1})
	require.NoError(t, err)
	require.NoError(t, c.Disconnect())
	c, present = dial(t, n.MQTTAddr(), both)
	assert.True(t, present)
	pub, _ := dial(t, n.MQTTAddr(), n.Connect(UniqueName(t, "pub"), true))
	publish1(t, pub, base+"/zero", "lost", 1)
	publish1(t, pub, base+"/one", "kept", 2)
	m := receive(t, c)
	assert.Equal(t, base+"/one", m.Topic, "the QoS 0 subscription did not survive the reconnection")
	require.NoError(t, c.Ack(mqtt311.PUBACK, m.PacketID))

	// UNSUBSCRIBE of a filter subscribed in an earlier connection of the
	// session: acknowledged, and yet the binding stays (the plugin
	// unbinds only what this connection subscribed).
	require.NoError(t, c.Send(mustUnsubscribe(t, 2, base+"/one")))
	_, err = c.Expect(mqtt311.UNSUBACK)
	require.NoError(t, err)
	publish1(t, pub, base+"/one", "after UNSUBSCRIBE", 3)
	m = receive(t, c)
	assert.Equal(t, "after UNSUBSCRIBE", string(m.Payload), "still delivered")
	require.NoError(t, c.Ack(mqtt311.PUBACK, m.PacketID))
	require.NoError(t, c.Disconnect())
	require.NoError(t, cleanUp(n, both.ClientID))
}

func mustUnsubscribe(t *testing.T, id uint16, topics ...string) []byte {
	t.Helper()
	b, err := mqtt311.Unsubscribe(id, topics...)
	require.NoError(t, err)
	return b
}

// cleanUp ends the persistent session of clientID on the shared node (a
// clean-session CONNECT deletes its queue).
func cleanUp(n *Node, clientID string) error {
	return mqtt311.Probe(n.MQTTAddr(), n.Connect(clientID, true), ioTimeout)
}

// A test's own virtual host, reached with the user name "VHOST:USER",
// has topics of its own, but not client identifiers: the plugin tracks
// them across the node (cluster) whatever the virtual host, so the same
// identifier in "/" takes the session over.
func rabbitMQVhost(t *testing.T, n *Node) {
	vhost := UniqueName(t, "vhost")
	require.NoError(t, n.AddVhost(vhost))
	assert.Equal(t, vhost+":"+DefaultUser, n.VhostUser(vhost))
	own := func(clientID string) mqtt311.Connect {
		c := n.Connect(clientID, true)
		c.Username = n.VhostUser(vhost)
		return c
	}
	id, topic := UniqueName(t, "c"), UniqueName(t, "t")
	sub, _ := dial(t, n.MQTTAddr(), own(id))
	_, err := sub.Subscribe(1, mqtt311.Filter{Topic: topic, QoS: 1})
	require.NoError(t, err)
	root, _ := dial(t, n.MQTTAddr(), n.Connect(UniqueName(t, "root"), true))
	publish1(t, root, topic, "in /", 1)
	pub, _ := dial(t, n.MQTTAddr(), own(UniqueName(t, "pub")))
	publish1(t, pub, topic, "in "+vhost, 2)
	m := receive(t, sub)
	assert.Equal(t, "in "+vhost, string(m.Payload), "only the vhost's own message")
	require.NoError(t, sub.Ack(mqtt311.PUBACK, m.PacketID))
	q, err := n.Queue(vhost, SessionQueue(id))
	require.NoError(t, err)
	assert.Equal(t, SessionQueue(id), q.Name)

	twin, _ := dial(t, n.MQTTAddr(), n.Connect(id, true))
	_, err = sub.Read()
	assert.True(t, closedByPeer(err), "the same client identifier in / closed the vhost's connection: %v", err)
	require.NoError(t, twin.Disconnect())
}
