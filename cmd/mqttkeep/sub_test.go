package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// publish sends messages with the library itself, each acknowledged (QoS
// 1 unless opts say otherwise) before the next, and returns once the
// broker is done with them: mochi writes its PUBACK before it stores and
// forwards a message, but it finishes each PUBLISH of a connection before
// it reads the next packet (see Broker.Disconnects).
func publish(t *testing.T, b *mqttkeeptest.Broker, topic string, payloads []string, opts ...mqttkeep.PublishOption) {
	t.Helper()
	c, err := mqttkeep.New(mqttkeep.WithServer(b.URL()))
	require.NoError(t, err)
	id := c.ClientID()
	defer eventually(t, 10*time.Second, "the broker done with the publisher", func() bool { return b.Disconnects(id) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Connect(ctx))
	for _, p := range payloads {
		require.NoError(t, c.Publish(ctx, topic, []byte(p), append([]mqttkeep.PublishOption{mqttkeep.WithQoS(1)}, opts...)...))
	}
	require.NoError(t, c.Close(ctx))
}

// Payload alone by default, "topic payload" with -v, no newline with -N,
// a format with -F; an empty payload as mosquitto_sub prints it.
func TestSubOutputModes(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	subs := map[string]*proc{
		"default": startSub(t, "-L", b.URL(), "-t", "o/#", "-q", "1", "-C", "3"),
		"v":       startSub(t, "-L", b.URL(), "-t", "o/#", "-q", "1", "-C", "3", "-v"),
		"N":       startSub(t, "-L", b.URL(), "-t", "o/#", "-q", "1", "-C", "3", "-N"),
		"vN":      startSub(t, "-L", b.URL(), "-t", "o/#", "-q", "1", "-C", "3", "-v", "-N"),
		"F":       startSub(t, "-L", b.URL(), "-t", "o/#", "-q", "1", "-C", "3", "-F", `%t=%p q%q r%r l%l x%x`),
		"FN":      startSub(t, "-L", b.URL(), "-t", "o/#", "-q", "1", "-C", "3", "-F", `[%p]`, "-N", "-v"),
		"pretty":  startSub(t, "-L", b.URL(), "-t", "o/#", "-q", "1", "-C", "3", "-F", `%j`, "--pretty", "-V", "mqttv5", "--nodelay"),
	}
	publish(t, b, "o/a", []string{"one", "", "three"})
	want := map[string]string{
		"default": "one\nthree\n",
		"v":       "o/a one\no/a (null)\no/a three\n",
		"N":       "onethree",
		"vN":      "o/a oneo/a three",
		"F":       "o/a=one q1 r0 l3 x6f6e65\no/a= q1 r0 l0 x\no/a=three q1 r0 l5 x7468726565\n",
		"FN":      "[one][][three]",
	}
	for name, p := range subs {
		require.Equal(t, exitOK, p.wait(t, 10*time.Second), "%s: %s", name, p.stderr)
		if name == "pretty" {
			out := p.stdout.String()
			assert.Equal(t, 3, strings.Count(out, "{\n\t\"tst\":\t\""), out)
			assert.Contains(t, out, "\t\"topic\":\t\"o/a\",\n\t\"qos\":\t1,\n")
			assert.Contains(t, out, "\t\"payload\":\tnull\n}\n")
			continue
		}
		assert.Equal(t, want[name], p.stdout.String(), name)
	}
}

// -W ends sub with mosquitto's status 27; --quiet keeps stderr empty.
func TestSubTimeout(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	began := time.Now()
	code, stdout, stderr := runSync(t, nil, "sub", "-L", b.URL(), "-t", "w", "-W", "300ms")
	assert.Equal(t, exitTimedOut, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "timed out (-W 300ms)")
	assert.GreaterOrEqual(t, time.Since(began), 300*time.Millisecond)
	code, stdout, stderr = runSync(t, nil, "sub", "-L", b.URL(), "-t", "w", "-W", "1", "--quiet")
	assert.Equal(t, exitTimedOut, code)
	assert.Empty(t, stdout)
	assert.Empty(t, stderr)
	// Also while no broker answers: -W counts from the start.
	code, _, _ = runSync(t, nil, "sub", "-L", "mqtt://127.0.0.1:1", "-t", "w", "-W", "200ms")
	assert.Equal(t, exitTimedOut, code)
}

// -C N acknowledges the N messages it printed and no more: with a kept
// session (-c) the next run gets the rest.
func TestSubCountAcknowledgesOnlyPrinted(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	sub := startSub(t, "-L", b.URL(), "-t", "c/#", "-q", "1", "-c", "-i", "counter", "-C", "2", "-v")
	publish(t, b, "c/x", []string{"1", "2", "3", "4"})
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second), sub.stderr.String())
	assert.Equal(t, []string{"c/x 1", "c/x 2"}, sub.stdout.lines())
	eventually(t, 10*time.Second, "the first sub gone", func() bool { return b.Disconnects("counter") == 1 })
	// The session kept 3 and 4; this run's handler for them is the
	// fallback one (c/# is not among its filters): mosquitto_sub prints
	// whatever its session brings too.
	code, stdout, stderr := runSync(t, nil, "sub", "-L", b.URL(), "-t", "other", "-q", "1", "-c", "-i", "counter", "-C", "2", "-v")
	require.Equal(t, exitOK, code, stderr)
	// In either order: mochi 2.7.9 re-sends a session's in-flight messages
	// sorted by their creation time in whole seconds, with an unstable
	// sort (Inflight.GetAll), so two from the same second come back in
	// any order, against MQTT-4.6.0-1.
	assert.ElementsMatch(t, []string{"c/x 3", "c/x 4"}, strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"))
}

// -E exits once subscribed; -U unsubscribes from a kept session, after
// which its messages are no longer queued for it.
func TestSubExitAfterSubscribeAndUnsubscribe(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	for _, id := range []string{"keep-u", "drop-u"} {
		code, _, stderr := runSync(t, nil, "sub", "-L", b.URL(), "-t", "u/#", "-q", "1", "-c", "-i", id, "-E")
		require.Equal(t, exitOK, code, stderr)
		assert.Contains(t, stderr, "subscribed to u/# (QoS 1)")
		eventually(t, 10*time.Second, id+" gone", func() bool { return b.Disconnects(id) == 1 })
	}
	code, _, stderr := runSync(t, nil, "sub", "-L", b.URL(), "-U", "u/#", "-c", "-i", "drop-u", "-E")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, 1, b.Packets("drop-u", 10), "one UNSUBSCRIBE")
	eventually(t, 10*time.Second, "drop-u gone", func() bool { return b.Disconnects("drop-u") == 2 })
	publish(t, b, "u/x", []string{"queued"})

	code, stdout, stderr := runSync(t, nil, "sub", "-L", b.URL(), "-t", "none", "-q", "1", "-c", "-i", "keep-u", "-C", "1", "-v")
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, "u/x queued\n", stdout)
	code, stdout, _ = runSync(t, nil, "sub", "-L", b.URL(), "-t", "none", "-q", "1", "-c", "-i", "drop-u", "-W", "500ms", "-v")
	assert.Equal(t, exitTimedOut, code)
	assert.Empty(t, stdout, "unsubscribed: nothing queued")
}

// -R, --retained-only, --remove-retained and --retain-as-published, as
// mosquitto_sub has them.
func TestSubRetained(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	publish(t, b, "r/a", []string{"stale-a"}, mqttkeep.WithRetain())
	publish(t, b, "r/b", []string{"stale-b"}, mqttkeep.WithRetain())

	noRetain := startSub(t, "-L", b.URL(), "-t", "r/#", "-q", "1", "-R", "-C", "1", "-F", "%t %p %r")
	retainOnly := startSub(t, "-L", b.URL(), "-t", "r/#", "-q", "1", "--retained-only", "-F", "%t %p %r")
	asPublished := startSub(t, "-L", b.URL(), "-t", "r/live", "-q", "1", "--retain-as-published", "-C", "1", "-F", "%t %p %r")
	plain := startSub(t, "-L", b.URL(), "-t", "r/live", "-q", "1", "-C", "1", "-F", "%t %p %r")
	eventually(t, 10*time.Second, "--retained-only printed both", func() bool { return len(retainOnly.stdout.lines()) == 2 })
	publish(t, b, "r/live", []string{"fresh"}, mqttkeep.WithRetain())

	require.Equal(t, exitOK, noRetain.wait(t, 10*time.Second), noRetain.stderr.String())
	assert.Equal(t, "r/live fresh 0\n", noRetain.stdout.String(), "-R: no stale message")
	require.Equal(t, exitOK, retainOnly.wait(t, 10*time.Second), "ends at the first fresh message")
	assert.ElementsMatch(t, []string{"r/a stale-a 1", "r/b stale-b 1"}, retainOnly.stdout.lines())
	require.Equal(t, exitOK, asPublished.wait(t, 10*time.Second))
	assert.Equal(t, "r/live fresh 1\n", asPublished.stdout.String())
	require.Equal(t, exitOK, plain.wait(t, 10*time.Second))
	assert.Equal(t, "r/live fresh 0\n", plain.stdout.String())

	// Clear every retained message, then find none left.
	// The empty retained messages that clear them come back to sub as
	// fresh (non-retained) messages: the first ends it, as with
	// mosquitto_sub.
	code, stdout, stderr := runSync(t, nil, "sub", "-L", b.URL(), "-t", "r/#", "--retained-only", "--remove-retained", "-v")
	assert.Equal(t, exitOK, code, stderr)
	assert.Len(t, strings.Split(strings.TrimSpace(stdout), "\n"), 3, stdout)
	code, stdout, _ = runSync(t, nil, "sub", "-L", b.URL(), "-t", "r/#", "-W", "500ms", "-v")
	assert.Equal(t, exitTimedOut, code)
	assert.Empty(t, stdout, "no retained message left")
}

// -T filters out, a message matching two filters prints once, -L's path
// is a topic filter, -I builds the client ID, --random-filter 100 prints
// all.
func TestSubFilters(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	sub := startSub(t, "-L", b.URL()+"/f/#", "-t", "f/+/x", "-T", "f/skip/#", "-q", "1", "-C", "3", "-v",
		"-I", "prefix-", "--random-filter", "100")
	eventually(t, 10*time.Second, "both subscriptions", func() bool { return strings.Count(sub.stderr.String(), "subscribed to") == 2 })
	publish(t, b, "f/skip/x", []string{"filtered"})
	publish(t, b, "f/a/x", []string{"both filters"})
	publish(t, b, "f/b", []string{"one filter"})
	publish(t, b, "f/skip", []string{"filtered too"})
	publish(t, b, "f/c", []string{"last"})
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second), sub.stderr.String())
	// Each subscription has a delivery lane of its own in the library:
	// messages of different subscriptions may print in another order
	// than they arrived (f/a/x is printed from f/+/x's lane, f/b and f/c
	// from f/#'s, which keeps its own order).
	lines := sub.stdout.lines()
	assert.ElementsMatch(t, []string{"f/a/x both filters", "f/b one filter", "f/c last"}, lines)
	assert.Less(t, slices.Index(lines, "f/b one filter"), slices.Index(lines, "f/c last"), "one lane's order: %q", lines)
	assert.Equal(t, 1, b.Packets(fmt.Sprintf("prefix-%d", os.Getpid()), 1), "CONNECT as prefix-PID")
}

// --random-filter skips messages but counts them, as mosquitto_sub does.
func TestSubRandomFilter(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	sub := startSub(t, "-L", b.URL(), "-t", "rf", "-q", "1", "-C", "40", "--random-filter", "50")
	var msgs []string
	for i := range 40 {
		msgs = append(msgs, fmt.Sprint(i))
	}
	publish(t, b, "rf", msgs)
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second), "ends after 40 messages, printed or not")
	n := len(sub.stdout.lines())
	// P(n = 0 or n = 40) = 2^-39.
	assert.Greater(t, n, 0)
	assert.Less(t, n, 40)
}
