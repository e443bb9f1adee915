package rabbitmq

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttkeep/mqttkeep/internal/mqtt311"
)

// The node shared by the package's tests, as the library's tests use it:
// the broker behaviours side by side on it, then, alone, its lifecycle:
// a persistent session whose queued message survives SIGKILL and
// restart (quorum queue), a clean stop and restart. (Killing the shared
// node is for this package's tests only, which order it after the
// others.) It runs beside the cluster test: four nodes start at once.
func TestSharedNode(t *testing.T) {
	t.Parallel()
	n := Shared(t)
	t.Logf("RabbitMQ %s node %s (MQTT %s): its last start took %v", n.Version(), n.Name(), n.MQTTAddr(), n.StartDuration())

	t.Run("one per test binary", func(t *testing.T) {
		assert.Same(t, n, Shared(t))
		user, pass := n.Credentials()
		assert.Equal(t, DefaultUser, user)
		assert.Equal(t, DefaultPassword, pass)
	})
	t.Run("behaviour", func(t *testing.T) {
		for _, b := range behaviours {
			t.Run(b.name, func(t *testing.T) {
				t.Parallel()
				b.test(t, n)
			})
		}
	})
	if t.Failed() {
		return
	}
	t.Run("lifecycle", func(t *testing.T) { nodeLifecycle(t, n) })
}

func nodeLifecycle(t *testing.T, n *Node) {
	addr := n.MQTTAddr()
	pid := n.PID()
	require.Positive(t, pid)
	assert.True(t, n.Running())
	if runtime.GOOS == "linux" {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		require.NoError(t, err)
		assert.Equal(t, "beam.smp", filepath.Base(exe), "the process started is the Erlang VM itself")
	}
	// Every listener is on 127.0.0.1 only: 127.0.0.2, loopback too on
	// Linux, finds nothing there.
	for _, a := range []string{addr, n.AMQPAddr(), net.JoinHostPort("127.0.0.1", strconv.Itoa(n.DistPort()))} {
		assert.False(t, refused(a), "%s listens", a)
		if runtime.GOOS == "linux" {
			_, port, _ := net.SplitHostPort(a)
			assert.True(t, refused(net.JoinHostPort("127.0.0.2", port)), "%s is bound to 127.0.0.1 only", a)
		}
	}

	t.Run("CONNECT", func(t *testing.T) {
		c, present := dial(t, addr, n.Connect(UniqueName(t, "c"), true))
		assert.False(t, present)
		require.NoError(t, c.Disconnect())
		bad := n.Connect(UniqueName(t, "bad"), true)
		bad.Password = []byte("wrong")
		_, _, err := mqtt311.Dial(addr, bad, ioTimeout)
		var refusedErr *mqtt311.RefusedError
		require.ErrorAs(t, err, &refusedErr)
		assert.EqualValues(t, 4, refusedErr.Code, "bad user name or password")
		// Anonymous connections get the default credentials.
		c, _ = dial(t, addr, mqtt311.Connect{ClientID: UniqueName(t, "anon"), CleanSession: true})
		require.NoError(t, c.Disconnect())
	})

	t.Run("QoS 1 round trip", func(t *testing.T) {
		topic, subID := UniqueName(t, "rt"), UniqueName(t, "sub")
		sub, _ := dial(t, addr, n.Connect(subID, true))
		codes, err := sub.Subscribe(1, mqtt311.Filter{Topic: topic, QoS: 1})
		require.NoError(t, err)
		assert.Equal(t, []byte{1}, codes)
		// A clean session's QoS 1 subscription lives in a classic queue.
		q, err := n.Queue("", SessionQueue(subID))
		require.NoError(t, err)
		assert.Equal(t, "classic", q.Type)
		_, err = n.Queue("", SessionQueue("no-such-client"))
		assert.ErrorIs(t, err, ErrNoQueue)
		pub, _ := dial(t, addr, n.Connect(UniqueName(t, "pub"), true))
		publish1(t, pub, topic, "one", 7)
		m := receive(t, sub)
		assert.Equal(t, topic, m.Topic)
		assert.Equal(t, "one", string(m.Payload))
		assert.EqualValues(t, 1, m.QoS)
		require.NoError(t, sub.Ack(mqtt311.PUBACK, m.PacketID))
	})

	// A persistent session with a QoS 1 subscription and a message queued
	// for it while it is away.
	id, topic := UniqueName(t, "keeper"), UniqueName(t, "keep")
	keeper := n.Connect(id, false)
	c, present := dial(t, addr, keeper)
	assert.False(t, present, "a new session")
	_, err := c.Subscribe(1, mqtt311.Filter{Topic: topic, QoS: 1})
	require.NoError(t, err)
	require.NoError(t, c.Disconnect())
	pub, _ := dial(t, addr, n.Connect(UniqueName(t, "pub"), true))
	publish1(t, pub, topic, "survives SIGKILL", 1)
	q, err := n.Queue("", SessionQueue(id))
	require.NoError(t, err)
	assert.Equal(t, "quorum", q.Type)
	assert.True(t, q.Durable)

	// Without Flush, RabbitMQ 3.10 loses a quorum queue declared this
	// shortly before a SIGKILL (see Flush).
	require.NoError(t, n.Flush())
	starts := strings.Count(n.Log(), notePrefix+"start #")
	require.NoError(t, n.Kill())
	assert.False(t, n.Running())
	assert.Zero(t, n.PID())
	assert.True(t, refused(addr), "nothing listens after Kill")
	_, err = pub.Read()
	assert.True(t, closedByPeer(err), "the publisher's connection is gone: %v", err)

	require.NoError(t, n.Restart())
	t.Logf("restart after SIGKILL: ready in %v", n.StartDuration())
	assert.Equal(t, addr, n.MQTTAddr())
	assert.NotEqual(t, pid, n.PID())
	assert.NotContains(t, n.LogTail(300), "elections triggered", "no quorum queue restarted empty")
	c, present = dial(t, addr, keeper)
	assert.True(t, present, "the session survived the kill")
	m := receive(t, c)
	assert.Equal(t, topic, m.Topic)
	assert.Equal(t, "survives SIGKILL", string(m.Payload))
	assert.EqualValues(t, 1, m.QoS)
	require.NoError(t, c.Ack(mqtt311.PUBACK, m.PacketID))
	require.NoError(t, c.Disconnect())

	require.NoError(t, n.Stop())
	assert.True(t, refused(addr), "nothing listens after Stop")
	require.NoError(t, n.Stop(), "Stop of a stopped node")
	require.NoError(t, n.Kill(), "Kill of a stopped node")
	require.NoError(t, n.Restart())
	t.Logf("restart after a clean stop: ready in %v", n.StartDuration())
	c, present = dial(t, addr, keeper)
	assert.True(t, present, "the session survived the stop")
	require.NoError(t, c.Disconnect())
	require.NoError(t, cleanUp(n, id))

	log := n.Log()
	assert.Equal(t, starts+2, strings.Count(log, notePrefix+"start #"), "two more starts noted")
	assert.Contains(t, n.LogTail(300), id, "the log shows the session's client")
}

func TestUniqueName(t *testing.T) {
	a, b := UniqueName(t, "sub"), UniqueName(t, "sub")
	assert.NotEqual(t, a, b)
	assert.True(t, strings.HasPrefix(a, "TestUniqueName-sub-"), a)
	t.Run("a/b c+#", func(t *testing.T) {
		name := UniqueName(t, "x/y")
		assert.Regexp(t, `^TestUniqueName_a_b_c_-x_y-\d+$`, name, "no topic separators or wildcards")
	})
	t.Run(strings.Repeat("long", 30), func(t *testing.T) {
		assert.LessOrEqual(t, len(UniqueName(t, "c")), 60)
	})
}

// fakeTB records Skip and Fatal without ending the goroutine.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...) }

func TestMissingSkipsUnlessRequired(t *testing.T) {
	t.Setenv(RequireEnv, "")
	var f fakeTB
	missing(&f)
	assert.Equal(t, MissingMessage, f.skipped)
	assert.Empty(t, f.fatal)

	t.Setenv(RequireEnv, "1")
	f = fakeTB{}
	missing(&f)
	assert.Equal(t, MissingMessage, f.fatal)
	assert.Empty(t, f.skipped)
}

// A node that cannot start fails NewNode at once, with the end of its log
// in the error; one not ready in time is killed. Nothing is left running.
func TestNodeStartFailures(t *testing.T) {
	if _, ok := Installed(); !ok {
		missing(t)
	}
	t.Parallel()
	_, err := NewNode(t.TempDir(), WithConfigLines("mqtt.no_such_setting = 1"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited during start-up")
	assert.Contains(t, err.Error(), "no_such_setting", "the node's own words are in the error")

	_, err = NewNode(t.TempDir(), WithStartTimeout(time.Millisecond))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not ready in time")
	assert.Contains(t, err.Error(), notePrefix+"start #1 of ")
}
