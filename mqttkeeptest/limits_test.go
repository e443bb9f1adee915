package mqttkeeptest_test

// Tests that pin the limits of mochi-mqtt v2.7.9 that the package
// documentation lists. When one fails after a mochi upgrade, the limit is
// gone: update doc.go, the README and "mqttkeep help broker", then this test.

import (
	"context"
	"testing"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// Limit 1: user properties reach only subscribers that asked for problem
// information.
func TestLimitUserPropertiesNeedProblemInfo(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	subs := map[bool]*client{}
	for _, rpi := range []bool{true, false} {
		id := map[bool]string{true: "rpi1", false: "rpi0"}[rpi]
		c, _ := mustConnectWith(t, dialBroker(t, b), &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true,
			Properties: &paho.ConnectProperties{RequestProblemInfo: rpi}})
		subscribe(t, c, "u", 1)
		subs[rpi] = c
	}
	pub, _ := mustConnect(t, dialBroker(t, b), "pub")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := pub.Publish(ctx, &paho.Publish{Topic: "u", QoS: 1, Payload: []byte("x"),
		Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "k", Value: "v"}}}})
	noErr(t, err)

	if got := receive(t, subs[true]).Properties.User.Get("k"); got != "v" {
		t.Errorf("Request Problem Information 1: user property k = %q, want v", got)
	}
	if got := receive(t, subs[false]).Properties.User; len(got) != 0 {
		t.Errorf("Request Problem Information 0: user properties %v arrived: mochi no longer strips them (limit 1 is gone)", got)
	}
}

// Limit 4: a SUBSCRIBE that reuses the packet identifier of a QoS 1
// message the broker sent and the client has not acknowledged is refused
// with 0x91.
func TestLimitSharedPacketIdentifiers(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	conn := dialBroker(t, b)
	defer conn.Close()
	r := rawConnect(t, conn, "ids")
	if rc := r.subscribe(1, "l6", 1); rc != 1 {
		t.Fatalf("SUBACK reason code %#x, want 0x01", rc)
	}
	noErr(t, b.Publish("l6", []byte("unacknowledged"), 1))
	id := r.read(packets.PUBLISH).Content.(*packets.Publish).PacketID // no PUBACK

	if rc := r.subscribe(id, "other", 1); rc != 0x91 {
		t.Errorf("SUBSCRIBE with the broker's in-flight id %d: reason code %#x, want 0x91 (limit 4 is gone?)", id, rc)
	}
	if rc := r.subscribe(id+1, "other", 1); rc != 1 {
		t.Errorf("SUBSCRIBE with a free id: reason code %#x, want 0x01", rc)
	}
}
