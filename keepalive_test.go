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

// The seed's failure: umqtt.simple never pings, so mochi (like mosquitto)
// drops an idle client after 1.5 × keep alive. Here the client does
// nothing at all for 10 × K and must stay connected, pinging every K/2.
func TestIdleClientStaysConnected(t *testing.T) {
	for _, k := range []time.Duration{time.Second, 10 * time.Second, 30 * time.Second} {
		t.Run(k.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := mqttkeeptest.StartPipeBroker()
				require.NoError(t, err)
				defer b.Close()
				ev := newEvents()
				c := newClient(t, append(ev.options(),
					mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
					mqttkeep.WithClientID("idle"), mqttkeep.WithKeepAlive(k))...)
				connect(t, c)
				start := time.Now()

				time.Sleep(10*k + k/4)

				assert.Equal(t, mqttkeep.StateConnected, c.State())
				_, disconnects := ev.counts()
				assert.Zero(t, disconnects, "the broker must not drop an idle client")
				pings := b.PingTimes("idle")
				require.Len(t, pings, 20, "one PINGREQ every K/2 over 10 K")
				prev := start
				for i, at := range pings {
					assert.Equal(t, k/2, at.Sub(prev), "interval before ping %d", i)
					prev = at
				}
				st := c.Stats()
				assert.EqualValues(t, 20, st.PingsSent)
				assert.EqualValues(t, 20, st.PingResponses)
				assert.Equal(t, k, st.KeepAlive)
				require.NoError(t, c.Close(context.Background()))
			})
		})
	}
}

// A client that only sends (QoS 0, no replies) must still probe the
// broker: "nothing received for K/2" triggers a PINGREQ on its own.
func TestPublishOnlyClientStillProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		c := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
			mqttkeep.WithClientID("talker"), mqttkeep.WithKeepAlive(10*time.Second))
		connect(t, c)
		for range 195 { // 19.5 s of QoS 0 every 100 ms
			require.NoError(t, c.Publish(context.Background(), "t/talk", []byte("x")))
			time.Sleep(100 * time.Millisecond)
		}
		assert.Len(t, b.PingTimes("talker"), 3, "one PINGREQ per 5 s without anything received")
	})
}

// The broker's Server Keep Alive wins over the client's.
func TestServerKeepAliveOverrides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker(mqttkeeptest.WithServerKeepAlive(4))
		require.NoError(t, err)
		defer b.Close()
		ev := newEvents()
		c := newClient(t, append(ev.options(),
			mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
			mqttkeep.WithClientID("override"), mqttkeep.WithKeepAlive(60*time.Second))...)
		connect(t, c)
		start := time.Now()
		time.Sleep(41 * time.Second)

		assert.Equal(t, 4*time.Second, c.Stats().KeepAlive)
		pings := b.PingTimes("override")
		require.Len(t, pings, 20, "PINGREQ every 2 s (the broker's 4 s / 2), not every 30 s")
		assert.Equal(t, 2*time.Second, pings[0].Sub(start))
		_, disconnects := ev.counts()
		assert.Zero(t, disconnects)
		assert.Equal(t, 4*time.Second, ev.connectEvent(t, 0).KeepAlive)
	})
}

// K = 0: no automatic PINGREQ ever; Ping still works on demand.
func TestKeepAliveZeroNeverPings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		c := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
			mqttkeep.WithClientID("nokeep"), mqttkeep.WithKeepAlive(0))
		connect(t, c)
		time.Sleep(time.Hour)
		assert.Empty(t, b.PingTimes("nokeep"))
		assert.Equal(t, mqttkeep.StateConnected, c.State())

		_, err = c.Ping(context.Background())
		require.NoError(t, err)
		assert.Len(t, b.PingTimes("nokeep"), 1)
		st := c.Stats()
		assert.EqualValues(t, 1, st.PingsSent)
		assert.EqualValues(t, 1, st.PingResponses)
	})
}

// A silent link death (no FIN, no RST, bytes vanish) is reported with
// ErrPingTimeout no later than K/2 + ping timeout after the link died,
// whatever the phase of the ping cycle, idle or while publishing QoS 0.
// Run in a synctest bubble the bound is checked exactly, with no slack.
func TestSilentLinkDeathDetectedWithinBound(t *testing.T) {
	type tc struct {
		name        string
		keepAlive   time.Duration
		pingTimeout time.Duration // 0: default K/2
		phase       time.Duration // when in the ping cycle the link dies
		publishing  bool
	}
	var cases []tc
	for _, k := range []time.Duration{2 * time.Second, 30 * time.Second} {
		for _, phase := range []time.Duration{0, k / 8, k / 4, k/2 - time.Millisecond} {
			for _, pub := range []bool{false, true} {
				name := k.String() + "/phase=" + phase.String()
				if pub {
					name += "/publishing"
				}
				cases = append(cases, tc{name: name, keepAlive: k, phase: phase, publishing: pub})
			}
		}
	}
	cases = append(cases, tc{name: "30s/timeout=3s", keepAlive: 30 * time.Second, pingTimeout: 3 * time.Second, phase: time.Second})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := mqttkeeptest.StartPipeBroker()
				require.NoError(t, err)
				defer b.Close()
				link := &pipeLink{broker: b}
				ev := newEvents()
				cl := newClient(t, append(ev.options(),
					mqttkeep.WithServer("mqtt://pipe"), link.dialer(),
					mqttkeep.WithKeepAlive(c.keepAlive), mqttkeep.WithPingTimeout(c.pingTimeout),
					// Keep the reconnects that follow out of the way.
					mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
				connect(t, cl)

				stop := make(chan struct{})
				pubDone := make(chan struct{})
				go func() {
					defer close(pubDone)
					for c.publishing {
						if cl.Publish(context.Background(), "t/qos0", []byte("tick")) != nil {
							return
						}
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond):
						}
					}
				}()

				time.Sleep(5*c.keepAlive + c.phase)
				diedAt := time.Now()
				link.blackhole.Store(true)

				var lost mqttkeep.DisconnectEvent
				select {
				case lost = <-ev.lost:
				case <-time.After(10 * c.keepAlive):
					t.Fatal("dead link never reported")
				}
				close(stop)
				<-pubDone
				detection := time.Since(diedAt)
				timeout := c.pingTimeout
				if timeout == 0 {
					timeout = c.keepAlive / 2
				}
				require.ErrorIs(t, lost.Err, mqttkeep.ErrPingTimeout)
				assert.True(t, lost.WillReconnect)
				assert.False(t, lost.LastReceived.After(diedAt), "nothing arrived after the link died")
				assert.LessOrEqual(t, time.Since(lost.LastReceived), c.keepAlive/2+timeout, "K/2 + ping timeout after the last byte")
				assert.LessOrEqual(t, detection, c.keepAlive/2+timeout, "worst case K/2 + ping timeout")
				assert.GreaterOrEqual(t, detection, timeout, "never before a PINGREQ went unanswered for the ping timeout")
				t.Logf("detection %v (K=%v, ping timeout %v)", detection, c.keepAlive, timeout)
				require.NoError(t, cl.Close(context.Background()))
				link.wg.Wait()
			})
		})
	}
}

// Any request owed an answer is a probe: with QoS 1 publishes every
// second, a link that goes silent is reported at most the ping timeout
// after the first publish written into it — T + 1 s here, not the idle
// bound K/2 + T — although every PUBACK before it refreshed "last
// received". Exact, on the fake clock of a synctest bubble.
func TestRequestsInFlightAreProbes(t *testing.T) {
	const (
		k        = 30 * time.Second
		timeout  = 15 * time.Second // the default, K/2
		interval = time.Second
	)
	for _, phase := range []time.Duration{0, interval / 4, interval / 2, interval - time.Millisecond} {
		t.Run("phase="+phase.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := mqttkeeptest.StartPipeBroker()
				require.NoError(t, err)
				defer b.Close()
				link := &pipeLink{broker: b}
				ev := newEvents()
				cl := newClient(t, append(ev.options(),
					mqttkeep.WithServer("mqtt://pipe"), link.dialer(), mqttkeep.WithKeepAlive(k),
					mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
				connect(t, cl)

				stop := make(chan struct{})
				pubDone := make(chan struct{})
				go func() {
					defer close(pubDone)
					for {
						if _, err := cl.PublishAsync(context.Background(), "t/qos1", []byte("tick"), mqttkeep.WithQoS(1)); err != nil {
							return
						}
						select {
						case <-stop:
							return
						case <-time.After(interval):
						}
					}
				}()

				time.Sleep(2*k + phase)
				diedAt := time.Now()
				link.blackhole.Store(true)
				var lost mqttkeep.DisconnectEvent
				select {
				case lost = <-ev.lost:
				case <-time.After(4 * k):
					t.Fatal("dead link never reported")
				}
				detection := time.Since(diedAt)
				close(stop)
				<-pubDone
				require.ErrorIs(t, lost.Err, mqttkeep.ErrPingTimeout)
				assert.LessOrEqual(t, detection, timeout+interval, "ping timeout after the next publish")
				assert.Greater(t, detection, timeout-interval, "not before a publish went unanswered for the ping timeout")
				t.Logf("detection %v with QoS 1 every %v (K=%v, ping timeout %v; idle bound %v)", detection, interval, k, timeout, k/2+timeout)
				require.NoError(t, cl.Close(context.Background()))
				link.wg.Wait()
			})
		})
	}
}
