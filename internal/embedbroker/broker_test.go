package embedbroker_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
	mqtt "github.com/mqttkeep/mqttkeep/internal/mochi"
)

// The kit's behaviour is tested in package mqttkeeptest; these tests cover
// what only the command uses.

const waitTimeout = 5 * time.Second

// mqttConnect sends a CONNECT for clientID over conn and returns the
// CONNACK's reason code. Reads and writes on conn end within waitTimeout.
func mqttConnect(t *testing.T, conn net.Conn, clientID string) byte {
	t.Helper()
	if err := conn.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	pk := packets.NewControlPacket(packets.CONNECT)
	pk.Content.(*packets.Connect).ClientID = clientID
	pk.Content.(*packets.Connect).CleanStart = true
	if _, err := pk.WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	ca, err := packets.ReadPacket(conn)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Type != packets.CONNACK {
		t.Fatalf("got %s, want CONNACK", ca.PacketType())
	}
	return ca.Content.(*packets.Connack).ReasonCode
}

func TestListen(t *testing.T) {
	b, err := embedbroker.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Addr() != "" || b.URL() != "" {
		t.Fatalf("Addr() = %q, URL() = %q before Listen", b.Addr(), b.URL())
	}
	if rc := mqttConnect(t, b.Pipe(), "p"); rc != 0 {
		t.Errorf("pipe CONNACK %#x", rc)
	}
	if err := b.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if b.Listen("127.0.0.1:0") == nil || b.ListenTCP() == nil {
		t.Error("second Listen succeeded")
	}
	conn, err := net.DialTimeout("tcp", b.Addr(), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if rc := mqttConnect(t, conn, "c"); rc != 0 {
		t.Errorf("TCP CONNACK %#x", rc)
	}

	// A busy address is an error that says so.
	other, err := embedbroker.New()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Listen(b.Addr()); err == nil {
		t.Error("listened on a busy address")
	}

	b.Close()
	for name, err := range map[string]error{"Listen": b.Listen("127.0.0.1:0"), "Restart": b.Restart()} {
		if !errors.Is(err, embedbroker.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// Shutdown tells every client with a DISCONNECT 0x8B, as mochi's own
// Close does for its listeners' clients.
func TestShutdown(t *testing.T) {
	b, err := embedbroker.New()
	if err != nil {
		t.Fatal(err)
	}
	conn := b.Pipe()
	defer conn.Close()
	if rc := mqttConnect(t, conn, "c"); rc != 0 {
		t.Fatalf("CONNACK %#x", rc)
	}
	silent := b.Pipe() // never sends CONNECT: Shutdown must not wait for it
	defer silent.Close()

	done := make(chan struct{})
	go func() { b.Shutdown(); close(done) }()
	pk, err := packets.ReadPacket(conn)
	if err != nil {
		t.Fatal(err)
	}
	if pk.Type != packets.DISCONNECT || pk.Content.(*packets.Disconnect).ReasonCode != 0x8B {
		t.Errorf("got %s, want DISCONNECT 0x8B", pk.PacketType())
	}
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown hangs")
	}
}

// WithHooks adds a fresh set of hooks to every mochi server.
func TestWithHooks(t *testing.T) {
	var made int
	b, err := embedbroker.New(embedbroker.WithHooks(func() []mqtt.Hook {
		made++
		return []mqtt.Hook{new(mqtt.HookBase)}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if made != 2 {
		t.Errorf("hooks made %d times for New and one Restart, want 2", made)
	}
}
