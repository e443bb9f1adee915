package mqttkeeptest_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// TestSynctestPipe runs a broker inside a synctest bubble, where fake time
// drives the client's pings and the broker's deadlines.
func TestSynctestPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
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

// TestSynctestKeepAliveEnforced shows that the broker drops a silent client
// 1.5 times the keep alive in force (here the server's) after its last
// packet. NewPipeBroker's cleanup runs inside the bubble.
func TestSynctestKeepAliveEnforced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mqttkeeptest.NewPipeBroker(t, mqttkeeptest.WithServerKeepAlive(10))

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

// TestExampleSynctest runs Example_synctest's test.
func TestExampleSynctest(t *testing.T) { testIdleClientPings(t) }
