package mqttkeep_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The low-power keep alive holds the broker's keep alive with one PINGREQ
// per K (the default sends one per K/2), and the connect event states the
// bound it gives: K + T.
func TestLowPowerKeepAlivePingsOncePerK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const k = 60 * time.Second
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		ev := newEvents()
		c := newClient(t, append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
			mqttkeep.WithClientID("frugal"), mqttkeep.WithKeepAlive(k), mqttkeep.WithLowPowerKeepAlive())...)
		connect(t, c)
		start := time.Now()
		time.Sleep(time.Hour + k/4)
		assert.Equal(t, mqttkeep.StateConnected, c.State())
		_, disconnects := ev.counts()
		assert.Zero(t, disconnects, "the broker (1.5 K) keeps a client that pings every K")
		pings := b.PingTimes("frugal")
		require.Len(t, pings, 60, "one PINGREQ per K over an hour")
		prev := start
		for i, at := range pings {
			assert.Equal(t, k, at.Sub(prev), "interval before ping %d", i)
			prev = at
		}
		assert.Equal(t, k+k/2, ev.connectEvent(t, 0).DeadLinkBound)
		require.NoError(t, c.Close(context.Background()))
	})
}

// The default's bound, stated the same way: K/2 + T.
func TestDeadLinkBoundInConnectEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		ev := newEvents()
		c := newClient(t, append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
			mqttkeep.WithKeepAlive(30*time.Second), mqttkeep.WithPingTimeout(5*time.Second))...)
		connect(t, c)
		assert.Equal(t, 20*time.Second, ev.connectEvent(t, 0).DeadLinkBound)
		require.NoError(t, c.Close(context.Background()))
	})
}

// In the low-power mode a silent link death is reported within K + T of
// the link going silent, whatever the phase of the ping cycle; requests
// in flight are still probes.
func TestLowPowerDeadLinkWithinBound(t *testing.T) {
	const k = 30 * time.Second
	for _, phase := range []time.Duration{0, k / 4, k / 2, k - time.Millisecond} {
		t.Run(phase.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := mqttkeeptest.StartPipeBroker()
				require.NoError(t, err)
				defer b.Close()
				link := &pipeLink{broker: b}
				ev := newEvents()
				c := newClient(t, append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), link.dialer(),
					mqttkeep.WithKeepAlive(k), mqttkeep.WithLowPowerKeepAlive(),
					mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
				connect(t, c)
				time.Sleep(3*k + phase)
				diedAt := time.Now()
				link.blackhole.Store(true)
				select {
				case lost := <-ev.lost:
					require.ErrorIs(t, lost.Err, mqttkeep.ErrPingTimeout)
				case <-time.After(10 * k):
					t.Fatal("dead link never reported")
				}
				detection := time.Since(diedAt)
				t.Logf("phase %v: detection %v (bound K + T = %v)", phase, detection, k+k/2)
				assert.LessOrEqual(t, detection, k+k/2)
				assert.GreaterOrEqual(t, detection, k/2, "never before a PINGREQ went unanswered for T")
				require.NoError(t, c.Close(context.Background()))
				link.wg.Wait()
			})
		})
	}
}
