package mqttkeeptest_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

func TestNewBrokerTCP(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q", b.Addr())
	}
	if want := "mqtt://" + b.Addr(); b.URL() != want {
		t.Fatalf("URL() = %q, want %q", b.URL(), want)
	}

	c, ca := mustConnect(t, dialBroker(t, b), "c1")
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
	subscribe(t, c, "t/#", 1)
	noErr(t, b.Publish("t/x", []byte("hello"), 1))
	if p := receive(t, c); p.Topic != "t/x" || string(p.Payload) != "hello" || p.QoS != 1 {
		t.Errorf("got PUBLISH %q %q QoS %d", p.Topic, p.Payload, p.QoS)
	}
	if n := b.Packets("c1", packets.SUBSCRIBE); n != 1 {
		t.Errorf("SUBSCRIBE packets = %d, want 1", n)
	}
	eventually(t, "PUBACK", func() bool { return b.Packets("c1", packets.PUBACK) == 1 })

	noErr(t, c.Disconnect(&paho.Disconnect{}))
	eventually(t, "DISCONNECT", func() bool { return b.Packets("c1", packets.DISCONNECT) == 1 })
}

// A pipe broker opens no socket; a TCP broker serves pipes too.
func TestPipeBroker(t *testing.T) {
	b := mqttkeeptest.NewPipeBroker(t)
	if b.Addr() != "" || b.URL() != "" {
		t.Fatalf("pipe broker: Addr() = %q, URL() = %q", b.Addr(), b.URL())
	}
	mustConnect(t, b.Pipe(), "p1")
	if err := b.Bounce(0); err == nil {
		t.Error("Bounce of a pipe broker succeeded")
	}

	tb := mqttkeeptest.NewBroker(t)
	mustConnect(t, tb.Pipe(), "p1")
	mustConnect(t, dialBroker(t, tb), "c1")
	if n := tb.Connects(); n != 2 {
		t.Errorf("Connects() = %d, want 2", n)
	}
}

func TestStopRestart(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	addr := b.Addr()
	c1, _ := mustConnect(t, dialBroker(t, b), "c1")

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
	if err := b.Publish("t", nil, 0); !errors.Is(err, mqttkeeptest.ErrStopped) {
		t.Errorf("Publish on a stopped broker: %v", err)
	}
	if _, _, err := connect(t, b.Pipe(), "p1", 30, nil); err == nil {
		t.Error("connected through Pipe to a stopped broker")
	}

	noErr(t, b.Restart())
	if b.Addr() != addr {
		t.Fatalf("Addr() = %q after Restart, want %q", b.Addr(), addr)
	}
	mustConnect(t, dialBroker(t, b), "c2")

	// Restart of a running broker drops its clients and listens again.
	c3, _ := mustConnect(t, dialBroker(t, b), "c3")
	noErr(t, b.Restart())
	waitDone(t, c3)
	mustConnect(t, dialBroker(t, b), "c3")
	if n := b.Connects(); n != 4 {
		t.Errorf("Connects() = %d, want 4 (observations survive restarts)", n)
	}
}

// Restart loses the sessions; Bounce keeps them, and the messages queued
// for a disconnected client meanwhile.
func TestBounceKeepsSessions(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	expiry := uint32(60)
	persistent := func(clean bool) *paho.Connect {
		return &paho.Connect{ClientID: "p", KeepAlive: 30, CleanStart: clean,
			Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}
	}
	c, _ := mustConnectWith(t, dialBroker(t, b), persistent(true))
	subscribe(t, c, "kept/#", 1)

	const down = time.Second
	start := time.Now()
	bounced := make(chan error, 1)
	go func() { bounced <- b.Bounce(down) }()
	waitDone(t, c)
	select {
	case d := <-c.disconnects:
		t.Errorf("Bounce sent a DISCONNECT (%#x); want an abrupt close", d.ReasonCode)
	default:
	}
	if conn, err := net.DialTimeout("tcp", b.Addr(), waitTimeout); err == nil {
		conn.Close()
		if time.Since(start) < down {
			t.Error("dialled the broker while it was down")
		}
	}
	noErr(t, b.Publish("kept/1", []byte("queued while away"), 1))
	noErr(t, <-bounced)
	if time.Since(start) < down {
		t.Errorf("Bounce returned after %v, want at least %v", time.Since(start), down)
	}

	c, ca := mustConnectWith(t, dialBroker(t, b), persistent(false))
	if !ca.SessionPresent {
		t.Fatal("session lost across Bounce")
	}
	if p := receive(t, c); string(p.Payload) != "queued while away" {
		t.Errorf("got %q after Bounce", p.Payload)
	}

	noErr(t, b.Restart())
	_, ca = mustConnectWith(t, dialBroker(t, b), persistent(false))
	if ca.SessionPresent {
		t.Error("session kept across Restart")
	}
}

func TestCloseIdempotent(t *testing.T) {
	b, err := mqttkeeptest.StartBroker()
	noErr(t, err)
	b.Close()
	b.Close()
	for name, err := range map[string]error{
		"Restart":          b.Restart(),
		"Bounce":           b.Bounce(0),
		"Publish":          b.Publish("t", nil, 0),
		"Subscribe":        b.Subscribe("t", func(string, []byte) {}),
		"DisconnectClient": b.DisconnectClient("c", 0),
	} {
		if !errors.Is(err, mqttkeeptest.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if _, err := b.Pipe().Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("Pipe after Close: read %v, want EOF", err)
	}
}

// mochi's own Server.Close waits forever for a connection that never sent
// a whole CONNECT; the broker's Restart, Stop and Close must not.
func TestCloseWithSilentConnections(t *testing.T) {
	b, err := mqttkeeptest.StartBroker()
	noErr(t, err)
	silent := func() {
		tcp, partial, pipe := dialBroker(t, b), dialBroker(t, b), b.Pipe()
		_, err := partial.Write([]byte{0x10, 0x20}) // CONNECT, 32 bytes follow (they never do)
		noErr(t, err)
		t.Cleanup(func() { tcp.Close(); partial.Close(); pipe.Close() })
	}
	within := func(name string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { f(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Fatalf("%s hangs on connections that sent no CONNECT", name)
		}
	}
	silent()
	within("Restart", func() { noErr(t, b.Restart()) })
	silent()
	within("Stop", b.Stop)
	noErr(t, b.Restart())
	silent()
	within("Close", b.Close)
}

// SentTo records the payloads written to a client; Payloads those read.
func TestRecordedPayloads(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	sub, _ := mustConnect(t, dialBroker(t, b), "sub")
	subscribe(t, sub, "r/#", 1)
	pub, _ := mustConnect(t, dialBroker(t, b), "pub")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := pub.Publish(ctx, &paho.Publish{Topic: "r/1", QoS: 1, Payload: []byte("one")})
	noErr(t, err)
	receive(t, sub) // mochi sends the PUBACK before it forwards the message
	noErr(t, b.Publish("r/2", []byte("two"), 0))
	receive(t, sub)
	// A write is recorded after it returned: the client may be faster.
	eventually(t, "two PUBLISH sent", func() bool { return len(b.SentTo("sub")) == 2 })

	if got := b.Payloads("r/1"); len(got) != 1 || string(got[0]) != "one" {
		t.Errorf("Payloads(r/1) = %q", got)
	}
	if got := b.Payloads("r/2"); got != nil {
		t.Errorf("Payloads(r/2) = %q; the broker's own messages are not read from a client", got)
	}
	if got := b.SentTo("sub"); len(got) != 2 || string(got[0]) != "one" || string(got[1]) != "two" {
		t.Errorf("SentTo(sub) = %q, want [one two]", got)
	}
	if got := b.SentTo("pub"); got != nil {
		t.Errorf("SentTo(pub) = %q", got)
	}
	// Copies: changing one changes nothing recorded.
	b.Payloads("r/1")[0][0] = 'X'
	if got := b.Payloads("r/1"); string(got[0]) != "one" {
		t.Errorf("Payloads returned the recorded slice: %q", got)
	}
}
