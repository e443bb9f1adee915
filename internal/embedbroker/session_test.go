package embedbroker_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
)

// Helpers for the persistence tests: clients of the library, a persistent
// session that collects what it receives.

// sessionTimeout bounds each step of the persistence tests.
const sessionTimeout = 20 * time.Second

// inbox collects the payloads a client received, by topic.
type inbox struct {
	mu    sync.Mutex
	got   map[string][]string
	added chan struct{} // signalled (without blocking) on every message
}

func newInbox() *inbox {
	return &inbox{got: make(map[string][]string), added: make(chan struct{}, 1)}
}

func (in *inbox) handle(m *mqttkeep.Message) {
	in.mu.Lock()
	in.got[m.Topic] = append(in.got[m.Topic], string(m.Payload))
	in.mu.Unlock()
	select {
	case in.added <- struct{}{}:
	default:
	}
}

func (in *inbox) payloads(topic string) []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.got[topic]...)
}

// await waits until topic has n distinct payloads, or fails the test.
func (in *inbox) await(t *testing.T, topic string, n int) {
	t.Helper()
	deadline := time.After(sessionTimeout)
	for {
		if got := distinct(in.payloads(topic)); got >= n {
			return
		}
		select {
		case <-in.added:
		case <-deadline:
			got := in.payloads(topic)
			t.Fatalf("%s: %d of %d messages arrived (%d distinct): %v", topic, len(got), n, distinct(got), got)
		}
	}
}

func distinct(ps []string) int {
	seen := make(map[string]bool, len(ps))
	for _, p := range ps {
		seen[p] = true
	}
	return len(seen)
}

// numbers returns "1" … "n".
func numbers(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(i + 1)
	}
	return s
}

// connectClient connects a library client to url with opts; it is closed
// when the test ends.
func connectClient(t *testing.T, url string, opts ...mqttkeep.Option) *mqttkeep.Client {
	t.Helper()
	base := []mqttkeep.Option{
		mqttkeep.WithServer(url),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}}),
	}
	c, err := mqttkeep.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// sessionOptions are those of a subscriber whose session outlives its
// connections and its process, collecting into in what a resumed session
// delivers before (or without) a Subscribe.
func sessionOptions(id string, in *inbox) []mqttkeep.Option {
	return []mqttkeep.Option{
		mqttkeep.WithClientID(id),
		mqttkeep.WithCleanStart(false),
		mqttkeep.WithSessionExpiry(time.Hour),
		mqttkeep.WithDefaultHandler(in.handle),
	}
}

// connectWatched is connectClient with every ConnectEvent sent to
// connected (dropped when it is full).
func connectWatched(t *testing.T, url string, connected chan<- mqttkeep.ConnectEvent, opts ...mqttkeep.Option) *mqttkeep.Client {
	t.Helper()
	c, err := mqttkeep.New(append([]mqttkeep.Option{mqttkeep.WithServer(url),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}})},
		opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c.OnConnect(func(e mqttkeep.ConnectEvent) {
		select {
		case connected <- e:
		default:
		}
	})
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// subscribeAndLeave makes the session id subscribed to filter (QoS 1) and
// then closes its client, leaving the session to the broker.
func subscribeAndLeave(t *testing.T, url, id, filter string) {
	t.Helper()
	in := newInbox()
	c := connectClient(t, url, sessionOptions(id, in)...)
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	if err := c.Subscribe(ctx, filter, 1, in.handle); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// publishAll publishes each payload to topic with QoS 1 (retained if
// retain) and returns once the broker acknowledged every one; it returns
// the PUBACK reason codes.
func publishAll(t *testing.T, url, topic string, retain bool, payloads ...string) []byte {
	t.Helper()
	c := connectClient(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	var codes []byte
	for _, p := range payloads {
		opts := []mqttkeep.PublishOption{mqttkeep.WithQoS(1)}
		if retain {
			opts = append(opts, mqttkeep.WithRetain())
		}
		res, err := c.PublishAsync(ctx, topic, []byte(p), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Wait(ctx); err != nil {
			t.Fatalf("publish %s to %s: %v", p, topic, err)
		}
		codes = append(codes, byte(res.ReasonCode()))
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return codes
}
