package embedbroker

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

// failingStore is a store whose Applies fail once failing is set, as on a
// full disk.
type failingStore struct {
	mqttkeep.Store
	failing *atomic.Bool
}

var errDiskFull = errors.New("disk full")

func (s failingStore) Apply(puts []mqttkeep.Record, deletes []uint64, durable bool) error {
	if s.failing.Load() {
		return errDiskFull
	}
	return s.Store.Apply(puts, deletes, durable)
}

// When the store cannot keep a message, the broker does not acknowledge
// it: it closes the publisher's connection instead of sending the PUBACK.
func TestStoreFailureWithholdsAck(t *testing.T) {
	var failing atomic.Bool
	dir := t.TempDir()
	b, err := New(WithStore(func() (mqttkeep.Store, error) {
		st, err := filestore.Open(dir)
		return failingStore{st, &failing}, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// A persistent session subscribed to a, absent: each message to a is
	// queued for it, in the store.
	sub := rawConnect(t, b, "sub", 3600)
	subscribe := packets.NewControlPacket(packets.SUBSCRIBE)
	subscribe.Content.(*packets.Subscribe).PacketID = 1
	subscribe.Content.(*packets.Subscribe).Subscriptions = []packets.SubOptions{{Topic: "a", QoS: 1}}
	if _, err := subscribe.WriteTo(sub); err != nil {
		t.Fatal(err)
	}
	if pk, err := packets.ReadPacket(sub); err != nil || pk.Type != packets.SUBACK {
		t.Fatalf("SUBACK: %v %v", pk, err)
	}
	_ = sub.Close()

	conn := rawConnect(t, b, "pub", 0)
	defer conn.Close()
	publish := func(id uint16) (*packets.ControlPacket, error) {
		pk := packets.NewControlPacket(packets.PUBLISH)
		p := pk.Content.(*packets.Publish)
		p.Topic, p.QoS, p.PacketID, p.Payload = "a", 1, id, []byte("x")
		if _, err := pk.WriteTo(conn); err != nil {
			return nil, err
		}
		return packets.ReadPacket(conn)
	}
	if pk, err := publish(1); err != nil || pk.Type != packets.PUBACK {
		t.Fatalf("while the store works: %v %v, want a PUBACK", pk, err)
	}

	failing.Store(true)
	if pk, err := publish(2); err == nil {
		t.Fatalf("the broker answered %v although it could not store the message", pk)
	}
}

// rawConnect connects clientID over a pipe with MQTT v5 and the session
// expiry interval expiry (seconds).
func rawConnect(t *testing.T, b *Broker, clientID string, expiry uint32) net.Conn {
	t.Helper()
	conn := b.Pipe()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	connect := packets.NewControlPacket(packets.CONNECT)
	c := connect.Content.(*packets.Connect)
	c.ClientID, c.CleanStart = clientID, true
	c.Properties = &packets.Properties{SessionExpiryInterval: &expiry}
	if _, err := connect.WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	if pk, err := packets.ReadPacket(conn); err != nil || pk.Type != packets.CONNACK {
		t.Fatalf("CONNACK: %v %v", pk, err)
	}
	return conn
}

// A store that cannot be read fails New with an error that says so.
func TestStoreLoadFailure(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply([]mqttkeep.Record{{Key: 1, Value: []byte{200}}}, nil, true); err != nil { // not a record of ours
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = New(WithDataDir(dir))
	if err == nil {
		t.Fatal("New read a damaged record")
	}
	t.Log(err)
	// The store was closed: the directory opens again.
	st, err = filestore.Open(dir)
	if err != nil {
		t.Fatalf("the failed New left the directory locked: %v", err)
	}
	_ = st.Close()
}
