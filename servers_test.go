package mqttkeep_test

import (
	"context"
	"net"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverFarm is a list of brokers behind one dialer, for the server-list
// policy: each URL's host names a broker, which can be down (its port
// refuses) or up. It works inside a synctest bubble.
type serverFarm struct {
	mu      sync.Mutex
	brokers map[string]*mqttkeeptest.Broker
	down    map[string]bool
	dials   []string // hosts dialled, in order
	dialAt  []time.Time
}

func newServerFarm(t *testing.T, hosts ...string) *serverFarm {
	f := &serverFarm{brokers: map[string]*mqttkeeptest.Broker{}, down: map[string]bool{}}
	for _, h := range hosts {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		t.Cleanup(b.Close)
		f.brokers[h] = b
	}
	return f
}

func (f *serverFarm) urls() []string {
	var out []string
	for _, h := range []string{"n1", "n2", "n3"} {
		if _, ok := f.brokers[h]; ok {
			out = append(out, "mqtt://"+h)
		}
	}
	return out
}

func (f *serverFarm) setDown(host string, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[host] = down
}

func (f *serverFarm) dial(_ context.Context, u *url.URL) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := u.Hostname()
	f.dials = append(f.dials, h)
	f.dialAt = append(f.dialAt, time.Now())
	if f.down[h] {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	return f.brokers[h].Pipe(), nil
}

func (f *serverFarm) dialled() ([]string, []time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.dials...), append([]time.Time(nil), f.dialAt...)
}

// The server-list policy: a failed attempt tries the next untried server
// at once; once every server failed, the client waits (the retry grid)
// and starts a new round; a lost connection goes on with the next server;
// and the client stays on the server that works, also when the first one
// is back.
func TestServerListPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newServerFarm(t, "n1", "n2", "n3")
		f.setDown("n1", true)
		ev := newEvents()
		c := newClient(t, append(ev.options(), mqttkeep.WithServer(f.urls()...), mqttkeep.WithDialer(f.dial))...)
		start := time.Now()
		connect(t, c)
		assert.Equal(t, "mqtt://n2:1883", ev.connectEvent(t, 0).Server)
		dials, at := f.dialled()
		assert.Equal(t, []string{"n1", "n2"}, dials, "n1 refused, n2 at once")
		assert.Equal(t, start, at[1], "no wait before an untried server")

		// n2 goes away: the client goes on with n3, and stays there
		// when n1 and n2 are back.
		f.setDown("n1", false)
		f.setDown("n2", true)
		require.NoError(t, f.brokers["n2"].DisconnectClient(c.ClientID(), 0x8B))
		<-ev.lost
		require.NoError(t, c.AwaitConnected(context.Background()))
		assert.Equal(t, "mqtt://n3:1883", ev.connectEvent(t, 1).Server)
		f.setDown("n2", false)
		time.Sleep(10 * time.Minute)
		connects, _ := ev.counts()
		assert.Equal(t, 2, connects, "sticky: no move back once connected")

		// Every server down: one round of three at once, then a wait.
		for _, h := range []string{"n1", "n2", "n3"} {
			f.setDown(h, true)
		}
		dials, _ = f.dialled()
		before := len(dials)
		require.NoError(t, f.brokers["n3"].DisconnectClient(c.ClientID(), 0x8B))
		<-ev.lost
		time.Sleep(3 * time.Second)
		dials, at = f.dialled()
		round := dials[before:]
		require.GreaterOrEqual(t, len(round), 6, "at least two rounds in 3 s")
		assert.Equal(t, []string{"n1", "n2", "n3"}, round[:3], "after n3 was lost: n1, then the others, at once")
		assert.Equal(t, at[before], at[before+2], "a round is tried at once")
		assert.Greater(t, at[before+3].Sub(at[before+2]), time.Duration(0), "a new round waits")
		require.NoError(t, c.Close(context.Background()))
	})
}

// ReconnectPolicy.RandomStart spreads a fleet's first choice over the
// list; without it every client begins with the first server.
func TestRandomStartSpreadsAFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newServerFarm(t, "n1", "n2", "n3")
		first := map[string]int{}
		for _, random := range []bool{false, true} {
			for range 150 {
				c, err := mqttkeep.New(mqttkeep.WithServer(f.urls()...), mqttkeep.WithDialer(f.dial),
					mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{RandomStart: random}))
				require.NoError(t, err)
				dials, _ := f.dialled()
				n := len(dials)
				require.NoError(t, c.Connect(context.Background()))
				dials, _ = f.dialled()
				if random {
					first[dials[n]]++
				} else {
					assert.Equal(t, "n1", dials[n])
				}
				require.NoError(t, c.Close(context.Background()))
			}
		}
		t.Logf("first server of 150 clients with RandomStart: %v", first)
		for _, h := range []string{"n1", "n2", "n3"} {
			assert.Greater(t, first[h], 20, "server %s", h)
		}
	})
}
