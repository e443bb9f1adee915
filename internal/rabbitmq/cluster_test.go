package rabbitmq

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttkeep/mqttkeep/internal/mqtt311"
)

// A persistent session's queue is a quorum queue replicated on the three
// nodes: when the node holding its leader is killed, the message queued
// for the session is still delivered through another node; the killed
// node restarts and rejoins. The cluster has a user of its own and no
// anonymous access, which every node applies.
func TestClusterKillLeaderSessionSurvives(t *testing.T) {
	t.Parallel()
	const user, pass = "mqttkeep", "pw-not-in-logs-7351"
	c := StartCluster(t, 3, WithQuorumSessions(), WithUser(user, pass), WithoutAnonymous())
	boot, join := c.Durations()
	t.Logf("3 nodes started together in %v, joined in %v", boot, join)
	require.Equal(t, 3, c.Size())
	addrs := c.MQTTAddrs()
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(addrs))), 3, "distinct MQTT addresses")
	names := map[string]bool{}
	for i, n := range c.Nodes() {
		names[n.Name()] = true
		require.NoError(t, n.Probe(ioTimeout), "MQTT on %s", n.Name())
		var refusedErr *mqtt311.RefusedError
		_, _, err := mqtt311.Dial(n.MQTTAddr(), mqtt311.Connect{ClientID: fmt.Sprint("anon", i), CleanSession: true}, ioTimeout)
		require.ErrorAs(t, err, &refusedErr, "anonymous on %s", n.Name())
		assert.EqualValues(t, 4, refusedErr.Code)
		wrong := n.Connect(fmt.Sprint("wrong", i), true)
		wrong.Password = []byte("not it")
		_, _, err = mqtt311.Dial(n.MQTTAddr(), wrong, ioTimeout)
		require.ErrorAs(t, err, &refusedErr, "a wrong password on %s", n.Name())
		assert.EqualValues(t, 4, refusedErr.Code)
	}
	assert.Len(t, names, 3, "distinct node names")

	const id, topic = "cluster-keeper", "cluster/keep"
	keeper := c.Node(0).Connect(id, false)
	conn, present := dial(t, c.Node(0).MQTTAddr(), keeper)
	assert.False(t, present)
	_, err := conn.Subscribe(1, mqtt311.Filter{Topic: topic, QoS: 1})
	require.NoError(t, err)
	require.NoError(t, conn.Disconnect())

	leader, err := c.QueueLeader("", SessionQueue(id))
	require.NoError(t, err)
	q, err := leader.Queue("", SessionQueue(id))
	require.NoError(t, err)
	assert.Equal(t, "quorum", q.Type)
	assert.Len(t, q.Members, 3, "replicated on every node")
	var others []*Node
	for _, n := range c.Nodes() {
		if n != leader {
			others = append(others, n)
		}
	}
	t.Logf("the session's queue has its leader on %s", leader.Name())

	pub, _ := dial(t, others[0].MQTTAddr(), others[0].Connect("cluster-pub", true))
	publish1(t, pub, topic, "through another node", 3)
	require.NoError(t, pub.Disconnect())

	require.NoError(t, leader.Kill())
	conn, present, waited := dialRetry(t, others[1].MQTTAddr(), keeper, 90*time.Second)
	t.Logf("session resumed through %s %v after the kill", others[1].Name(), waited)
	assert.True(t, present, "the session outlived its leader's node")
	m := receive(t, conn)
	assert.Equal(t, topic, m.Topic)
	assert.Equal(t, "through another node", string(m.Payload))
	require.NoError(t, conn.Ack(mqtt311.PUBACK, m.PacketID))
	require.NoError(t, conn.Disconnect())

	running, err := others[0].RunningNodes()
	require.NoError(t, err)
	assert.NotContains(t, running, leader.Name(), "the killed node is down")

	require.NoError(t, leader.Restart())
	t.Logf("%s restarted and rejoined in %v", leader.Name(), leader.StartDuration())
	running, err = others[1].RunningNodes()
	require.NoError(t, err)
	assert.Contains(t, running, leader.Name(), "the restarted node is back in the cluster")
	require.NoError(t, leader.Probe(ioTimeout))

	epmdAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.epmd.port))
	assert.False(t, refused(epmdAddr), "the cluster's epmd runs")
	require.NoError(t, c.Close())
	for _, n := range c.Nodes() {
		assert.False(t, n.Running())
		assert.True(t, refused(n.MQTTAddr()))
		assert.NotContains(t, n.Log(), pass, "the password is not logged")
		assert.ErrorIs(t, n.Restart(), ErrClosed)
	}
	assert.True(t, refused(epmdAddr), "the cluster's epmd is gone after Close")
	require.NoError(t, c.Close(), "Close is idempotent")
}
