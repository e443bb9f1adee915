package mqttkeeptest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

func TestRefuse(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	codes := []byte{0x80, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x9C, 0x9F}
	for _, code := range codes {
		b.Refuse(code)
		_, ca, err := connect(t, dialBroker(t, b), "r", 30, nil)
		if err == nil {
			t.Errorf("code %#x: connect succeeded", code)
		}
		if ca == nil {
			t.Errorf("code %#x: no CONNACK (%v)", code, err)
		} else if ca.ReasonCode != code {
			t.Errorf("code %#x: CONNACK reason code %#x", code, ca.ReasonCode)
		}
	}
	if n := b.Connects(); n != len(codes) {
		t.Errorf("Connects() = %d, want %d (refused CONNECTs count)", n, len(codes))
	}

	b.Refuse(0)
	mustConnect(t, dialBroker(t, b), "r")
	if n := b.Connects(); n != len(codes)+1 {
		t.Errorf("Connects() = %d, want %d", n, len(codes)+1)
	}

	defer func() {
		if recover() == nil {
			t.Error("Refuse(0x05) did not panic")
		}
	}()
	b.Refuse(0x05)
}

func TestRedirect(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	b.Redirect(0x9D, "127.0.0.1:1")
	_, ca, err := connect(t, dialBroker(t, b), "r", 30, nil)
	if err == nil {
		t.Error("connect succeeded")
	}
	if ca == nil || ca.ReasonCode != 0x9D || ca.Properties == nil || ca.Properties.ServerReference != "127.0.0.1:1" {
		t.Fatalf("CONNACK %+v, want 0x9D with Server Reference 127.0.0.1:1", ca)
	}
	// Refuse replaces the redirect, without a reference.
	b.Refuse(0x88)
	_, ca, _ = connect(t, dialBroker(t, b), "r", 30, nil)
	if ca == nil || ca.ReasonCode != 0x88 || ca.Properties.ServerReference != "" {
		t.Fatalf("CONNACK %+v, want 0x88 without Server Reference", ca)
	}
	b.Refuse(0)
	mustConnect(t, dialBroker(t, b), "r")

	defer func() {
		if recover() == nil {
			t.Error("Redirect(0x00) did not panic")
		}
	}()
	b.Redirect(0, "x")
}

func TestConnackProperties(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []mqttkeeptest.BrokerOption
		wantKA  *uint16
		wantMax *uint32
	}{
		// Mochi announces no Maximum Packet Size of its own (limit 3).
		{name: "default"},
		{name: "server keep alive", opts: []mqttkeeptest.BrokerOption{mqttkeeptest.WithServerKeepAlive(7)}, wantKA: ptr[uint16](7)},
		{name: "server keep alive zero", opts: []mqttkeeptest.BrokerOption{mqttkeeptest.WithServerKeepAlive(0)}, wantKA: ptr[uint16](0)},
		{name: "maximum packet size", opts: []mqttkeeptest.BrokerOption{mqttkeeptest.WithMaximumPacketSize(1024)}, wantMax: ptr[uint32](1024)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mqttkeeptest.NewBroker(t, tc.opts...)
			_, ca := mustConnect(t, dialBroker(t, b), "c")
			if got := ca.Properties.ServerKeepAlive; !equalPtr(got, tc.wantKA) {
				t.Errorf("Server Keep Alive = %v, want %v", deref(got), deref(tc.wantKA))
			}
			if got := ca.Properties.MaximumPacketSize; !equalPtr(got, tc.wantMax) {
				t.Errorf("Maximum Packet Size = %v, want %v", deref(got), deref(tc.wantMax))
			}
		})
	}
}

func TestOptionString(t *testing.T) {
	for o, want := range map[mqttkeeptest.BrokerOption]string{
		mqttkeeptest.WithServerKeepAlive(7):      "WithServerKeepAlive(7)",
		mqttkeeptest.WithMaximumPacketSize(1024): "WithMaximumPacketSize(1024)",
		mqttkeeptest.WithOutboundQueue(16):       "WithOutboundQueue(16)",
		mqttkeeptest.WithWebSocket():             "WithWebSocket()",
		mqttkeeptest.WithTLS(nil):                "WithTLS(…)",
	} {
		if o.String() != want {
			t.Errorf("String() = %q, want %q", o, want)
		}
	}
}

func TestWithoutRecording(t *testing.T) {
	b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithoutRecording())
	c, _ := mustConnect(t, dialBroker(t, b), "c")
	subscribe(t, c, "t", 1)
	noErr(t, b.Publish("t", []byte("x"), 1))
	receive(t, c)
	if n, s := b.Connects(), b.Packets("c", packets.SUBSCRIBE); n != 0 || s != 0 || b.SentTo("c") != nil {
		t.Errorf("recorded %d CONNECTs, %d SUBSCRIBEs, sent %q", n, s, b.SentTo("c"))
	}
}

func TestDisconnectClient(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	if b.DisconnectClient("nobody", 0x98) == nil {
		t.Error("DisconnectClient of an unknown client succeeded")
	}
	for _, tc := range []struct {
		code byte
		ref  string
	}{{0x00, ""}, {0x8B, ""}, {0x98, ""}, {0x9C, ""}, {0x9C, "127.0.0.1:1"}, {0x9D, "elsewhere:1883"}} {
		// A client ID per case: mochi's end of an earlier connection with
		// the same ID can remove the next one from its clients (limit 2's
		// race), and DisconnectClient then finds nobody.
		id := fmt.Sprintf("c-%#x-%s", tc.code, tc.ref)
		c, _ := mustConnect(t, dialBroker(t, b), id)
		noErr(t, b.DisconnectClientTo(id, tc.code, tc.ref))
		select {
		case d := <-c.disconnects:
			if d.ReasonCode != tc.code {
				t.Errorf("DISCONNECT reason code %#x, want %#x", d.ReasonCode, tc.code)
			}
			if got := d.Properties.ServerReference; got != tc.ref {
				t.Errorf("DISCONNECT %#x: Server Reference %q, want %q", tc.code, got, tc.ref)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("no DISCONNECT for code %#x", tc.code)
		}
		waitDone(t, c)
		eventually(t, "client gone", func() bool { return b.DisconnectClient(id, tc.code) != nil })
	}
}

// TestMaximumPacketSizeEnforced: mochi closes the connection of a client that
// sends an oversize packet, without a DISCONNECT.
func TestMaximumPacketSizeEnforced(t *testing.T) {
	b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithMaximumPacketSize(1024))
	conn := dialBroker(t, b)
	c, _ := mustConnect(t, conn, "c")
	// Bypass paho, which would refuse to send the oversize PUBLISH.
	pk := packets.NewControlPacket(packets.PUBLISH)
	pk.Content.(*packets.Publish).Topic = "t"
	pk.Content.(*packets.Publish).Payload = make([]byte, 2000)
	_, err := pk.WriteTo(conn)
	noErr(t, err)
	waitDone(t, c)
	select {
	case d := <-c.disconnects:
		t.Errorf("got DISCONNECT %#x", d.ReasonCode)
	default:
	}
	if n := b.Packets("c", packets.PUBLISH); n != 0 {
		t.Errorf("PUBLISH packets = %d, want 0", n)
	}
}

// Subscribe sees what clients and the broker publish, until a restart.
func TestSubscribe(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	var mu sync.Mutex
	var got []string
	seen := make(chan struct{}, 4)
	noErr(t, b.Subscribe("s/+", func(topic string, payload []byte) {
		mu.Lock()
		got = append(got, topic+"="+string(payload))
		mu.Unlock()
		seen <- struct{}{}
	}))
	if b.Subscribe("s/#", nil) == nil {
		t.Error("Subscribe with a nil handler succeeded")
	}
	if b.Subscribe("s/#/x", func(string, []byte) {}) == nil {
		t.Error("Subscribe to an invalid filter succeeded")
	}

	c, _ := mustConnect(t, dialBroker(t, b), "pub")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := c.Publish(ctx, &paho.Publish{Topic: "s/client", QoS: 1, Payload: []byte("1")})
	noErr(t, err)
	wait := func() {
		t.Helper()
		select {
		case <-seen:
		case <-time.After(waitTimeout):
			t.Fatal("the handler was not called")
		}
	}
	wait() // mochi sends the PUBACK before it forwards the message
	noErr(t, b.Publish("s/broker", []byte("2"), 0))
	noErr(t, b.Publish("other", []byte("3"), 0))
	wait()
	mu.Lock()
	if want := []string{"s/client=1", "s/broker=2"}; !slices.Equal(got, want) {
		t.Errorf("handler saw %q, want %q", got, want)
	}
	mu.Unlock()

	noErr(t, b.Restart())
	noErr(t, b.Publish("s/broker", []byte("4"), 0))
	select {
	case <-seen:
		t.Error("the subscription survived Restart")
	default: // Publish delivers synchronously: nothing can still be on its way
	}
}

// A client that stops reading fills its outbound queue; the broker drops
// what does not fit and counts it, across restarts.
func TestDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mqttkeeptest.NewPipeBroker(t, mqttkeeptest.WithOutboundQueue(1))
		conn := b.Pipe()
		defer conn.Close()
		r := rawConnect(t, conn, "slow")
		if rc := r.subscribe(1, "d", 0); rc != 0 {
			t.Fatalf("SUBACK reason code %#x", rc)
		}
		// The client reads no more. The first message blocks the broker's
		// writer, the second waits in the queue, the rest are dropped.
		noErr(t, b.Publish("d", []byte("0"), 0))
		synctest.Wait()
		for i := range 9 {
			noErr(t, b.Publish("d", []byte{'1' + byte(i)}, 0))
		}
		if n := b.Dropped(); n != 8 {
			t.Errorf("Dropped() = %d, want 8", n)
		}
		noErr(t, b.Restart())
		if n := b.Dropped(); n != 8 {
			t.Errorf("Dropped() = %d after Restart, want 8", n)
		}
	})
}
