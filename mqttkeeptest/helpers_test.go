package mqttkeeptest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/log"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// waitTimeout bounds every wait on real time; it is generous on purpose.
const waitTimeout = 5 * time.Second

// client is a raw paho client plus what it observed.
type client struct {
	*paho.Client
	publishes   chan *paho.Publish
	disconnects chan *paho.Disconnect
}

// connect runs an MQTT v5 CONNECT over conn with a raw paho client. A nil
// pinger selects paho's default pinger.
func connect(t *testing.T, conn net.Conn, clientID string, keepAlive uint16, pinger paho.Pinger) (*client, *paho.Connack, error) {
	t.Helper()
	return connectWith(t, conn, &paho.Connect{ClientID: clientID, KeepAlive: keepAlive, CleanStart: true}, pinger)
}

// connectWith runs the CONNECT cp over conn with a raw paho client.
func connectWith(t *testing.T, conn net.Conn, cp *paho.Connect, pinger paho.Pinger) (*client, *paho.Connack, error) {
	t.Helper()
	c := &client{
		publishes:   make(chan *paho.Publish, 16),
		disconnects: make(chan *paho.Disconnect, 1),
	}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn:        conn,
		PingHandler: pinger,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				c.publishes <- pr.Packet
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) { c.disconnects <- d },
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	return c, ca, err
}

// mustConnect connects a raw paho client over conn and fails the test unless
// the broker accepts it. The client is disconnected when the test ends.
func mustConnect(t *testing.T, conn net.Conn, clientID string) (*client, *paho.Connack) {
	t.Helper()
	c, ca, err := connect(t, conn, clientID, 30, nil)
	return mustAccept(t, c, ca, err, clientID)
}

// mustConnectWith connects a raw paho client over conn with cp and fails the
// test unless the broker accepts it. The client is disconnected when the
// test ends.
func mustConnectWith(t *testing.T, conn net.Conn, cp *paho.Connect) (*client, *paho.Connack) {
	t.Helper()
	c, ca, err := connectWith(t, conn, cp, nil)
	return mustAccept(t, c, ca, err, cp.ClientID)
}

// mustAccept fails the test unless a connect succeeded, and disconnects
// the client when the test ends.
func mustAccept(t *testing.T, c *client, ca *paho.Connack, err error, clientID string) (*client, *paho.Connack) {
	t.Helper()
	if err != nil {
		t.Fatalf("connect %q: %v", clientID, err)
	}
	if ca.ReasonCode != 0 {
		t.Fatalf("connect %q: reason code %#x", clientID, ca.ReasonCode)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c, ca
}

// subscribe subscribes c to filter and fails the test on an error.
func subscribe(t *testing.T, c *client, filter string, qos byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	noErr(t, err)
}

// receive returns the next PUBLISH c receives.
func receive(t *testing.T, c *client) *paho.Publish {
	t.Helper()
	select {
	case p := <-c.publishes:
		return p
	case <-time.After(waitTimeout):
		t.Fatal("no PUBLISH received")
		return nil
	}
}

// dialBroker opens a TCP connection to b.
func dialBroker(t *testing.T, b *mqttkeeptest.Broker) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", b.Addr(), waitTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return conn
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitDone(t *testing.T, c *client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitTimeout):
		t.Fatal("client still connected")
	}
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawConn speaks MQTT packets over a connection without a client library,
// for tests that must withhold acknowledgements or stop reading.
type rawConn struct {
	t    *testing.T
	conn net.Conn
}

// rawConnect sends a CONNECT for clientID (clean start, no keep alive) over
// conn and expects a successful CONNACK. Every later read and write on conn
// must end within waitTimeout.
func rawConnect(t *testing.T, conn net.Conn, clientID string) *rawConn {
	t.Helper()
	r := &rawConn{t: t, conn: conn}
	noErr(t, conn.SetDeadline(time.Now().Add(waitTimeout)))
	pk := packets.NewControlPacket(packets.CONNECT)
	cp := pk.Content.(*packets.Connect)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 5
	cp.ClientID, cp.CleanStart = clientID, true
	r.write(pk)
	if ca := r.read(packets.CONNACK).Content.(*packets.Connack); ca.ReasonCode != 0 {
		t.Fatalf("CONNACK reason code %#x", ca.ReasonCode)
	}
	return r
}

func (r *rawConn) write(pk *packets.ControlPacket) {
	r.t.Helper()
	if _, err := pk.WriteTo(r.conn); err != nil {
		r.t.Fatalf("write %s: %v", pk.PacketType(), err)
	}
}

// read reads the next packet and fails the test unless it has type want.
func (r *rawConn) read(want byte) *packets.ControlPacket {
	r.t.Helper()
	pk, err := packets.ReadPacket(r.conn)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	if pk.Type != want {
		r.t.Fatalf("read %s, want packet type %d", pk.PacketType(), want)
	}
	return pk
}

// subscribe sends a SUBSCRIBE with packet identifier id and returns the
// reason code of its SUBACK.
func (r *rawConn) subscribe(id uint16, filter string, qos byte) byte {
	r.t.Helper()
	pk := packets.NewControlPacket(packets.SUBSCRIBE)
	s := pk.Content.(*packets.Subscribe)
	s.PacketID = id
	s.Subscriptions = []packets.SubOptions{{Topic: filter, QoS: qos}}
	r.write(pk)
	sa := r.read(packets.SUBACK).Content.(*packets.Suback)
	if sa.PacketID != id || len(sa.Reasons) != 1 {
		r.t.Fatalf("SUBACK id %d with %d reasons, want id %d with 1", sa.PacketID, len(sa.Reasons), id)
	}
	return sa.Reasons[0]
}

// silentPinger never pings.
type silentPinger struct{}

func (silentPinger) Run(ctx context.Context, _ net.Conn, _ uint16) error {
	<-ctx.Done()
	return nil
}
func (silentPinger) PacketSent()         {}
func (silentPinger) PacketReceived()     {}
func (silentPinger) PingResp()           {}
func (silentPinger) SetDebug(log.Logger) {}

func ptr[T any](v T) *T { return &v }

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
