package mqttkeeptest_test

import (
	"context"
	"net"
	"net/url"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// testIdleClientPings is a test of your package (name it
// TestIdleClientPings): five minutes of a client idling against a broker
// that imposes a 20 s keep alive. In a testing/synctest bubble, time is
// fake, so the test takes milliseconds, and exactly.
func testIdleClientPings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Created in the bubble with the bubble's t: the broker lives in
		// the bubble and its cleanup runs there.
		broker := mqttkeeptest.NewPipeBroker(t, mqttkeeptest.WithServerKeepAlive(20))
		client, err := mqttkeep.New(
			mqttkeep.WithServer("mqtt://pipe"), // the dialer ignores the address
			mqttkeep.WithDialer(func(context.Context, *url.URL) (net.Conn, error) { return broker.Pipe(), nil }),
			mqttkeep.WithClientID("idle"),
			mqttkeep.WithKeepAlive(60*time.Second), // the broker's 20 s wins
		)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close(context.Background())
		if err := client.Connect(t.Context()); err != nil {
			t.Fatal(err)
		}

		time.Sleep(5*time.Minute + 5*time.Second)

		if s := client.State(); s != mqttkeep.StateConnected {
			t.Errorf("state %v after 5 minutes idle", s)
		}
		// An idle client pings every keep alive / 2.
		if n := len(broker.PingTimes("idle")); n != 30 {
			t.Errorf("%d PINGREQs in 5 minutes, want 30", n)
		}
	})
}

// The broker from NewPipeBroker inside a testing/synctest bubble: see
// testIdleClientPings above, which a test function runs (this package's
// TestExampleSynctest does).
func Example_synctest() {}
