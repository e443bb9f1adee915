package testbroker

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/log"
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
	ca, err := c.Connect(ctx, &paho.Connect{
		ClientID:   clientID,
		KeepAlive:  keepAlive,
		CleanStart: true,
	})
	return c, ca, err
}

// mustConnect connects a raw paho client over conn and fails the test unless
// the broker accepts it. The client is disconnected when the test ends.
func mustConnect(t *testing.T, conn net.Conn, clientID string) (*client, *paho.Connack) {
	t.Helper()
	c, ca, err := connect(t, conn, clientID, 30, nil)
	if err != nil {
		t.Fatalf("connect %q: %v", clientID, err)
	}
	if ca.ReasonCode != 0 {
		t.Fatalf("connect %q: reason code %#x", clientID, ca.ReasonCode)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c, ca
}

// dial opens a TCP connection to b.
func dial(t *testing.T, b *Broker) net.Conn {
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

func TestStartTCP(t *testing.T) {
	b := Start(t)
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q", b.Addr())
	}
	if want := "mqtt://" + b.Addr(); b.URL() != want {
		t.Fatalf("URL() = %q, want %q", b.URL(), want)
	}

	c, ca := mustConnect(t, dial(t, b), "c1")
	if ca.Properties.ServerKeepAlive != nil {
		t.Errorf("Server Keep Alive %d without the option", *ca.Properties.ServerKeepAlive)
	}
	if n := b.Connects(); n != 1 {
		t.Errorf("Connects() = %d, want 1", n)
	}
	if n := len(b.ConnectTimes()); n != 1 {
		t.Errorf("len(ConnectTimes()) = %d, want 1", n)
	}
	if n := b.Packets("c1", packets.CONNECT); n != 1 {
		t.Errorf("CONNECT packets = %d, want 1", n)
	}

	// A server-side publish reaches a subscriber.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "t/#", QoS: 1}}})
	noErr(t, err)
	noErr(t, b.Publish("t/x", []byte("hello"), 1))
	select {
	case p := <-c.publishes:
		if p.Topic != "t/x" || string(p.Payload) != "hello" || p.QoS != 1 {
			t.Errorf("got PUBLISH %q %q QoS %d", p.Topic, p.Payload, p.QoS)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no PUBLISH received")
	}
	if n := b.Packets("c1", packets.SUBSCRIBE); n != 1 {
		t.Errorf("SUBSCRIBE packets = %d, want 1", n)
	}
	eventually(t, "PUBACK", func() bool { return b.Packets("c1", packets.PUBACK) == 1 })

	if n := b.Disconnects("c1"); n != 0 {
		t.Errorf("Disconnects() = %d while connected", n)
	}
	noErr(t, c.Disconnect(&paho.Disconnect{}))
	eventually(t, "DISCONNECT", func() bool { return b.Packets("c1", packets.DISCONNECT) == 1 })
	eventually(t, "the connection to end", func() bool { return b.Disconnects("c1") == 1 })
}

func TestNewListensOnlyOnRequest(t *testing.T) {
	b, err := New()
	noErr(t, err)
	defer b.Close()
	if b.Addr() != "" || b.URL() != "" {
		t.Fatalf("Addr() = %q, URL() = %q before ListenTCP", b.Addr(), b.URL())
	}
	mustConnect(t, b.Pipe(), "p1")

	noErr(t, b.ListenTCP())
	if b.ListenTCP() == nil {
		t.Error("second ListenTCP succeeded")
	}
	mustConnect(t, dial(t, b), "c1")
}

func TestStopRestart(t *testing.T) {
	b := Start(t)
	addr := b.Addr()
	c1, _ := mustConnect(t, dial(t, b), "c1")

	b.Stop()
	waitDone(t, c1)
	select {
	case d := <-c1.disconnects:
		t.Errorf("Stop sent a DISCONNECT (%#x); want an abrupt close", d.ReasonCode)
	default:
	}
	b.Stop() // no-op
	if conn, err := net.DialTimeout("tcp", addr, waitTimeout); err == nil {
		conn.Close()
		t.Error("dialled a stopped broker")
	}
	if err := b.Publish("t", nil, 0); !errors.Is(err, ErrStopped) {
		t.Errorf("Publish on a stopped broker: %v", err)
	}
	if _, _, err := connect(t, b.Pipe(), "p1", 30, nil); err == nil {
		t.Error("connected through Pipe to a stopped broker")
	}

	noErr(t, b.Restart())
	if b.Addr() != addr {
		t.Fatalf("Addr() = %q after Restart, want %q", b.Addr(), addr)
	}
	mustConnect(t, dial(t, b), "c2")

	// Restart of a running broker drops its clients and listens again.
	c3, _ := mustConnect(t, dial(t, b), "c3")
	noErr(t, b.Restart())
	waitDone(t, c3)
	mustConnect(t, dial(t, b), "c3")
	if n := b.Connects(); n != 4 {
		t.Errorf("Connects() = %d, want 4 (observations survive restarts)", n)
	}
}

func TestCloseIdempotent(t *testing.T) {
	b, err := New()
	noErr(t, err)
	noErr(t, b.ListenTCP())
	b.Close()
	b.Close()
	for name, err := range map[string]error{
		"Restart":          b.Restart(),
		"ListenTCP":        b.ListenTCP(),
		"Publish":          b.Publish("t", nil, 0),
		"DisconnectClient": b.DisconnectClient("c", 0),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if _, err := b.Pipe().Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("Pipe after Close: read %v, want EOF", err)
	}
}

func TestRefuse(t *testing.T) {
	b := Start(t)
	codes := []byte{0x80, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x9C, 0x9F}
	for _, code := range codes {
		b.Refuse(code)
		_, ca, err := connect(t, dial(t, b), "r", 30, nil)
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
	mustConnect(t, dial(t, b), "r")
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

func TestConnackProperties(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []Option
		wantKA  *uint16
		wantMax *uint32
	}{
		{name: "default"},
		{name: "server keep alive", opts: []Option{WithServerKeepAlive(7)}, wantKA: ptr[uint16](7)},
		{name: "server keep alive zero", opts: []Option{WithServerKeepAlive(0)}, wantKA: ptr[uint16](0)},
		{name: "maximum packet size", opts: []Option{WithMaximumPacketSize(1024)}, wantMax: ptr[uint32](1024)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Start(t, tc.opts...)
			_, ca := mustConnect(t, dial(t, b), "c")
			if got := ca.Properties.ServerKeepAlive; !equalPtr(got, tc.wantKA) {
				t.Errorf("Server Keep Alive = %v, want %v", deref(got), deref(tc.wantKA))
			}
			if got := ca.Properties.MaximumPacketSize; !equalPtr(got, tc.wantMax) {
				t.Errorf("Maximum Packet Size = %v, want %v", deref(got), deref(tc.wantMax))
			}
		})
	}
}

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

func TestDisconnectClient(t *testing.T) {
	b := Start(t)
	if b.DisconnectClient("nobody", 0x98) == nil {
		t.Error("DisconnectClient of an unknown client succeeded")
	}
	for _, code := range []byte{0x00, 0x8B, 0x98, 0x9C} {
		c, _ := mustConnect(t, dial(t, b), "c")
		noErr(t, b.DisconnectClient("c", code))
		select {
		case d := <-c.disconnects:
			if d.ReasonCode != code {
				t.Errorf("DISCONNECT reason code %#x, want %#x", d.ReasonCode, code)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("no DISCONNECT for code %#x", code)
		}
		waitDone(t, c)
		eventually(t, "client gone", func() bool { return b.DisconnectClient("c", code) != nil })
	}
}

// TestSynctestPipe runs a broker inside a synctest bubble, where fake time
// drives the client's pings and the broker's deadlines.
func TestSynctestPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New()
		noErr(t, err)
		defer b.Close()

		start := time.Now()
		c, _ := mustConnect(t, b.Pipe(), "c1")

		time.Sleep(100 * time.Second)
		select {
		case <-c.Done():
			t.Fatal("client disconnected while idle")
		default:
		}
		// paho's default pinger pings at once, then every keep alive.
		pings := b.PingTimes("c1")
		if len(pings) != 4 {
			t.Fatalf("%d PINGREQs after 100 s, want 4", len(pings))
		}
		for i, p := range pings {
			if want := time.Duration(i) * 30 * time.Second; p.Sub(start) != want {
				t.Errorf("PINGREQ %d at %v, want %v", i, p.Sub(start), want)
			}
		}
		if n := b.Packets("c1", packets.PINGREQ); n != 4 {
			t.Errorf("PINGREQ packets = %d, want 4", n)
		}

		noErr(t, c.Disconnect(&paho.Disconnect{}))
		<-c.Done()
		synctest.Wait()
		if n := b.Packets("c1", packets.DISCONNECT); n != 1 {
			t.Errorf("DISCONNECT packets = %d, want 1", n)
		}
		b.Close()
	})
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

// TestSynctestKeepAliveEnforced shows that the broker drops a silent client
// 1.5 times the keep alive in force (here the server's) after its last packet.
func TestSynctestKeepAliveEnforced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(WithServerKeepAlive(10))
		noErr(t, err)
		defer b.Close()

		start := time.Now()
		c, ca, err := connect(t, b.Pipe(), "c1", 60, silentPinger{})
		noErr(t, err)
		if !equalPtr(ca.Properties.ServerKeepAlive, ptr[uint16](10)) {
			t.Fatalf("Server Keep Alive = %v, want 10", deref(ca.Properties.ServerKeepAlive))
		}
		<-c.Done()
		if d := time.Since(start); d != 15*time.Second {
			t.Errorf("broker dropped the silent client after %v, want 15s", d)
		}
	})
}

// TestMaximumPacketSizeEnforced: mochi closes the connection of a client that
// sends an oversize packet, without a DISCONNECT.
func TestMaximumPacketSizeEnforced(t *testing.T) {
	b := Start(t, WithMaximumPacketSize(1024))
	conn := dial(t, b)
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
