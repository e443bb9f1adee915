package rabbitmq

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttkeep/mqttkeep/internal/mqtt311"
)

// ioTimeout bounds each packet a test waits for: generous, for a loaded
// 2-core machine.
const ioTimeout = 30 * time.Second

// dial connects c to addr (3.1.1) and closes the connection when the test
// ends; it returns the CONNACK's Session Present.
func dial(t *testing.T, addr string, c mqtt311.Connect) (*mqtt311.Conn, bool) {
	t.Helper()
	conn, present, err := mqtt311.Dial(addr, c, ioTimeout)
	require.NoError(t, err, "CONNECT %q to %s", c.ClientID, addr)
	t.Cleanup(func() { _ = conn.Close() })
	return conn, present
}

// publish1 sends a QoS 1 PUBLISH and waits for its PUBACK.
func publish1(t *testing.T, c *mqtt311.Conn, topic, payload string, id uint16) {
	t.Helper()
	require.NoError(t, c.Publish(topic, []byte(payload), 1, id, false))
	p, err := c.Expect(mqtt311.PUBACK)
	require.NoError(t, err, "PUBACK for %q", topic)
	got, err := p.PacketID()
	require.NoError(t, err)
	require.Equal(t, id, got, "PUBACK's packet identifier")
}

// receive reads the next packet, which must be a PUBLISH.
func receive(t *testing.T, c *mqtt311.Conn) mqtt311.Message {
	t.Helper()
	p, err := c.Expect(mqtt311.PUBLISH)
	require.NoError(t, err)
	m, err := p.Publish()
	require.NoError(t, err)
	return m
}

// closedByPeer reports whether err is what reading a connection the
// other side closed gives: EOF or a reset.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// refused reports whether nothing listens on addr (a connection is
// refused at once).
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// dialRetry connects c to addr, retrying while the broker refuses it
// with "server unavailable" (3) or drops it, as RabbitMQ may while the
// MQTT plugin's client-ID tracker elects a new leader after a node died,
// or while a restarted node recovers a session's queue; it logs each
// failure and gives up after timeout.
func dialRetry(t *testing.T, addr string, c mqtt311.Connect, timeout time.Duration) (*mqtt311.Conn, bool, time.Duration) {
	t.Helper()
	began := time.Now()
	for {
		conn, present, err := mqtt311.Dial(addr, c, ioTimeout)
		if err == nil {
			t.Cleanup(func() { _ = conn.Close() })
			return conn, present, time.Since(began)
		}
		var refusedErr *mqtt311.RefusedError
		if errors.As(err, &refusedErr) && refusedErr.Code != 3 {
			require.NoError(t, err)
		}
		if time.Since(began) > timeout {
			require.NoError(t, err, "CONNECT to %s for %v", addr, timeout)
		}
		t.Logf("CONNECT %q to %s: %v; again", c.ClientID, addr, err)
		time.Sleep(500 * time.Millisecond)
	}
}
