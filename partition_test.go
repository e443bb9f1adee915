package mqttkeep_test

import (
	"context"
	"flag"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fleetSize sets how many clients TestFleetBehindOneDeadLink models:
//
//	go test -run TestFleetBehindOneDeadLink -fleet 10000 -v .
var fleetSize = flag.Int("fleet", 300, "TestFleetBehindOneDeadLink: clients behind the dead link")

// The dial budget of a long partition: a quick heal early on, few SYNs
// late. In a 60 s partition a client dials 10 times in the first 10 s (a
// heal then is reached within 0.5 s) and once per attempt after it, the
// attempts at least 5 s apart: at most 15 dials in all (the overlapping
// dials made 95 to 100 before). A heal after 60 s is reached by the next
// dial or one of its SYN retransmissions.
func TestDialBudgetInALongPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		pd := &partitionDialer{link: &pipeLink{broker: b}, healed: make(chan struct{})}
		ev := newEvents()
		c := newClient(t, append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), mqttkeep.WithDialer(pd.dial),
			mqttkeep.WithKeepAlive(2*time.Second), mqttkeep.WithPingTimeout(time.Second))...)
		connect(t, c)
		var heals []time.Duration
		var counts []int32
		for range 5 {
			pd.partition()
			<-ev.lost
			before := pd.dials.Load()
			time.Sleep(60 * time.Second)
			counts = append(counts, pd.dials.Load()-before)
			pd.heal()
			healAt := time.Now()
			require.NoError(t, c.AwaitConnected(context.Background()))
			heals = append(heals, time.Since(healAt))
		}
		require.NoError(t, c.Close(context.Background()))
		pd.link.wg.Wait()
		t.Logf("60 s partitions: dials %v, heal -> connected %v", counts, heals)
		for _, n := range counts {
			assert.LessOrEqual(t, n, int32(15), "dials in a 60 s partition")
			assert.GreaterOrEqual(t, n, int32(12), "the client keeps trying")
		}
		assert.LessOrEqual(t, slices.Max(heals), 8*time.Second, "a dial or a SYN retransmission reaches the healed broker")
	})
}

// A fleet behind one dead link (every client cut off at once, a 60 s
// partition): what the broker's network sees. The model counts dials per
// second, as SYNs a broker would get (each socket also retransmits its SYN
// at 1, 3 and 7 s), and CONNECTs per 100 ms at the heal. The golden-ratio
// phases of the retry grid and the jitter of the attempt spacing keep the
// fleet from dialling in step after the first seconds.
func TestFleetBehindOneDeadLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := *fleetSize
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		pd := &partitionDialer{link: &pipeLink{broker: b}, healed: make(chan struct{})}
		var mu sync.Mutex
		var dialsAt, backAt []time.Time
		counting := func(ctx context.Context, u *url.URL) (net.Conn, error) {
			mu.Lock()
			dialsAt = append(dialsAt, time.Now())
			mu.Unlock()
			return pd.dial(ctx, u)
		}
		lost := make(chan struct{}, n)
		clients := make([]*mqttkeep.Client, n)
		for i := range n {
			c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), mqttkeep.WithDialer(counting),
				mqttkeep.WithKeepAlive(30*time.Second),
				mqttkeep.HooksForTest(func(e mqttkeep.ConnectEvent) {
					if e.Downtime > 0 {
						mu.Lock()
						backAt = append(backAt, time.Now())
						mu.Unlock()
					}
				}, func(e mqttkeep.DisconnectEvent) {
					if e.Err != nil {
						lost <- struct{}{}
					}
				}, nil, nil))
			require.NoError(t, err)
			require.NoError(t, c.Connect(context.Background()))
			clients[i] = c
		}
		time.Sleep(10 * time.Second) // the clients' keepalive phases spread
		mu.Lock()
		dialsAt = nil
		mu.Unlock()
		pd.partition()
		cutAt := time.Now()
		for range n {
			<-lost // every client found the dead link (within K = 30 s)
		}
		detectedAt := time.Now()
		time.Sleep(time.Until(cutAt.Add(60 * time.Second)))
		pd.heal()
		healAt := time.Now()
		for _, c := range clients {
			require.NoError(t, c.AwaitConnected(context.Background()))
		}
		allBack := time.Since(healAt)
		for _, c := range clients {
			require.NoError(t, c.Close(context.Background()))
		}
		pd.link.wg.Wait()

		perSecond := map[int]int{}
		for _, at := range dialsAt {
			if at.Before(healAt) {
				perSecond[int(at.Sub(cutAt)/time.Second)]++
			}
		}
		peakEarly, peakLate := 0, 0
		for s, k := range perSecond {
			if time.Duration(s)*time.Second < detectedAt.Sub(cutAt)+10*time.Second {
				peakEarly = max(peakEarly, k)
			} else {
				peakLate = max(peakLate, k)
			}
		}
		bins := map[time.Duration]int{}
		for _, at := range backAt {
			bins[at.Sub(healAt)/(100*time.Millisecond)]++
		}
		peakHeal := 0
		for _, k := range bins {
			peakHeal = max(peakHeal, k)
		}
		perClient := float64(len(dialsAt)) / float64(n)
		t.Logf("fleet of %d behind a dead link for 60 s: detection spread %v; dials per client %.1f; peak dials/s %d while detecting and for 10 s after, %d later (%.2f per client per s); at the heal: all back in %v, peak %d CONNECTs per 100 ms",
			n, detectedAt.Sub(cutAt), perClient, peakEarly, peakLate, float64(peakLate)/float64(n), allBack, peakHeal)
		assert.LessOrEqual(t, perClient, 15.0, "dials per client in 60 s")
		assert.LessOrEqual(t, float64(peakLate)/float64(n), 0.4, "late in the partition, a client dials at most every 2.5 s on average")
	})
}
