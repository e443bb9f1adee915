package mqttkeep_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/internal/mosquitto"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// onBrokers runs f against the embedded mochi broker and against
// Mosquitto (skipped, or failed in CI, when Mosquitto is not installed).
func onBrokers(t *testing.T, f func(t *testing.T, url string)) {
	t.Run("mochi", func(t *testing.T) {
		t.Parallel()
		f(t, mqttkeeptest.NewBroker(t).URL())
	})
	t.Run("mosquitto", func(t *testing.T) {
		t.Parallel()
		f(t, mosquitto.Start(t).URL())
	})
}

// seqCounter records handler calls per sequence number (the payload).
type seqCounter struct {
	mu    sync.Mutex
	calls map[int]int
	total atomic.Int64
	delay time.Duration
}

func newSeqCounter(delay time.Duration) *seqCounter {
	return &seqCounter{calls: make(map[int]int), delay: delay}
}

func (s *seqCounter) handle(m *mqttkeep.Message) {
	time.Sleep(s.delay) // the handler's work
	n, _ := strconv.Atoi(string(m.Payload))
	s.mu.Lock()
	s.calls[n]++
	s.mu.Unlock()
	s.total.Add(1)
}

func (s *seqCounter) seen() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
}

// publishSeq publishes "1".."n" to topic at QoS 1 from a client of its own,
// and returns once the broker acknowledged them all and has routed them to
// its subscribers' sessions: mochi writes a PUBACK before it routes the
// message, but reads one connection's packets in order, so Flush's
// PINGRESP comes only after the last message was routed.
func publishSeq(t *testing.T, url, topic string, n int) {
	t.Helper()
	p := newClient(t, mqttkeep.WithServer(url))
	connect(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 1; i <= n; i++ {
		require.NoError(t, p.Publish(ctx, topic, []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1)))
	}
	require.NoError(t, p.Flush(ctx))
}

// eventuallyTrue waits for cond, checking every millisecond, up to 20 s.
func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 20*time.Second, time.Millisecond, what)
}

// A process that resumes its session gets the broker's backlog right
// after CONNACK: a subscription given in New has its handler ready, so
// all of it is handled — and nothing collides with the broker's packet
// identifiers (mochi answered 0x91 to the SUBSCRIBE).
func TestResumedSessionBacklogHandled(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		for _, mode := range []string{"WithSubscription", "WithDefaultHandler"} {
			t.Run(mode, func(t *testing.T) {
				id := fmt.Sprintf("backlog-%s-%d", mode, time.Now().UnixNano())
				session := []mqttkeep.Option{mqttkeep.WithServer(url), mqttkeep.WithClientID(id),
					mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Minute)}
				ev := newEvents()
				first, err := mqttkeep.New(append(append(ev.options(), session...),
					mqttkeep.WithSubscription("backlog/#", 1, func(*mqttkeep.Message) {}))...)
				require.NoError(t, err)
				connect(t, first)
				require.NoError(t, ev.connectEvent(t, 0).ResubscribeErr) // subscribed
				require.NoError(t, first.Close(context.Background()))    // the session stays

				publishSeq(t, url, "backlog/x", 20)

				got := newSeqCounter(0)
				opt := mqttkeep.WithSubscription("backlog/#", 1, got.handle)
				if mode == "WithDefaultHandler" {
					opt = mqttkeep.WithDefaultHandler(got.handle)
				}
				ev2 := newEvents()
				second := newClient(t, append(append(ev2.options(), session...), opt)...)
				connect(t, second)
				eventuallyTrue(t, "20 backlog messages handled", func() bool { return got.total.Load() >= 20 })
				assert.NoError(t, ev2.connectEvent(t, 0).ResubscribeErr, "no SUBACK 0x91")
				assert.True(t, ev2.connectEvent(t, 0).SessionPresent)
				for i := 1; i <= 20; i++ {
					assert.Positive(t, got.seen()[i], "message %d", i)
				}
				assert.Zero(t, second.Stats().InUnsubscribed)
			})
		}
	})
}

// Unsubscribe hands every message received before the UNSUBACK to its
// handler; anything after it is counted. None is acknowledged unhandled
// without a count.
func TestUnsubscribeWithMessagesInFlight(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		got := newSeqCounter(20 * time.Millisecond)
		c := newClient(t, mqttkeep.WithServer(url))
		connect(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, c.Subscribe(ctx, "unsub/t", 1, got.handle))
		publishSeq(t, url, "unsub/t", 50)
		eventuallyTrue(t, "10 received", func() bool { return c.Stats().InPublishes >= 10 })
		require.NoError(t, c.Unsubscribe(ctx, "unsub/t"))
		eventuallyTrue(t, "every received message handled or counted", func() bool {
			st := c.Stats()
			return uint64(got.total.Load())+st.InUnsubscribed == st.InPublishes
		})
		st := c.Stats()
		t.Logf("unsubscribe with 50 in flight: received %d, handled %d, unroutable %d", st.InPublishes, got.total.Load(), st.InUnsubscribed)
	})
}

// DrainUnsubscribe unsubscribes, handles and acknowledges everything
// received, then disconnects: the session keeps nothing for a later
// process (what a shared subscription's member that scales down wants).
func TestDrainUnsubscribeHandlesEverythingReceived(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		id := fmt.Sprintf("drain-%d", time.Now().UnixNano())
		session := []mqttkeep.Option{mqttkeep.WithServer(url), mqttkeep.WithClientID(id),
			mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Minute)}
		got := newSeqCounter(20 * time.Millisecond)
		c, err := mqttkeep.New(append(session, mqttkeep.WithSubscription("drain/t", 1, got.handle))...)
		require.NoError(t, err)
		connect(t, c)
		eventuallyTrue(t, "subscribed", func() bool { return c.Stats().PacketsIn >= 2 })
		publishSeq(t, url, "drain/t", 50)
		eventuallyTrue(t, "10 received", func() bool { return c.Stats().InPublishes >= 10 })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, c.DrainUnsubscribe(ctx))
		st := c.Stats()
		assert.Equal(t, st.InPublishes, uint64(got.total.Load()), "every received message handled")
		assert.Zero(t, st.InAbandoned)
		assert.Zero(t, st.InUnsubscribed)
		assert.Equal(t, mqttkeep.StateClosed, c.State())

		// Nothing left for the session: a later process gets nothing.
		later := newSeqCounter(0)
		next := newClient(t, append(session, mqttkeep.WithDefaultHandler(later.handle))...)
		connect(t, next)
		_, err = next.Ping(ctx) // the broker sends a resumed session's backlog before this
		require.NoError(t, err)
		assert.Zero(t, later.total.Load(), "messages left in the session after Drain")
		t.Logf("drain with messages in flight: received and handled %d", st.InPublishes)
	})
}

// Close is immediate: what was received but not handled is counted and
// not acknowledged, so a later process with the session gets it again.
func TestCloseLeavesUnhandledMessagesToTheSession(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		id := fmt.Sprintf("close-%d", time.Now().UnixNano())
		session := []mqttkeep.Option{mqttkeep.WithServer(url), mqttkeep.WithClientID(id),
			mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Minute)}
		first := newSeqCounter(50 * time.Millisecond)
		c, err := mqttkeep.New(append(session, mqttkeep.WithSubscription("close/t", 1, first.handle))...)
		require.NoError(t, err)
		connect(t, c)
		eventuallyTrue(t, "subscribed", func() bool { return c.Stats().PacketsIn >= 2 })
		publishSeq(t, url, "close/t", 50)
		eventuallyTrue(t, "10 received", func() bool { return c.Stats().InPublishes >= 10 })
		start := time.Now()
		require.NoError(t, c.Close(context.Background()))
		closeTook := time.Since(start)
		st := c.Stats()
		assert.Positive(t, st.InAbandoned, "messages left by Close are counted")

		second := newSeqCounter(0)
		next := newClient(t, append(session, mqttkeep.WithSubscription("close/t", 1, second.handle))...)
		connect(t, next)
		eventuallyTrue(t, "all 50 handled by one process or the other", func() bool {
			a, b := first.seen(), second.seen()
			for i := 1; i <= 50; i++ {
				if a[i] == 0 && b[i] == 0 {
					return false
				}
			}
			return true
		})
		t.Logf("close with messages in flight: returned in %v, handled %d, abandoned %d; the next process got %d",
			closeTook.Round(time.Millisecond), first.total.Load(), st.InAbandoned, second.total.Load())
	})
}

// Overlapping filters: each handler runs exactly once per publish, on
// mochi (one PUBLISH naming both subscriptions) and Mosquitto (one copy
// per subscription).
func TestOverlappingFiltersOneCallEach(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		wide, narrow, third := newSeqCounter(0), newSeqCounter(0), newSeqCounter(0)
		c := newClient(t, mqttkeep.WithServer(url),
			mqttkeep.WithSubscription("edges/#", 1, wide.handle),
			mqttkeep.WithSubscription("edges/+/x", 1, narrow.handle),
			mqttkeep.WithSubscription("edges/a/+", 1, third.handle))
		connect(t, c)
		eventuallyTrue(t, "subscribed", func() bool { return c.Stats().PacketsIn >= 4 })
		publishSeq(t, url, "edges/a/x", 11) // the 11th marks the end: per subscription, copies come in order
		for _, h := range []*seqCounter{wide, narrow, third} {
			eventuallyTrue(t, "the last message", func() bool { return h.seen()[11] > 0 })
		}
		for name, h := range map[string]*seqCounter{"edges/#": wide, "edges/+/x": narrow, "edges/a/+": third} {
			for i := 1; i <= 11; i++ {
				assert.Equal(t, 1, h.seen()[i], "%s: calls for message %d", name, i)
			}
		}
	})
}

// A handler that blocks does not hold up another subscription's (within
// the Receive Maximum: acknowledgements leave in arrival order).
func TestSlowSubscriptionDoesNotStallAnother(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		release := make(chan struct{})
		var slowCalls atomic.Int32
		fast := newSeqCounter(0)
		c := newClient(t, mqttkeep.WithServer(url),
			mqttkeep.WithSubscription("slow/t", 1, func(*mqttkeep.Message) { slowCalls.Add(1); <-release }),
			mqttkeep.WithSubscription("fast/t", 1, fast.handle))
		connect(t, c)
		defer close(release)
		eventuallyTrue(t, "subscribed", func() bool { return c.Stats().PacketsIn >= 3 })
		publishSeq(t, url, "slow/t", 1)
		eventuallyTrue(t, "the slow handler runs", func() bool { return slowCalls.Load() == 1 })
		publishSeq(t, url, "fast/t", 10)
		eventuallyTrue(t, "10 fast messages while the slow handler blocks", func() bool { return fast.total.Load() == 10 })
	})
}

// Manual acknowledgement through a worker pool: a message is acknowledged
// when its work is done, in arrival order; what was not acknowledged
// comes again in a later process with the session.
func TestManualAckWithWorkerPool(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		id := fmt.Sprintf("manual-%d", time.Now().UnixNano())
		session := []mqttkeep.Option{mqttkeep.WithServer(url), mqttkeep.WithClientID(id),
			mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Minute), mqttkeep.WithManualAck()}
		work := make(chan *mqttkeep.Message, 100)
		var mu sync.Mutex
		var kept []*mqttkeep.Message
		c, err := mqttkeep.New(append(session, mqttkeep.WithSubscription("manual/t", 1, func(m *mqttkeep.Message) {
			work <- m // hand-off: not acknowledged yet
		}))...)
		require.NoError(t, err)
		connect(t, c)
		eventuallyTrue(t, "subscribed", func() bool { return c.Stats().PacketsIn >= 2 })
		publishSeq(t, url, "manual/t", 10)
		for range 10 {
			m := <-work
			mu.Lock()
			kept = append(kept, m)
			mu.Unlock()
		}
		// The workers finish 1..5 in reverse order; 6..10 never.
		var wg sync.WaitGroup
		for i := 4; i >= 0; i-- {
			wg.Add(1)
			go func() { defer wg.Done(); kept[i].Ack(); kept[i].Ack() }() // twice: idempotent
			wg.Wait()
		}
		_, err = c.Ping(context.Background()) // the PUBACKs went before it
		require.NoError(t, err)
		require.NoError(t, c.Close(context.Background()))

		again := newSeqCounter(0)
		next := newClient(t, append(session, mqttkeep.WithSubscription("manual/t", 1, func(m *mqttkeep.Message) {
			again.handle(m)
			m.Ack()
		}))...)
		connect(t, next)
		eventuallyTrue(t, "6..10 again", func() bool { return again.total.Load() >= 5 })
		_, err = next.Ping(context.Background())
		require.NoError(t, err)
		seen := again.seen()
		var keys []int
		for k := range seen {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		assert.Equal(t, []int{6, 7, 8, 9, 10}, keys, "re-delivered")
	})
}

// A handler that panics is recovered and counted, and its message is
// acknowledged (holding it would hold every later acknowledgement): a
// later process with the session does not get it again.
func TestHandlerPanicAcknowledges(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	session := []mqttkeep.Option{mqttkeep.WithServer(b.URL()), mqttkeep.WithClientID("panics"),
		mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Minute)}
	c, err := mqttkeep.New(append(session, mqttkeep.WithSubscription("panic/t", 1, func(*mqttkeep.Message) { panic("boom") }))...)
	require.NoError(t, err)
	connect(t, c)
	eventuallyTrue(t, "subscribed", func() bool { return c.Stats().PacketsIn >= 2 })
	publishSeq(t, b.URL(), "panic/t", 3)
	eventuallyTrue(t, "3 panics", func() bool { return c.Stats().InHandlerPanics == 3 })
	_, err = c.Ping(context.Background())
	require.NoError(t, err)
	require.NoError(t, c.Close(context.Background()))
	later := newSeqCounter(0)
	next := newClient(t, append(session, mqttkeep.WithDefaultHandler(later.handle))...)
	connect(t, next)
	_, err = next.Ping(context.Background())
	require.NoError(t, err)
	assert.Zero(t, later.total.Load())
}

// One member of a shared subscription drains while messages flow: every
// message the publisher got acknowledged is handled by one member or the
// other (Close lost 120 of 600 here: the broker dropped what it had
// queued for the closed member's session). The Receive Maximum is above
// the message count so that the broker holds nothing back for a member's
// window: what a broker still holds for a member when it leaves dies with
// that member's session, whatever the client does.
func TestSharedSubscriptionMemberDrains(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		const n = 600
		a, b := newSeqCounter(time.Millisecond), newSeqCounter(time.Millisecond)
		member := func(h mqttkeep.MessageHandler) *mqttkeep.Client {
			return newClient(t, mqttkeep.WithServer(url), mqttkeep.WithReceiveMaximum(1000),
				mqttkeep.WithSubscription("$share/g/shared/t", 1, h))
		}
		ma, mb := member(a.handle), member(b.handle)
		connect(t, ma)
		connect(t, mb)
		eventuallyTrue(t, "subscribed", func() bool { return ma.Stats().PacketsIn >= 2 && mb.Stats().PacketsIn >= 2 })
		done := make(chan struct{})
		go func() { defer close(done); publishSeq(t, url, "shared/t", n) }()
		eventuallyTrue(t, "the first member handles some", func() bool { return a.total.Load() >= 50 })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, ma.DrainUnsubscribe(ctx))
		<-done
		missing := func() []int {
			var out []int
			sa, sb := a.seen(), b.seen()
			for i := 1; i <= n; i++ {
				if sa[i] == 0 && sb[i] == 0 {
					out = append(out, i)
				}
			}
			return out
		}
		if !assert.Eventually(t, func() bool { return len(missing()) == 0 }, 20*time.Second, time.Millisecond) {
			t.Logf("missing: %v; first member: in %d handled %d", missing(), ma.Stats().InPublishes, a.total.Load())
		}
		t.Logf("shared subscription, one member drained: first %d, second %d, unroutable at the first %d",
			a.total.Load(), b.total.Load(), ma.Stats().InUnsubscribed)
	})
}

// Subscribe while the broker is away waits for the next connection and
// returns once the broker acknowledged; messages then flow.
func TestSubscribeWhileReconnecting(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	ev := newEvents()
	c := newClient(t, append(ev.options(), mqttkeep.WithServer(b.URL()),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 20 * time.Millisecond }}))...)
	connect(t, c)
	b.Stop()
	<-ev.lost
	got := newSeqCounter(0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	subscribed := make(chan error, 1)
	go func() { subscribed <- c.Subscribe(ctx, "later/t", 1, got.handle) }()
	require.NoError(t, b.Restart())
	require.NoError(t, <-subscribed)
	publishSeq(t, b.URL(), "later/t", 3)
	eventuallyTrue(t, "3 messages", func() bool { return got.total.Load() == 3 })
}

// WithConcurrency lets that many handler calls of one subscription run at
// once.
func TestSubscriptionConcurrency(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	var running, peak atomic.Int32
	release := make(chan struct{})
	c := newClient(t, mqttkeep.WithServer(b.URL()), mqttkeep.WithSubscription("pool/t", 1, func(*mqttkeep.Message) {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		running.Add(-1)
	}, mqttkeep.WithConcurrency(4)))
	connect(t, c)
	eventuallyTrue(t, "subscribed", func() bool { return c.Stats().PacketsIn >= 2 })
	publishSeq(t, b.URL(), "pool/t", 8)
	eventuallyTrue(t, "4 handler calls at once", func() bool { return running.Load() == 4 })
	close(release)
	eventuallyTrue(t, "all handled", func() bool { return c.Stats().InHandlerCalls == 8 })
	assert.Equal(t, int32(4), peak.Load(), "never more than 4")
}
