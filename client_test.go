package mqttkeep_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// collector gathers messages delivered to a handler.
type collector struct {
	mu   sync.Mutex
	msgs []*mqttkeep.Message
	got  chan struct{}
}

func newCollector() *collector { return &collector{got: make(chan struct{}, 1024)} }

func (c *collector) handle(m *mqttkeep.Message) {
	c.mu.Lock()
	cp := *m
	cp.Payload = bytes.Clone(m.Payload)
	c.msgs = append(c.msgs, &cp)
	c.mu.Unlock()
	select {
	case c.got <- struct{}{}:
	default:
	}
}

// snapshot returns the messages so far.
func (c *collector) snapshot() []*mqttkeep.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*mqttkeep.Message(nil), c.msgs...)
}

// wait waits until n messages arrived or the bound passes.
func (c *collector) wait(t *testing.T, n int, bound time.Duration) []*mqttkeep.Message {
	t.Helper()
	deadline := time.After(bound)
	for {
		c.mu.Lock()
		if len(c.msgs) >= n {
			out := append([]*mqttkeep.Message(nil), c.msgs...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.got:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("got %d messages within %v, want %d", len(c.msgs), bound, n)
			return nil
		}
	}
}

// waitPayload waits until a message with payload p arrived (QoS 1 may
// deliver duplicates, so counting messages is not enough).
func (c *collector) waitPayload(t *testing.T, p string, bound time.Duration) {
	t.Helper()
	deadline := time.After(bound)
	for {
		c.mu.Lock()
		for _, m := range c.msgs {
			if string(m.Payload) == p {
				c.mu.Unlock()
				return
			}
		}
		n := len(c.msgs)
		c.mu.Unlock()
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("no message %q within %v (%d others)", p, bound, n)
		}
	}
}

func TestPublishSubscribeRoundTrip(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub := newClient(t, mqttkeep.WithServer(b.URL()))
	pub := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, sub)
	connect(t, pub)

	for _, qos := range []mqttkeep.QoS{0, 1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			got := newCollector()
			filter := fmt.Sprintf("rt/%d/+", qos)
			require.NoError(t, sub.Subscribe(ctx, filter, qos, got.handle))
			const n = 20
			for i := range n {
				require.NoError(t, pub.Publish(ctx, fmt.Sprintf("rt/%d/x", qos), fmt.Appendf(nil, "m%d", i),
					mqttkeep.WithQoS(qos), mqttkeep.WithContentType("text/plain"),
					mqttkeep.WithUserProperty("k", "v"), mqttkeep.WithPayloadUTF8()))
			}
			msgs := got.wait(t, n, 10*time.Second)
			for i, m := range msgs {
				if qos == 0 { // QoS 0 over one TCP connection still keeps order
					assert.Equal(t, fmt.Sprintf("m%d", i), string(m.Payload))
				}
				assert.Equal(t, qos, m.QoS)
				assert.Equal(t, "text/plain", m.ContentType)
				assert.True(t, m.PayloadUTF8)
				assert.Equal(t, []mqttkeep.UserProperty{{Key: "k", Value: "v"}}, m.UserProperties)
			}
			require.NoError(t, sub.Unsubscribe(ctx, filter))
		})
	}
	st := pub.Stats()
	assert.Positive(t, st.BytesOut)
	assert.Positive(t, st.PacketsOut)
	assert.EqualValues(t, 1, st.Connects)
	assert.Positive(t, sub.Stats().InHandlerCalls)
}

func TestRetainedMessageReachesLateSubscriber(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, c)
	require.NoError(t, c.Publish(ctx, "status/dev1", []byte("online"), mqttkeep.WithQoS(1), mqttkeep.WithRetain()))
	got := newCollector()
	require.NoError(t, c.Subscribe(ctx, "status/#", 1, got.handle))
	m := got.wait(t, 1, 5*time.Second)[0]
	assert.Equal(t, "online", string(m.Payload))
	assert.True(t, m.Retain)
}

func TestPingReturnsRoundTripTime(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()), mqttkeep.WithKeepAlive(0))
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 3 {
		began := time.Now()
		rtt, err := c.Ping(ctx)
		elapsed := time.Since(began)
		require.NoError(t, err)
		assert.Positive(t, rtt)
		assert.LessOrEqual(t, rtt, elapsed, "the round trip lies within the Ping call")
	}
	st := c.Stats()
	assert.EqualValues(t, 3, st.PingsSent)
	assert.EqualValues(t, 3, st.PingResponses)
	assert.Positive(t, st.PingRTTMin)
	assert.LessOrEqual(t, st.PingRTTMin, st.PingRTTMean)
	assert.LessOrEqual(t, st.PingRTTMean, st.PingRTTMax)
}

// A refusal that retrying cannot fix ends the connect loop: Connect returns
// the typed error, exactly one CONNECT reaches the broker, and
// OnDisconnect reports the refusal once.
func TestFinalRefusalStopsAfterOneAttempt(t *testing.T) {
	for _, code := range []byte{0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C} {
		t.Run(mqttkeep.ReasonCode(code).String(), func(t *testing.T) {
			b := mqttkeeptest.NewBroker(t)
			b.Refuse(code)
			ev := newEvents()
			c := newClient(t, append(ev.options(), mqttkeep.WithServer(b.URL()),
				mqttkeep.WithCredentials("user", "hunter2"),
				mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Millisecond }}))...)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := c.Connect(ctx)
			var rc *mqttkeep.ReasonCodeError
			require.ErrorAs(t, err, &rc)
			assert.Equal(t, mqttkeep.ReasonCode(code), rc.Code)
			assert.Equal(t, "CONNACK", rc.Packet)
			assert.NotContains(t, err.Error(), "hunter2")
			assert.Equal(t, mqttkeep.StateStopped, c.State())
			want := 1
			if code == 0x84 {
				want = 2 // unsupported protocol version: ProtocolAuto tries MQTT 3.1.1 once, refused again
			}
			assert.Equal(t, want, b.Connects(), "no retry for a final refusal")

			require.ErrorIs(t, c.Publish(ctx, "t", nil), mqttkeep.ErrNotConnected)
			require.NoError(t, c.Close(ctx))
			_, disconnects := ev.counts()
			assert.Equal(t, 1, disconnects)
		})
	}
}

// Refusals retrying can fix (unavailable, busy, quota, rate) are retried
// with backoff, each wait announced to OnReconnecting, and Connect
// succeeds once the broker accepts.
func TestRetryableRefusalIsRetried(t *testing.T) {
	for _, code := range []byte{0x88, 0x89, 0x97, 0x9F} {
		t.Run(mqttkeep.ReasonCode(code).String(), func(t *testing.T) {
			b := mqttkeeptest.NewBroker(t)
			b.Refuse(code)
			var waits atomic.Int32
			c := newClient(t, mqttkeep.WithServer(b.URL()),
				mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2}}),
				mqttkeep.HooksForTest(nil, nil, func(e mqttkeep.ReconnectingEvent) {
					var rc *mqttkeep.ReasonCodeError
					if errors.As(e.Err, &rc) && rc.Code == mqttkeep.ReasonCode(code) && e.Delay <= 50*time.Millisecond {
						waits.Add(1)
					}
				}, nil))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- c.Connect(ctx) }()
			for b.Connects() < 3 {
				select {
				case err := <-errc:
					t.Fatalf("Connect returned %v while refused", err)
				case <-ctx.Done():
					t.Fatal("no retries")
				case <-time.After(10 * time.Millisecond):
				}
			}
			b.Refuse(0)
			require.NoError(t, <-errc)
			assert.Equal(t, mqttkeep.StateConnected, c.State())
			require.Eventually(t, func() bool { return waits.Load() >= 2 }, 5*time.Second, time.Millisecond)
		})
	}
}

// Connect with a context that ends while the broker is unreachable
// returns the context's error joined with the last attempt's. The
// context ends once an attempt has failed (its OnReconnecting event).
func TestConnectContextEndsWhileUnreachable(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	url := b.URL()
	b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newClient(t, mqttkeep.WithServer(url),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 10 * time.Millisecond }}),
		mqttkeep.HooksForTest(nil, nil, func(mqttkeep.ReconnectingEvent) { cancel() }, nil))
	err := c.Connect(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "dial")
	assert.Equal(t, mqttkeep.StateConnecting, c.State())
}

func TestCloseSemantics(t *testing.T) {
	ctx := context.Background()
	t.Run("before connect", func(t *testing.T) {
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://127.0.0.1:1"))
		require.NoError(t, err)
		require.NoError(t, c.Close(ctx))
		require.ErrorIs(t, c.Connect(ctx), mqttkeep.ErrClosed)
	})
	t.Run("after connect", func(t *testing.T) {
		b := mqttkeeptest.NewBroker(t)
		ev := newEvents()
		c, err := mqttkeep.New(append(ev.options(), mqttkeep.WithServer(b.URL()))...)
		require.NoError(t, err)
		connect(t, c)
		require.NoError(t, c.Close(ctx))
		require.NoError(t, c.Close(ctx), "Close is idempotent")
		assert.Equal(t, mqttkeep.StateClosed, c.State())
		require.ErrorIs(t, c.Publish(ctx, "t", nil), mqttkeep.ErrClosed)
		require.ErrorIs(t, c.Subscribe(ctx, "t", 0, func(*mqttkeep.Message) {}), mqttkeep.ErrClosed)
		_, err = c.Ping(ctx)
		require.ErrorIs(t, err, mqttkeep.ErrClosed)
		require.ErrorIs(t, c.Connect(ctx), mqttkeep.ErrClosed)
		d := ev.disconnectEvent(t, 0)
		assert.NoError(t, d.Err, "the user's own Close is reported with a nil cause")
		assert.False(t, d.WillReconnect)
		_, n := ev.counts()
		assert.Equal(t, 1, n)
	})
	t.Run("during backoff", func(t *testing.T) {
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://127.0.0.1:1"),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))
		require.NoError(t, err)
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		require.Error(t, c.Connect(short))
		start := time.Now()
		require.NoError(t, c.Close(ctx))
		// The wait is an hour; 2 s is "at once" with room for a loaded
		// machine.
		assert.Less(t, time.Since(start), 2*time.Second, "Close interrupts the wait at once")
	})
}

func TestBadPublishAndSubscribeArgumentsSendNothing(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, c)
	ctx := context.Background()
	before := c.Stats().PacketsOut
	for _, tc := range []struct {
		name string
		err  error
		call func() error
	}{
		{"empty topic", mqttkeep.ErrInvalidTopic, func() error { return c.Publish(ctx, "", nil) }},
		{"wildcard topic", mqttkeep.ErrInvalidTopic, func() error { return c.Publish(ctx, "a/+/b", nil) }},
		{"NUL in topic", mqttkeep.ErrInvalidTopic, func() error { return c.Publish(ctx, "a\x00b", nil) }},
		{"bad UTF-8", mqttkeep.ErrInvalidTopic, func() error { return c.Publish(ctx, "a\xffb", nil) }},
		{"QoS 3", mqttkeep.ErrInvalidQoS, func() error { return c.Publish(ctx, "a", nil, mqttkeep.WithQoS(3)) }},
		{"filter # not last", mqttkeep.ErrInvalidTopic, func() error { return c.Subscribe(ctx, "a/#/b", 0, func(*mqttkeep.Message) {}) }},
		{"filter partial +", mqttkeep.ErrInvalidTopic, func() error { return c.Subscribe(ctx, "a+", 0, func(*mqttkeep.Message) {}) }},
		{"subscribe QoS 3", mqttkeep.ErrInvalidQoS, func() error { return c.Subscribe(ctx, "a", 3, func(*mqttkeep.Message) {}) }},
		{"shared without filter", mqttkeep.ErrInvalidTopic, func() error { return c.Subscribe(ctx, "$share/g", 0, func(*mqttkeep.Message) {}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.call(), tc.err)
		})
	}
	assert.Equal(t, before, c.Stats().PacketsOut, "nothing reached the wire")
	assert.Equal(t, mqttkeep.StateConnected, c.State())
}

// A panicking message handler is recovered; later messages still arrive.
func TestPanickingHandlerDoesNotKillClient(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := newCollector()
	require.NoError(t, c.Subscribe(ctx, "p/boom", 1, func(*mqttkeep.Message) { panic("boom") }))
	require.NoError(t, c.Subscribe(ctx, "p/ok", 1, got.handle))
	require.NoError(t, c.Publish(ctx, "p/boom", nil, mqttkeep.WithQoS(1)))
	require.NoError(t, c.Publish(ctx, "p/ok", []byte("fine"), mqttkeep.WithQoS(1)))
	assert.Equal(t, "fine", string(got.wait(t, 1, 5*time.Second)[0].Payload))
}

// After a broker restart (sessions lost) the client reconnects by itself,
// restores its subscription, and receives the next message on it.
func TestBrokerRestartRestoresSubscription(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	ev := newEvents()
	c := newClient(t, append(ev.options(), mqttkeep.WithServer(b.URL()),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2}}))...)
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	got := newCollector()
	require.NoError(t, c.Subscribe(ctx, "restart/+", 1, got.handle))

	b.Stop()
	select {
	case ev := <-ev.lost:
		require.Error(t, ev.Err)
		assert.True(t, ev.WillReconnect)
	case <-ctx.Done():
		t.Fatal("loss not reported")
	}
	require.NoError(t, b.Restart())
	require.NoError(t, c.AwaitConnected(ctx))

	pub := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, pub)
	require.NoError(t, pub.Publish(ctx, "restart/a", []byte("after"), mqttkeep.WithQoS(1)))
	assert.Equal(t, "after", string(got.wait(t, 1, 10*time.Second)[0].Payload))

	second := ev.connectEvent(t, 1)
	assert.Equal(t, []string{"connect", "disconnect", "connect"}, ev.orderSnapshot(), "OnDisconnect then OnConnect, once each")
	assert.False(t, second.SessionPresent)
	assert.NoError(t, second.ResubscribeErr)
	assert.Positive(t, second.Downtime)
}

// A server DISCONNECT is reported as a *ReasonCodeError with its code.
func TestServerDisconnectReportsReasonCode(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	ev := newEvents()
	c := newClient(t, append(ev.options(), mqttkeep.WithServer(b.URL()), mqttkeep.WithClientID("kicked"),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
	connect(t, c)
	require.NoError(t, b.DisconnectClient("kicked", 0x98))
	select {
	case e := <-ev.lost:
		var rc *mqttkeep.ReasonCodeError
		require.True(t, errors.As(e.Err, &rc), "cause %v", e.Err)
		assert.Equal(t, "DISCONNECT", rc.Packet)
		assert.EqualValues(t, 0x98, rc.Code)
	case <-time.After(5 * time.Second):
		t.Fatal("server disconnect not reported")
	}
}

// A payload larger than the broker's Maximum Packet Size is refused before
// anything is sent, and the connection stays up.
func TestPacketLargerThanBrokerMaximum(t *testing.T) {
	b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithMaximumPacketSize(1024))
	c := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := c.Stats().PacketsOut
	err := c.Publish(ctx, "big", make([]byte, 2048), mqttkeep.WithQoS(1))
	require.ErrorIs(t, err, mqttkeep.ErrPacketTooLarge)
	assert.Equal(t, before, c.Stats().PacketsOut, "nothing reached the wire")
	require.NoError(t, c.Publish(ctx, "small", make([]byte, 900), mqttkeep.WithQoS(1)), "the connection stays up")
	assert.EqualValues(t, 1, c.Stats().Connects)
}

// WithMaxPacketSize is announced to the broker, which then does not send
// larger messages to this client. Both messages go to one topic from one
// publisher, so MQTT keeps their order: the big one, had it been sent,
// would come first.
func TestMaxPacketSizeAnnounced(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	small := newClient(t, mqttkeep.WithServer(b.URL()), mqttkeep.WithMaxPacketSize(1024))
	connect(t, small)
	got := newCollector()
	require.NoError(t, small.Subscribe(ctx, "size", 1, got.handle))
	pub := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, pub)
	require.NoError(t, pub.Publish(ctx, "size", make([]byte, 4096), mqttkeep.WithQoS(1)))
	require.NoError(t, pub.Publish(ctx, "size", []byte("fits"), mqttkeep.WithQoS(1)))
	msgs := got.wait(t, 1, 5*time.Second)
	assert.Equal(t, "fits", string(msgs[0].Payload), "the broker kept the oversize message from us")
	assert.EqualValues(t, 1, small.Stats().Connects)
}

// Shared subscriptions ($share/group/filter) are accepted and validated.
func TestSharedSubscription(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := newCollector()
	require.NoError(t, c.Subscribe(ctx, "$share/workers/jobs/+", 1, got.handle))
	require.NoError(t, c.Publish(ctx, "jobs/1", []byte("job"), mqttkeep.WithQoS(1)))
	assert.Equal(t, "jobs/1", got.wait(t, 1, 5*time.Second)[0].Topic)
}

// MQTT keeps the packet identifiers of each direction apart, but mochi
// v2.7.9 checks a client's SUBSCRIBE and UNSUBSCRIBE identifiers against
// its own in-flight messages to that client and refuses a match with 0x91
// (packet identifier in use). Subscribe and Unsubscribe must succeed
// while messages the broker sent are still unacknowledged (their handler
// is busy): here the broker holds identifiers 1, 2 and 3, which paho's
// own allocation would have picked next.
func TestSubscribeWhileBrokerMessagesUnacknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		c := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b), mqttkeep.WithClientID("ids"))
		connect(t, c)
		ctx := context.Background()
		got := make(chan string, 3)
		release := make(chan struct{})
		var releaseOnce sync.Once
		defer releaseOnce.Do(func() { close(release) })
		require.NoError(t, c.Subscribe(ctx, "busy/#", 1, func(m *mqttkeep.Message) {
			got <- string(m.Payload)
			<-release
		}))
		for _, p := range []string{"1", "2", "3"} {
			require.NoError(t, b.Publish("busy/x", []byte(p), 1))
		}
		synctest.Wait()
		require.Len(t, b.SentTo("ids"), 3, "the broker sent three QoS 1 messages")
		require.Equal(t, "1", <-got, "the first handler call is blocked")

		require.NoError(t, c.Subscribe(ctx, "other/#", 1, func(*mqttkeep.Message) {}))
		require.NoError(t, c.Unsubscribe(ctx, "other/#"))
		require.NoError(t, c.Subscribe(ctx, "other/+", 1, func(*mqttkeep.Message) {}))

		releaseOnce.Do(func() { close(release) })
		assert.Equal(t, "2", <-got)
		assert.Equal(t, "3", <-got)
		require.NoError(t, c.Close(ctx))
	})
}

// A Subscribe whose SUBACK can no longer come (the link died after the
// SUBSCRIBE was written) is not lost with the link: the subscription is
// sent again on the next connection, and Subscribe returns once that one
// acknowledged it.
func TestSubscribeSurvivesLinkDeath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		link := &pipeLink{broker: b}
		ev := newEvents()
		const k = 2 * time.Second
		c := newClient(t, append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), link.dialer(),
			mqttkeep.WithKeepAlive(k), mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Second }}))...)
		connect(t, c)
		link.blackhole.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		got := newCollector()
		subscribed := make(chan error, 1)
		go func() { subscribed <- c.Subscribe(ctx, "later/#", 1, got.handle) }()
		assert.ErrorIs(t, (<-ev.lost).Err, mqttkeep.ErrPingTimeout)
		link.blackhole.Store(false) // the next connection goes through
		require.NoError(t, <-subscribed)
		require.NoError(t, b.Publish("later/x", []byte("arrived"), 1))
		assert.Equal(t, "arrived", string(got.wait(t, 1, time.Minute)[0].Payload))
		require.NoError(t, c.Close(context.Background()))
		link.wg.Wait()
	})
}
