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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttkeep/mqttkeep/internal/rabbitmq/mqtt311"
)

// One node through its whole life: start, CONNECT, a QoS 1 round trip, a
// persistent session whose queued message survives SIGKILL and restart
// (quorum queue), a clean stop and restart.
func TestNodeLifecycle(t *testing.T) {
	t.Parallel()
	const user, pass = "mqttkeep", "pw-not-in-logs-7351"
	n := Start(t, WithQuorumSessions(), WithUser(user, pass))
	t.Logf("RabbitMQ %s node %s ready in %v (MQTT %s)", n.Version(), n.Name(), n.StartDuration(), n.MQTTAddr())

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
		c, present := dial(t, addr, n.Connect("lifecycle-connect", true))
		assert.False(t, present)
		require.NoError(t, c.Disconnect())
		_, _, err := mqtt311.Dial(addr, mqtt311.Connect{ClientID: "bad", CleanSession: true,
			Username: user, Password: []byte("wrong")}, ioTimeout)
		var refusedErr *mqtt311.RefusedError
		require.ErrorAs(t, err, &refusedErr)
		assert.EqualValues(t, 4, refusedErr.Code, "bad user name or password")
		// Anonymous connections get the default credentials.
		c, _ = dial(t, addr, mqtt311.Connect{ClientID: "anon", CleanSession: true})
		require.NoError(t, c.Disconnect())
	})

	t.Run("QoS 1 round trip", func(t *testing.T) {
		sub, _ := dial(t, addr, n.Connect("lifecycle-sub", true))
		codes, err := sub.Subscribe(1, mqtt311.Filter{Topic: "lifecycle/rt", QoS: 1})
		require.NoError(t, err)
		assert.Equal(t, []byte{1}, codes)
		pub, _ := dial(t, addr, n.Connect("lifecycle-pub", true))
		publish1(t, pub, "lifecycle/rt", "one", 7)
		m := receive(t, sub)
		assert.Equal(t, "lifecycle/rt", m.Topic)
		assert.Equal(t, "one", string(m.Payload))
		assert.EqualValues(t, 1, m.QoS)
		require.NoError(t, sub.Ack(mqtt311.PUBACK, m.PacketID))
	})

	// A persistent session with a QoS 1 subscription and a message queued
	// for it while it is away.
	keeper := n.Connect("lifecycle-keeper", false)
	c, present := dial(t, addr, keeper)
	assert.False(t, present, "a new session")
	_, err := c.Subscribe(1, mqtt311.Filter{Topic: "lifecycle/keep", QoS: 1})
	require.NoError(t, err)
	require.NoError(t, c.Disconnect())
	pub, _ := dial(t, addr, n.Connect("lifecycle-pub2", true))
	publish1(t, pub, "lifecycle/keep", "survives SIGKILL", 1)
	q, err := n.Queue("", SessionQueue("lifecycle-keeper"))
	require.NoError(t, err)
	assert.Equal(t, "quorum", q.Type)
	assert.True(t, q.Durable)

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
	c, present = dial(t, addr, keeper)
	assert.True(t, present, "the session survived the kill")
	m := receive(t, c)
	assert.Equal(t, "lifecycle/keep", m.Topic)
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

	log := n.Log()
	assert.Equal(t, 3, strings.Count(log, notePrefix+"start #"), "three starts noted")
	assert.NotContains(t, log, pass, "the password is not logged")
	assert.Contains(t, n.LogTail(200), "lifecycle-keeper")

	epmdAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(n.epmd.port))
	assert.False(t, refused(epmdAddr), "the node's epmd runs")
	require.NoError(t, n.Close())
	assert.True(t, refused(epmdAddr), "the node's epmd is gone after Close")
	assert.ErrorIs(t, n.Restart(), ErrClosed)
	require.NoError(t, n.Close(), "Close is idempotent")
}
