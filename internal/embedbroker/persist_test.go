package embedbroker_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
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
	connectClient(t, url, sessionOptions("keep-sub", in, connected)...)
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
	connectClient(t, b.URL(), sessionOptions("keep-sub", newInbox(), connected)...)
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

// A session that ends with its connection is not kept, nor are the
// sessions of clients that came back with a clean start.
func TestDataDirDropsEndedSessions(t *testing.T) {
	b := newListening(t, embedbroker.WithDataDir(t.TempDir()))
	subscribeAndLeave(t, b.URL(), "comes-back-clean", "clean/#")
	c := connectClient(t, b.URL(), mqttkeep.WithClientID("comes-back-clean")) // Clean Start 1, expiry 5 min
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	if err := c.Close(ctx); err != nil { // ends the session (the library's default)
		t.Fatal(err)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if rc := publishAll(t, b.URL(), "clean/x", false, "x"); rc[0] != 0x10 {
		t.Errorf("PUBACK %#x, want 0x10: the ended session's subscription came back", rc[0])
	}
}
