package mqttkeeptest_test

import (
	"context"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// With WithDataDir, Restart keeps a persistent session, its subscription
// and the QoS 1 messages queued for it (the library's client resumes it
// and gets them), and a retained message; a second broker on the
// directory fails to start.
func TestWithDataDirRestartKeepsSessions(t *testing.T) {
	dir := t.TempDir()
	b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithDataDir(dir))
	if s := mqttkeeptest.WithDataDir(dir).String(); s != `WithDataDir("`+dir+`")` {
		t.Errorf("the option prints as %s", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan string, 10)
	session := []mqttkeep.Option{mqttkeep.WithServer(b.URL()), mqttkeep.WithClientID("kept"),
		mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Hour),
		mqttkeep.WithDefaultHandler(func(m *mqttkeep.Message) { got <- m.Topic + " " + string(m.Payload) })}

	sub, err := mqttkeep.New(session...)
	noErr(t, err)
	noErr(t, sub.Connect(ctx))
	noErr(t, sub.Subscribe(ctx, "kept/#", 1, func(*mqttkeep.Message) {}))
	noErr(t, sub.Close(ctx)) // the session stays

	pub, err := mqttkeep.New(mqttkeep.WithServer(b.URL()))
	noErr(t, err)
	defer pub.Close(context.Background())
	noErr(t, pub.Connect(ctx))
	noErr(t, pub.Publish(ctx, "kept/queued", []byte("1"), mqttkeep.WithQoS(1)))
	noErr(t, pub.Publish(ctx, "kept/retained", []byte("r"), mqttkeep.WithQoS(1), mqttkeep.WithRetain()))
	noErr(t, pub.Close(ctx))

	if other, err := mqttkeeptest.StartBroker(mqttkeeptest.WithDataDir(dir)); err == nil {
		other.Close()
		t.Error("a second broker started on the directory in use")
	}
	noErr(t, b.Restart())
	if n := b.Disconnects("kept"); n != 1 {
		t.Errorf("Disconnects = %d after Restart, want 1: a restored session is no connection", n)
	}

	resumed, err := mqttkeep.New(session...)
	noErr(t, err)
	defer resumed.Close(context.Background())
	noErr(t, resumed.Connect(ctx))
	want := map[string]bool{"kept/queued 1": true, "kept/retained r": true} // the retained one, queued for the session too
	for len(want) > 0 {
		select {
		case m := <-got:
			delete(want, m)
		case <-ctx.Done():
			t.Fatalf("after Restart, still missing %v", want)
		}
	}
}
