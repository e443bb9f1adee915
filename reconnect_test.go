package mqttkeep_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// MQTT packet types, as mqttkeeptest.Broker.Packets counts them.
const (
	packetPublish     = 3
	packetSubscribe   = 8
	packetUnsubscribe = 10
	packetPingreq     = 12
)

func TestBackoffDelayBounds(t *testing.T) {
	b := mqttkeep.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	for n, bound := range map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 50: time.Second, 5000: time.Second,
	} {
		var lo, hi time.Duration = bound, 0
		for range 2000 {
			d := b.Delay(n)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.LessOrEqual(t, d, bound, "retry %d", n)
			lo, hi = min(lo, d), max(hi, d)
		}
		// Full jitter: the delays spread over the whole range.
		assert.Less(t, lo, bound/10, "retry %d", n)
		assert.Greater(t, hi, bound*9/10, "retry %d", n)
	}
	assert.LessOrEqual(t, mqttkeep.DefaultBackoff.Delay(1), 500*time.Millisecond, "first retry under a second")
}

// Retryable refusals (server busy) go on with growing, jittered delays,
// measured at the broker (fake time: five minutes of refusals).
func TestBusyRefusalsBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		b.Refuse(0x89)
		policy := mqttkeep.Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2}
		c := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b), mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: policy}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		err = c.Connect(ctx)
		var rc *mqttkeep.ReasonCodeError
		require.ErrorAs(t, err, &rc, "the last refusal is in the error")
		assert.EqualValues(t, 0x89, rc.Code)
		require.NoError(t, c.Close(context.Background()))

		times := b.ConnectTimes()
		require.GreaterOrEqual(t, len(times), 17)
		// The first four gaps are bounded by 100, 200, 400 and 800 ms
		// (1.5 s together); gaps 9 to 16 by the 10 s cap each. With full
		// jitter the eight later ones sum to 1.5 s or less with a
		// probability below 10⁻¹¹, so "delays grow" cannot fail by chance.
		var early, late time.Duration
		for i := 1; i < len(times); i++ {
			gap := times[i].Sub(times[i-1])
			bound := policy.Max
			if i <= 8 { // 100 ms << 7 is above the cap; larger shifts overflow
				bound = min(policy.Max, policy.Initial<<(i-1))
			}
			assert.LessOrEqual(t, gap, bound, "gap before attempt %d", i+1)
			switch {
			case i <= 4:
				early += gap
			case i >= 9 && i <= 16:
				late += gap
			}
		}
		assert.Greater(t, late, early, "delays grow")
		t.Logf("%d attempts in 5 minutes", len(times))
	})
}

// A connection that drops right after CONNACK counts as a failed attempt:
// the backoff keeps growing instead of starting over (flap protection).
func TestFlappingConnectionBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		var mu sync.Mutex
		var retries []int
		c := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b), mqttkeep.WithClientID("flappy"),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(n int) time.Duration {
				mu.Lock()
				defer mu.Unlock()
				retries = append(retries, n)
				return time.Second
			}}),
			mqttkeep.HooksForTest(func(mqttkeep.ConnectEvent) {
				time.Sleep(100 * time.Millisecond)
				_ = b.DisconnectClient("flappy", 0x80)
			}, nil, nil, nil))
		connect(t, c)
		time.Sleep(6 * time.Second)
		require.NoError(t, c.Close(context.Background()))
		mu.Lock()
		defer mu.Unlock()
		require.GreaterOrEqual(t, len(retries), 4)
		for i, n := range retries {
			assert.Equal(t, i+1, n, "retry numbers keep growing while the connection flaps")
		}
	})
}

// A hook that blocks for 5 s delays neither the reconnect nor other work,
// and a panicking hook does not kill the client.
func TestSlowAndPanickingHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		var order []string
		var mu sync.Mutex
		note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
		c := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b), mqttkeep.WithClientID("hooked"),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 100 * time.Millisecond }}),
			mqttkeep.HooksForTest(nil, func(e mqttkeep.DisconnectEvent) {
				note("disconnect")
				if e.Err != nil {
					time.Sleep(5 * time.Second)
				}
			}, nil, nil),
			mqttkeep.HooksForTest(func(mqttkeep.ConnectEvent) { note("connect"); panic("hook bug") }, nil, nil, nil),
			mqttkeep.HooksForTest(func(mqttkeep.ConnectEvent) { note("connect-2") }, nil, nil, nil),
		)
		connect(t, c)
		lostAt := time.Now()
		require.NoError(t, b.DisconnectClient("hooked", 0x8B))
		time.Sleep(time.Second)
		times := b.ConnectTimes()
		require.Len(t, times, 2)
		assert.LessOrEqual(t, times[1].Sub(lostAt), 100*time.Millisecond, "reconnected without waiting for the slow hook")
		assert.Equal(t, mqttkeep.StateConnected, c.State())
		require.NoError(t, c.Publish(context.Background(), "t", []byte("alive"), mqttkeep.WithQoS(1)))

		time.Sleep(10 * time.Second) // let the slow hook finish
		mu.Lock()
		assert.Equal(t, []string{"connect", "connect-2", "disconnect", "connect", "connect-2"}, order,
			"hooks run in order, each once per event, and a panic does not skip the next hook")
		mu.Unlock()
	})
}

// Registered with methods, hooks can be removed again.
func TestHookUnregister(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()))
	var calls atomic.Int32
	unregister := c.OnConnect(func(mqttkeep.ConnectEvent) { calls.Add(1) })
	unregister()
	got := make(chan struct{})
	c.OnConnect(func(mqttkeep.ConnectEvent) { close(got) })
	connect(t, c)
	<-got
	assert.Zero(t, calls.Load())
}

// When the broker kept the session (a dropped TCP connection, broker still
// up), subscriptions are not re-sent; messages still arrive.
func TestSessionPresentSkipsResubscribe(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	p := mqttkeeptest.NewProxy(t, b.Addr())
	ev := newEvents()
	c := newClient(t, append(ev.options(), mqttkeep.WithServer(p.URL()), mqttkeep.WithClientID("keeper"),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 10 * time.Millisecond }}))...)
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := newCollector()
	require.NoError(t, c.Subscribe(ctx, "keep/#", 1, got.handle))
	p.Reset()
	<-ev.lost
	require.NoError(t, c.AwaitConnected(ctx))
	require.NoError(t, b.Publish("keep/x", []byte("still here"), 1))
	assert.Equal(t, "still here", string(got.wait(t, 1, 5*time.Second)[0].Payload))
	assert.True(t, ev.connectEvent(t, 1).SessionPresent)
	assert.Equal(t, 1, b.Packets("keeper", packetSubscribe), "no SUBSCRIBE after a resumed session")
}

// After a broker restart all subscriptions go back in one SUBSCRIBE, and
// an unsubscribed filter stays forgotten.
func TestResubscribeInOnePacket(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	ev := newEvents()
	c := newClient(t, append(ev.options(), mqttkeep.WithServer(b.URL()), mqttkeep.WithClientID("many"),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 10 * time.Millisecond }}))...)
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := newCollector()
	for i := range 20 {
		require.NoError(t, c.Subscribe(ctx, fmt.Sprintf("many/%d", i), 1, got.handle))
	}
	require.NoError(t, c.Unsubscribe(ctx, "many/0"))
	b.Stop()
	require.NoError(t, b.Restart())
	require.NoError(t, ev.connectEvent(t, 1).ResubscribeErr) // posted once the subscriptions are back
	assert.Equal(t, 39, b.Packets("many", packetSubscribe), "20 before the restart, and after it one per remaining subscription (each carries its own Subscription Identifier)")
	require.NoError(t, b.Publish("many/0", []byte("forgotten"), 1))
	require.NoError(t, b.Publish("many/19", []byte("restored"), 1))
	msgs := got.wait(t, 1, 5*time.Second)
	assert.Equal(t, "restored", string(msgs[0].Payload))
}

// Publish while the client is reconnecting is queued and sent in order
// after the reconnect; a full queue is an error at once. The order is
// checked where the library decides it, at the broker's end of the
// publisher's connection: MQTT orders deliveries only per topic and QoS.
func TestOfflineQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		link := &pipeLink{broker: b}
		ctx := context.Background()
		sub := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b))
		connect(t, sub)
		got := newCollector()
		require.NoError(t, sub.Subscribe(ctx, "q", 1, got.handle))

		ev := newEvents()
		pub := newClient(t, append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), link.dialer(),
			mqttkeep.WithKeepAlive(2*time.Second), mqttkeep.WithQueueLimits(10, 1<<20),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 5 * time.Second }}))...)
		connect(t, pub)
		link.blackhole.Store(true)
		<-ev.lost // dead link detected; the reconnect waits 5 s, its CONNECT is dropped

		for i := range 8 {
			require.NoError(t, pub.Publish(ctx, "q", []byte(strconv.Itoa(i))), "QoS 0 returns once queued")
		}
		qos1 := make(chan error, 2)
		for i := 8; i < 10; i++ {
			go func() { qos1 <- pub.Publish(ctx, "q", []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1)) }()
			synctest.Wait() // keep the order 8, 9
		}
		err = pub.Publish(ctx, "q", []byte("overflow"))
		require.ErrorIs(t, err, mqttkeep.ErrQueueFull)
		st := pub.Stats()
		assert.Equal(t, 10, st.OutQueued)

		link.blackhole.Store(false)
		require.NoError(t, <-qos1)
		require.NoError(t, <-qos1)
		var sent []string
		for _, p := range b.Payloads("q") {
			sent = append(sent, string(p))
		}
		assert.Equal(t, numbers(0, 9), sent, "queued messages go out in order, the overflow not at all")
		var received []string
		for _, m := range got.wait(t, 10, time.Minute) {
			received = append(received, string(m.Payload))
		}
		assert.ElementsMatch(t, numbers(0, 9), received)
		assert.Zero(t, pub.Stats().OutQueued)
		require.NoError(t, pub.Close(ctx))
		require.NoError(t, sub.Close(ctx))
		link.wg.Wait()
	})
}

// numbers returns "from" .. "to" as strings.
func numbers(from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return s
}

func TestQueueOffReturnsNotConnected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		ev := newEvents()
		c := newClient(t, append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
			mqttkeep.WithClientID("noq"), mqttkeep.WithQueueLimits(0, 0),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
		connect(t, c)
		require.NoError(t, b.DisconnectClient("noq", 0x8B))
		<-ev.lost
		require.ErrorIs(t, c.Publish(context.Background(), "t", nil), mqttkeep.ErrNotConnected)
		require.NoError(t, c.Close(context.Background()))
	})
}

// A QoS 1 PUBLISH written into a dead link is re-sent after the reconnect
// (the session is resumed), and Publish returns once it is acknowledged.
func TestInFlightQoS1SurvivesReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		ctx := context.Background()
		sub := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b))
		connect(t, sub)
		got := newCollector()
		require.NoError(t, sub.Subscribe(ctx, "inflight", 1, got.handle))

		link := &pipeLink{broker: b}
		ev := newEvents()
		pub := newClient(t, append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), link.dialer(),
			mqttkeep.WithKeepAlive(2*time.Second),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 100 * time.Millisecond }}))...)
		connect(t, pub)
		link.blackhole.Store(true)
		done := make(chan error, 1)
		go func() { done <- pub.Publish(ctx, "inflight", []byte("once"), mqttkeep.WithQoS(1)) }()
		<-ev.lost
		select {
		case err := <-done:
			t.Fatalf("Publish returned %v before the broker acknowledged", err)
		default:
		}
		link.blackhole.Store(false)
		require.NoError(t, <-done)
		assert.Equal(t, "once", string(got.wait(t, 1, time.Minute)[0].Payload))
		assert.True(t, ev.connectEvent(t, 1).SessionPresent)
		require.NoError(t, pub.Close(ctx))
		link.wg.Wait()
	})
}

// 1000 QoS 1 messages published while the broker restarts three times
// (losing every session): every Publish that returned nil reached the
// broker, and every message is published.
func TestQoS1AcrossBrokerRestarts(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()), mqttkeep.WithClientID("steady"),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2}}))
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const n = 1000
	restarts := make(chan struct{})
	go func() {
		defer close(restarts)
		for i := range 3 {
			for b.Packets("steady", 3) < (i+1)*n/4 { // PUBLISH count at the broker
				if ctx.Err() != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
			b.Stop()
			time.Sleep(50 * time.Millisecond) // the scenario: down for 50 ms
			if err := b.Restart(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range n {
		require.NoError(t, c.Publish(ctx, "steady", []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1)), "message %d", i)
	}
	<-restarts
	received := b.Payloads("steady")
	seen := map[string]int{}
	for _, p := range received {
		seen[string(p)]++
	}
	dups := 0
	for i := range n {
		k := seen[strconv.Itoa(i)]
		require.Positive(t, k, "message %d acknowledged but never received by the broker", i)
		dups += k - 1
	}
	assert.EqualValues(t, 4, c.Stats().Connects)
	t.Logf("%d messages, 3 restarts, %d duplicates at the broker", n, dups)
}

// Two clients with one ID: the broker hands the session to the newer one
// and sends 0x8E to the older, which stops instead of fighting back.
func TestSessionTakeoverDoesNotFight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		opts := func(ev *events) []mqttkeep.Option {
			return append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
				mqttkeep.WithClientID("twin"),
				mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 10 * time.Millisecond }}))
		}
		ev1, ev2 := newEvents(), newEvents()
		first := newClient(t, opts(ev1)...)
		connect(t, first)
		second := newClient(t, opts(ev2)...)
		connect(t, second)

		time.Sleep(10 * time.Second)
		assert.Equal(t, 2, b.Connects(), "no reconnect fight over 10 s")
		e := <-ev1.lost
		var rc *mqttkeep.ReasonCodeError
		require.ErrorAs(t, e.Err, &rc)
		assert.EqualValues(t, 0x8E, rc.Code)
		assert.False(t, e.WillReconnect)
		assert.Equal(t, mqttkeep.StateStopped, first.State())
		assert.Equal(t, mqttkeep.StateConnected, second.State())
		require.NoError(t, first.Close(context.Background()))
		require.NoError(t, second.Close(context.Background()))
	})
}

// With several servers, the client moves on to the next when one dies.
func TestFailoverToSecondServer(t *testing.T) {
	b1 := mqttkeeptest.NewBroker(t)
	b2 := mqttkeeptest.NewBroker(t)
	ev := newEvents()
	c := newClient(t, append(ev.options(), mqttkeep.WithServer(b1.URL(), b2.URL()),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 10 * time.Millisecond }}))...)
	connect(t, c)
	b1.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	<-ev.lost
	require.NoError(t, c.AwaitConnected(ctx))
	assert.Equal(t, b2.URL(), ev.connectEvent(t, 1).Server)
}

// A CONNACK or DISCONNECT with 0x9C/0x9D and a Server Reference sends the
// next attempt to the referenced server, without a backoff wait.
func TestServerRedirect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		viaAck  bool
		code    byte
		withURL bool
	}{
		{"CONNACK use another server", true, 0x9C, false},
		{"CONNACK server moved, URL reference", true, 0x9D, true},
		{"DISCONNECT server moved", false, 0x9D, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := mqttkeeptest.NewBroker(t)
			to := mqttkeeptest.NewBroker(t)
			ref := to.Addr()
			if tc.withURL {
				ref = to.URL()
			}
			ev := newEvents()
			c := newClient(t, append(ev.options(), mqttkeep.WithServer(from.URL()), mqttkeep.WithClientID("mover"),
				mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
			if tc.viaAck {
				from.Redirect(tc.code, ref)
				connect(t, c)
				require.Eventually(t, func() bool { n, _ := ev.counts(); return n == 1 }, 10*time.Second, time.Millisecond)
			} else {
				connect(t, c)
				require.NoError(t, from.DisconnectClientTo("mover", tc.code, ref))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				<-ev.lost
				require.Eventually(t, func() bool { n, _ := ev.counts(); return n == 2 }, 10*time.Second, time.Millisecond)
				require.NoError(t, c.AwaitConnected(ctx))
			}
			assert.Equal(t, 1, to.Connects())
			n, _ := ev.counts()
			assert.Equal(t, to.URL(), ev.connectEvent(t, n-1).Server)
		})
	}
}

// Close while a CONNECT is unanswered returns promptly and leaves nothing.
func TestCloseDuringConnect(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	p := mqttkeeptest.NewProxy(t, b.Addr())
	p.Blackhole()
	c, err := mqttkeep.New(mqttkeep.WithServer(p.URL()))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Connect(ctx), context.DeadlineExceeded)
	start := time.Now()
	require.NoError(t, c.Close(context.Background()))
	// Without Close the CONNECT would wait for the 10 s connect timeout;
	// 2 s is "promptly" with room for a loaded machine.
	assert.Less(t, time.Since(start), 2*time.Second)
}

// A slow message handler must not starve the connection: PINGRESPs are
// still read while handlers are far behind, QoS 0 overflow is counted, and
// every QoS 1 message is handled in the end.
func TestSlowHandlerDoesNotStarveKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		ev := newEvents()
		c := newClient(t, append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
			// A window above the 40 QoS 1 messages, so that the broker
			// never holds any back: the point here is the reader never
			// waiting.
			mqttkeep.WithKeepAlive(2*time.Second), mqttkeep.WithReceiveMaximum(64), mqttkeep.WithMessageBuffer(16))...)
		connect(t, c)
		var qos1 atomic.Int32
		ctx := context.Background()
		require.NoError(t, c.Subscribe(ctx, "slow/#", 1, func(m *mqttkeep.Message) {
			if m.QoS == 1 {
				qos1.Add(1)
			}
			time.Sleep(time.Second)
		}))
		for i := range 40 {
			require.NoError(t, b.Publish("slow/1", []byte(strconv.Itoa(i)), 1))
		}
		for i := range 500 {
			require.NoError(t, b.Publish("slow/0", []byte(strconv.Itoa(i)), 0))
		}
		time.Sleep(2 * time.Minute)
		_, disconnects := ev.counts()
		assert.Zero(t, disconnects, "no false keepalive timeout while handlers are behind")
		assert.EqualValues(t, 40, qos1.Load(), "every QoS 1 message handled")
		st := c.Stats()
		assert.Positive(t, st.InDroppedQoS0, "QoS 0 overflow is counted")
		assert.Positive(t, st.PingResponses)
		require.NoError(t, c.Close(ctx))
	})
}

// Recovery with the default backoff: broker down for 500 ms, then the time
// from its restart to the first message received on the old subscription,
// with no application code. Logged for the README; bounded generously.
func TestRestartRecoveryWithDefaults(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := newCollector()
	require.NoError(t, c.Subscribe(ctx, "recover/#", 1, got.handle))

	b.Stop()
	time.Sleep(500 * time.Millisecond) // the scenario: down for 500 ms
	require.NoError(t, b.Restart())
	restarted := time.Now()
	stop := make(chan struct{})
	injected := make(chan struct{})
	go func() { // the broker side publishes every 10 ms until a message arrives
		defer close(injected)
		for i := 0; ; i++ {
			_ = b.Publish("recover/x", []byte(strconv.Itoa(i)), 1)
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	got.wait(t, 1, 20*time.Second)
	recovery := time.Since(restarted)
	close(stop)
	<-injected
	assert.Less(t, recovery, 20*time.Second)
	t.Logf("restart → first message on the old subscription: %v (default backoff)", recovery.Round(time.Millisecond))
}

// A QoS 1 message queued during a broker restart that loses the session is
// sent once after the reconnect, not once more because the session was
// found gone.
func TestQueuedQoS1SentOnceAcrossSessionLoss(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	ev := newEvents()
	c := newClient(t, append(ev.options(), mqttkeep.WithServer(b.URL()),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2}}))...)
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b.Stop()
	<-ev.lost
	done := make(chan error, 3)
	for i := range 3 {
		go func() { done <- c.Publish(ctx, "once", []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1)) }()
	}
	require.Eventually(t, func() bool { return c.Stats().OutQueued == 3 }, 5*time.Second, time.Millisecond)
	require.NoError(t, b.Restart())
	for range 3 {
		require.NoError(t, <-done)
	}
	assert.False(t, ev.connectEvent(t, 1).SessionPresent)
	assert.Len(t, b.Payloads("once"), 3, "each queued message reached the broker exactly once")
}

// A queued QoS 0 message that the broker reached after the reconnect
// refuses (here: larger than its Maximum Packet Size) is discarded and
// counted; it does not hold up the connection or the messages behind it.
func TestQueuedMessageRefusedByNewBrokerIsDiscarded(t *testing.T) {
	first := mqttkeeptest.NewBroker(t)
	second := mqttkeeptest.NewBroker(t, mqttkeeptest.WithMaximumPacketSize(1024))
	ev := newEvents()
	c := newClient(t, append(ev.options(), mqttkeep.WithServer(first.URL(), second.URL()),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 20 * time.Millisecond }}))...)
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first.Close()
	<-ev.lost
	require.NoError(t, c.Publish(ctx, "big", make([]byte, 4096)))
	require.NoError(t, c.Publish(ctx, "small", []byte("fits")))
	require.NoError(t, c.AwaitConnected(ctx))
	assert.Equal(t, second.URL(), ev.connectEvent(t, 1).Server)
	require.Eventually(t, func() bool { return len(second.Payloads("small")) == 1 }, 5*time.Second, time.Millisecond)
	assert.Empty(t, second.Payloads("big"))
	st := c.Stats()
	assert.EqualValues(t, 1, st.OutDiscarded)
	assert.Zero(t, st.OutQueued)
	assert.Equal(t, mqttkeep.StateConnected, st.State)
}

// Publish before Connect is Publish while offline (as Subscribe before
// Connect is): queued within the queue limits and sent once the first
// connection is up, in order; a QoS 1 Publish waits for its PUBACK.
// (It returned ErrNotConnected.)
func TestPublishBeforeConnectIsQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		ctx := context.Background()
		sub := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b))
		connect(t, sub)
		got := newCollector()
		require.NoError(t, sub.Subscribe(ctx, "early", 1, got.handle))

		pub := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b), mqttkeep.WithQueueLimits(3, 1<<20))
		for i := range 2 {
			require.NoError(t, pub.Publish(ctx, "early", []byte(strconv.Itoa(i))), "QoS 0 before Connect: queued")
		}
		res, err := pub.PublishAsync(ctx, "early", []byte("2"), mqttkeep.WithQoS(1))
		require.NoError(t, err)
		assert.Equal(t, 3, pub.Stats().OutQueued)
		assert.ErrorIs(t, pub.Publish(ctx, "early", []byte("x")), mqttkeep.ErrQueueFull, "within the queue limits")
		connect(t, pub)
		require.NoError(t, res.Wait(ctx))
		msgs := got.wait(t, 3, 10*time.Second)
		for i, m := range msgs {
			assert.Equal(t, strconv.Itoa(i), string(m.Payload), "in order")
		}
	})
}
