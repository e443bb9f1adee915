package mqttkeep_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leaveBacklog makes a session with a subscription to filter, closes its
// client (the session stays on the broker), and publishes n messages to
// topic for it. It returns the options that resume the session.
func leaveBacklog(t *testing.T, url, filter, topic string, n int) []mqttkeep.Option {
	t.Helper()
	id := fmt.Sprintf("held-%d", time.Now().UnixNano())
	session := []mqttkeep.Option{mqttkeep.WithServer(url), mqttkeep.WithClientID(id),
		mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Minute)}
	ev := newEvents()
	first, err := mqttkeep.New(append(append(ev.options(), session...),
		mqttkeep.WithSubscription(filter, 1, func(*mqttkeep.Message) {}))...)
	require.NoError(t, err)
	connect(t, first)
	require.NoError(t, ev.connectEvent(t, 0).ResubscribeErr) // subscribed
	require.NoError(t, first.Close(context.Background()))    // the session stays
	publishSeq(t, url, topic, n)
	return session
}

// Connect, then Subscribe — the order of every paho and MQTT.js example:
// a resumed session's backlog that arrives before the Subscribe call is
// held, unacknowledged, and handed to the subscription once it is made.
// (Before: 0 of 20 handled whenever the backlog won the race, acknowledged
// as unroutable.) The test waits until all 20 are held, so that the
// backlog always wins.
func TestResumedBacklogReachesASubscribeMadeAfterConnect(t *testing.T) {
	onBrokers(t, func(t *testing.T, url string) {
		session := leaveBacklog(t, url, "backlog/#", "backlog/x", 20)
		c := newClient(t, session...)
		connect(t, c)
		eventuallyTrue(t, "20 messages held", func() bool { return c.Stats().InHeld == 20 })
		got := newSeqCounter(0)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, c.Subscribe(ctx, "backlog/#", 1, got.handle))
		eventuallyTrue(t, "20 backlog messages handled", func() bool { return got.total.Load() >= 20 })
		for i := 1; i <= 20; i++ {
			assert.Positive(t, got.seen()[i], "message %d", i)
		}
		st := c.Stats()
		assert.Zero(t, st.InUnsubscribed)
		assert.Zero(t, st.InHeld)

		// Acknowledged once handled: a later process on the session gets
		// nothing more.
		require.NoError(t, c.Close(ctx))
		later := newSeqCounter(0)
		next := newClient(t, append(session, mqttkeep.WithDefaultHandler(later.handle))...)
		connect(t, next)
		_, err := next.Ping(ctx)
		require.NoError(t, err)
		assert.Zero(t, later.total.Load(), "messages handed out again after they were acknowledged")
	})
}

// A held message goes only to a subscription whose filter matches it; a
// subscription to another filter does not take it.
func TestHeldMessageWaitsForAMatchingFilter(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	session := leaveBacklog(t, b.URL(), "held/#", "held/a/b", 3)
	c := newClient(t, session...)
	connect(t, c)
	eventuallyTrue(t, "3 held", func() bool { return c.Stats().InHeld == 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	other, match := newSeqCounter(0), newSeqCounter(0)
	require.NoError(t, c.Subscribe(ctx, "held/x/#", 1, other.handle))
	assert.Equal(t, 3, c.Stats().InHeld, "a subscription to another filter takes none")
	require.NoError(t, c.Subscribe(ctx, "held/+/b", 1, match.handle))
	eventuallyTrue(t, "3 handled", func() bool { return match.total.Load() == 3 })
	assert.Zero(t, other.total.Load())
}

// A stale subscription that an earlier process left in the session:
// Unsubscribe drops it, and its held messages are acknowledged unhandled,
// counted as unroutable — the program said it does not want them.
func TestUnsubscribeReleasesHeldMessagesOfAStaleFilter(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	session := leaveBacklog(t, b.URL(), "stale/#", "stale/x", 5)
	c := newClient(t, session...)
	connect(t, c)
	eventuallyTrue(t, "5 held", func() bool { return c.Stats().InHeld == 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, c.Unsubscribe(ctx, "stale/#"))
	st := c.Stats()
	assert.Zero(t, st.InHeld)
	assert.EqualValues(t, 5, st.InUnsubscribed)
	assert.Zero(t, st.InHandlerCalls)
	require.NoError(t, c.Close(ctx))

	later := newSeqCounter(0)
	next := newClient(t, append(session, mqttkeep.WithDefaultHandler(later.handle))...)
	connect(t, next)
	_, err := next.Ping(ctx)
	require.NoError(t, err)
	assert.Zero(t, later.total.Load(), "the unsubscribed filter's messages were acknowledged")
}

// Held messages whose subscription never comes are not acknowledged:
// Close leaves them to the broker, which sends them to the next process
// that resumes the session.
func TestHeldMessagesSurviveForTheNextProcess(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	session := leaveBacklog(t, b.URL(), "keep/#", "keep/x", 5)
	c := newClient(t, session...)
	connect(t, c)
	eventuallyTrue(t, "5 held", func() bool { return c.Stats().InHeld == 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, c.Close(ctx))
	st := c.Stats()
	assert.EqualValues(t, 5, st.InAbandoned)
	assert.Zero(t, st.InUnsubscribed)

	later := newSeqCounter(0)
	next := newClient(t, append(session, mqttkeep.WithSubscription("keep/#", 1, later.handle))...)
	connect(t, next)
	eventuallyTrue(t, "5 handled by the next process", func() bool { return later.total.Load() == 5 })
}
