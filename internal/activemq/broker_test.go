package activemq

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mqttkeep/mqttkeep/internal/mqtt311"
)

// ioTimeout bounds each packet a test waits for.
const ioTimeout = 30 * time.Second

func dial(t *testing.T, addr string, c mqtt311.Connect) (*mqtt311.Conn, bool) {
	t.Helper()
	conn, present, err := mqtt311.Dial(addr, c, ioTimeout)
	require.NoError(t, err, "CONNECT %q to %s", c.ClientID, addr)
	t.Cleanup(func() { _ = conn.Close() })
	return conn, present
}

func publish1(t *testing.T, c *mqtt311.Conn, topic, payload string, id uint16) {
	t.Helper()
	require.NoError(t, c.Publish(topic, []byte(payload), 1, id, false))
	p, err := c.Expect(mqtt311.PUBACK)
	require.NoError(t, err, "PUBACK for %q", topic)
	got, err := p.PacketID()
	require.NoError(t, err)
	require.Equal(t, id, got)
}

func receive(t *testing.T, c *mqtt311.Conn) mqtt311.Message {
	t.Helper()
	p, err := c.Expect(mqtt311.PUBLISH)
	require.NoError(t, err)
	m, err := p.Publish()
	require.NoError(t, err)
	return m
}

func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// One broker through its whole life: start, CONNECT with and without the
// right credentials, an MQTT 5 CONNECT, a QoS 1 round trip, a persistent
// session whose queued message survives SIGKILL and restart (KahaDB), a
// clean stop and restart.
func TestBrokerLifecycle(t *testing.T) {
	t.Parallel()
	const user, pass = "mqttkeep", "pw-not-in-logs-4417"
	b := Start(t, WithUser(user, pass))
	t.Logf("ActiveMQ %s broker ready in %v (JVM start included; MQTT %s)", b.Version(), b.StartDuration(), b.MQTTAddr())
	addr := b.MQTTAddr()
	pid := b.PID()
	require.Positive(t, pid)
	if runtime.GOOS == "linux" {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		require.NoError(t, err)
		assert.Equal(t, "java", filepath.Base(exe), "the process started is the JVM itself")
		_, port, _ := net.SplitHostPort(addr)
		assert.True(t, refused(net.JoinHostPort("127.0.0.2", port)), "bound to 127.0.0.1 only")
	}

	t.Run("CONNECT", func(t *testing.T) {
		c, present := dial(t, addr, b.Connect("lifecycle-connect", true))
		assert.False(t, present)
		require.NoError(t, c.Disconnect())
		var refusedErr *mqtt311.RefusedError
		_, _, err := mqtt311.Dial(addr, mqtt311.Connect{ClientID: "bad", CleanSession: true,
			Username: user, Password: []byte("wrong")}, ioTimeout)
		require.ErrorAs(t, err, &refusedErr)
		// simpleAuthenticationPlugin throws a SecurityException, which
		// the MQTT connector answers with 5 (not authorized), not 4.
		assert.EqualValues(t, 5, refusedErr.Code)
		_, _, err = mqtt311.Dial(addr, mqtt311.Connect{ClientID: "anon", CleanSession: true}, ioTimeout)
		require.ErrorAs(t, err, &refusedErr, "anonymous refused")
		assert.EqualValues(t, 5, refusedErr.Code)
	})

	t.Run("MQTT 5 CONNECT", func(t *testing.T) {
		// ActiveMQ answers a level-5 CONNECT with a 3.1.1 CONNACK,
		// return code 1 (unacceptable protocol version), and closes.
		nc, err := net.DialTimeout("tcp", addr, ioTimeout)
		require.NoError(t, err)
		defer nc.Close()
		require.NoError(t, nc.SetDeadline(time.Now().Add(ioTimeout)))
		body := []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30, 0, 0, 2, 'v', '5'}
		_, err = nc.Write(append([]byte{0x10, byte(len(body))}, body...))
		require.NoError(t, err)
		p, err := mqtt311.ReadPacket(nc, 0)
		require.NoError(t, err)
		_, code, err := p.Connack()
		require.NoError(t, err)
		assert.EqualValues(t, 1, code)
		_, err = mqtt311.ReadPacket(nc, 0)
		assert.True(t, closedByPeer(err), "then closed: %v", err)
	})

	t.Run("QoS 1 round trip", func(t *testing.T) {
		sub, _ := dial(t, addr, b.Connect("lifecycle-sub", true))
		codes, err := sub.Subscribe(1, mqtt311.Filter{Topic: "lifecycle/rt", QoS: 1})
		require.NoError(t, err)
		assert.Equal(t, []byte{1}, codes)
		pub, _ := dial(t, addr, b.Connect("lifecycle-pub", true))
		publish1(t, pub, "lifecycle/rt", "one", 7)
		m := receive(t, sub)
		assert.Equal(t, "lifecycle/rt", m.Topic)
		assert.Equal(t, "one", string(m.Payload))
		assert.EqualValues(t, 1, m.QoS)
		require.NoError(t, sub.Ack(mqtt311.PUBACK, m.PacketID))
	})

	keeper := b.Connect("lifecycle-keeper", false)
	c, present := dial(t, addr, keeper)
	assert.False(t, present, "a new session")
	_, err := c.Subscribe(1, mqtt311.Filter{Topic: "lifecycle/keep", QoS: 1})
	require.NoError(t, err)
	require.NoError(t, c.Disconnect())
	pub, _ := dial(t, addr, b.Connect("lifecycle-pub2", true))
	publish1(t, pub, "lifecycle/keep", "survives SIGKILL", 1)

	require.NoError(t, b.Kill())
	assert.False(t, b.Running())
	assert.Zero(t, b.PID())
	assert.True(t, refused(addr), "nothing listens after Kill")
	_, err = pub.Read()
	assert.True(t, closedByPeer(err), "the publisher's connection is gone: %v", err)

	require.NoError(t, b.Restart())
	t.Logf("restart after SIGKILL: ready in %v", b.StartDuration())
	assert.Equal(t, addr, b.MQTTAddr())
	assert.NotEqual(t, pid, b.PID())
	// ActiveMQ 5.17 never sets Session Present (its CONNACK is always
	// "accepted", flags 0), even for a session it resumes: a client must
	// not take 0 for a lost session here. The message shows the session
	// was kept.
	c, present = dial(t, addr, keeper)
	assert.False(t, present, "ActiveMQ does not set Session Present")
	m := receive(t, c)
	assert.Equal(t, "lifecycle/keep", m.Topic)
	assert.Equal(t, "survives SIGKILL", string(m.Payload))
	assert.EqualValues(t, 1, m.QoS)
	require.NoError(t, c.Ack(mqtt311.PUBACK, m.PacketID))
	require.NoError(t, c.Disconnect())

	require.NoError(t, b.Stop())
	assert.True(t, refused(addr), "nothing listens after Stop")
	require.NoError(t, b.Stop(), "Stop of a stopped broker")
	require.NoError(t, b.Kill(), "Kill of a stopped broker")
	require.NoError(t, b.Restart())
	t.Logf("restart after a clean stop: ready in %v", b.StartDuration())
	c, _ = dial(t, addr, keeper)
	require.NoError(t, c.Disconnect())

	log := b.Log()
	assert.Equal(t, 3, strings.Count(log, notePrefix+"start #"), "three starts noted")
	assert.NotContains(t, log, pass, "the password is not logged")
	require.NoError(t, b.Close())
	assert.True(t, refused(addr))
	assert.ErrorIs(t, b.Restart(), ErrClosed)
	require.NoError(t, b.Close(), "Close is idempotent")
}

func TestSharedBrokerIsOnePerTestBinary(t *testing.T) {
	t.Parallel()
	var brokers []*Broker
	for i := range 2 {
		t.Run(fmt.Sprint(i), func(t *testing.T) { brokers = append(brokers, Shared(t)) })
	}
	require.Len(t, brokers, 2)
	assert.Same(t, brokers[0], brokers[1])
	require.NoError(t, brokers[0].Probe(ioTimeout))
	// No authentication: any CONNECT is accepted.
	c, _ := dial(t, brokers[0].MQTTAddr(), mqtt311.Connect{ClientID: "shared-anon", CleanSession: true})
	require.NoError(t, c.Disconnect())
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

func TestXMLEscapesCredentials(t *testing.T) {
	b := &Broker{name: "x", dir: "/d", port: 1, cfg: newConfig([]Option{WithUser(`a"b`, `<&'>`)})}
	x := b.xml()
	assert.Contains(t, x, `username="a&quot;b" password="&lt;&amp;&apos;&gt;"`)
	assert.Contains(t, x, `uri="mqtt://127.0.0.1:1"`)
	assert.Contains(t, x, `anonymousAccessAllowed="false"`)
	assert.NotContains(t, (&Broker{name: "x", dir: "/d", cfg: newConfig(nil)}).xml(), "simpleAuthenticationPlugin")
}

// A broker that cannot start fails NewBroker at once, the cause in the
// error; nothing is left running.
func TestBrokerStartFailure(t *testing.T) {
	if _, ok := Installed(); !ok {
		missing(t)
	}
	t.Parallel()
	_, err := NewBroker(t.TempDir(), WithBrokerXML("<noSuchElement/>"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exited during start-up")
	assert.Contains(t, err.Error(), "noSuchElement", "ActiveMQ's own words are in the error")
}
