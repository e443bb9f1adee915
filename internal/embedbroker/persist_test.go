package embedbroker_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
	mqtt "github.com/mqttkeep/mqttkeep/internal/mochi"
)

// queuedMessages is how many QoS 1 messages the persistence tests queue
// for an absent subscriber.
const queuedMessages = 100

// leaveState leaves on the broker at url what a restart must keep: a
// persistent session (keep-sub, subscribed to keep/#, now disconnected)
// with queuedMessages QoS 1 messages queued for it, each acknowledged by
// the broker, and a retained message.
func leaveState(t *testing.T, url string) {
	t.Helper()
	subscribeAndLeave(t, url, "keep-sub", "keep/#")
	for i, rc := range publishAll(t, url, "keep/queued", false, numbers(queuedMessages)...) {
		if rc != 0 {
			t.Fatalf("message %d: PUBACK %#x, want 0x00 (a subscriber matched)", i+1, rc)
		}
	}
	publishAll(t, url, "keep/retained", true, "the retained one")
}

// checkState checks that the broker at url has what leaveState left: the
// subscription (a message published now matches it and is queued), the
// queued messages (the session's next connection gets them all, in order),
// and the retained message.
func checkState(t *testing.T, url string) {
	t.Helper()
	if rc := publishAll(t, url, "keep/after", false, "after the restart"); rc[0] != 0 {
		t.Errorf("publish after the restart: PUBACK %#x, want 0x00: the subscription is gone", rc[0])
	}

	in := newInbox()
	connected := make(chan mqttkeep.ConnectEvent, 1)
	connectWatched(t, url, connected, sessionOptions("keep-sub", in)...)
	if e := <-connected; !e.SessionPresent {
		t.Fatal("the session did not survive: CONNACK Session Present 0")
	}
	in.await(t, "keep/queued", queuedMessages)
	in.await(t, "keep/after", 1)
	if got := in.payloads("keep/queued"); !slices.Equal(got, numbers(queuedMessages)) {
		t.Errorf("queued messages arrived as %v, want 1 … %d once each, in order", got, queuedMessages)
	}

	r := newInbox()
	c := connectClient(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	if err := c.Subscribe(ctx, "keep/retained", 1, r.handle); err != nil {
		t.Fatal(err)
	}
	r.await(t, "keep/retained", 1)
	if got := r.payloads("keep/retained"); got[0] != "the retained one" {
		t.Errorf("retained message %q", got[0])
	}
}

func newListening(t *testing.T, opts ...embedbroker.Option) *embedbroker.Broker {
	t.Helper()
	b, err := embedbroker.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.ListenTCP(); err != nil {
		t.Fatal(err)
	}
	return b
}

// With WithDataDir, Restart (a clean stop and start) keeps sessions,
// subscriptions, queued messages and retained messages.
func TestDataDirKeepsStateAcrossRestart(t *testing.T) {
	b := newListening(t, embedbroker.WithDataDir(t.TempDir()))
	leaveState(t, b.URL())
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	checkState(t, b.URL())
}

// A new broker on the directory a closed one used has its state.
func TestDataDirKeepsStateAcrossClose(t *testing.T) {
	dir := t.TempDir()
	b := newListening(t, embedbroker.WithDataDir(dir))
	leaveState(t, b.URL())
	b.Close()
	checkState(t, newListening(t, embedbroker.WithDataDir(dir)).URL())
}

// Without it, Restart loses all of that.
func TestRestartWithoutDataDirLosesState(t *testing.T) {
	b := newListening(t)
	leaveState(t, b.URL())
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if rc := publishAll(t, b.URL(), "keep/after", false, "x"); rc[0] != 0x10 {
		t.Errorf("PUBACK %#x, want 0x10: the subscription should be gone", rc[0])
	}
	connected := make(chan mqttkeep.ConnectEvent, 1)
	connectWatched(t, b.URL(), connected, sessionOptions("keep-sub", newInbox())...)
	if e := <-connected; e.SessionPresent {
		t.Error("a session survived a restart without a data directory")
	}
}

// One broker at a time per directory: a second one fails to start, with
// an error saying why.
func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	newListening(t, embedbroker.WithDataDir(dir))
	b, err := embedbroker.New(embedbroker.WithDataDir(dir))
	if err == nil {
		b.Close()
		t.Fatal("two brokers opened one data directory")
	}
	if !errors.Is(err, filestore.ErrLocked) {
		t.Errorf("error %v, want one matching filestore.ErrLocked", err)
	}
}

// disconnects is a hook that reports each client whose connection mochi
// has finished with; it runs after the store hook's OnDisconnect.
type disconnects struct {
	mqtt.HookBase
	ids chan string
}

func (h *disconnects) ID() string { return "test-disconnects" }

func (h *disconnects) Provides(b byte) bool { return b == mqtt.OnDisconnect }

func (h *disconnects) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if cl.Net.Conn != nil { // not a session restored at start
		h.ids <- cl.ID
	}
}

// A session that ends with its connection (the library's Close ends it)
// is not kept.
func TestDataDirDropsEndedSessions(t *testing.T) {
	gone := &disconnects{ids: make(chan string, 10)}
	b := newListening(t, embedbroker.WithDataDir(t.TempDir()),
		embedbroker.WithHooks(func() []mqtt.Hook { return []mqtt.Hook{gone} }))
	c := connectClient(t, b.URL(), mqttkeep.WithClientID("ends"))
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	if err := c.Subscribe(ctx, "ends/#", 1, func(*mqttkeep.Message) {}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil { // Session Expiry Interval 0 in its DISCONNECT
		t.Fatal(err)
	}
	select {
	case <-gone.ids: // the broker is done with the connection, and the store with the session
	case <-ctx.Done():
		t.Fatal("the broker did not finish with the connection")
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if rc := publishAll(t, b.URL(), "ends/x", false, "x"); rc[0] != 0x10 {
		t.Errorf("PUBACK %#x, want 0x10: the ended session's subscription came back", rc[0])
	}
	connected := make(chan mqttkeep.ConnectEvent, 1)
	connectWatched(t, b.URL(), connected, sessionOptions("ends", newInbox())...)
	if e := <-connected; e.SessionPresent {
		t.Error("the ended session came back: CONNACK Session Present 1")
	}
}

// A Clean Start discards the session it replaces, in the store too: its
// subscription does not come back after a restart, even when the new
// session (which outlives its connection) was never ended.
func TestDataDirCleanStartDiscardsSession(t *testing.T) {
	b := newListening(t, embedbroker.WithDataDir(t.TempDir()))
	subscribeAndLeave(t, b.URL(), "comes-back-clean", "clean/#")
	connectClient(t, b.URL(), mqttkeep.WithClientID("comes-back-clean")) // Clean Start 1, expiry 5 min
	if err := b.Restart(); err != nil {                                  // drops the connection: the new session stays
		t.Fatal(err)
	}
	if rc := publishAll(t, b.URL(), "clean/x", false, "x"); rc[0] != 0x10 {
		t.Errorf("PUBACK %#x, want 0x10: the discarded session's subscription came back", rc[0])
	}
}
