package mosquitto

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// connack sends an MQTT v5 CONNECT to addr and returns the CONNACK.
func connack(t *testing.T, addr, clientID, user, pass string, keepAlive uint16) *packets.Connack {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion = "MQTT", 5
	c.ClientID, c.KeepAlive, c.CleanStart = clientID, keepAlive, true
	c.Properties = &packets.Properties{}
	if user != "" {
		c.Username, c.UsernameFlag = user, true
		c.Password, c.PasswordFlag = []byte(pass), true
	}
	_, err = cp.WriteTo(conn)
	require.NoError(t, err)
	resp, err := packets.ReadPacket(conn)
	require.NoError(t, err)
	ack, ok := resp.Content.(*packets.Connack)
	require.True(t, ok, "got %s, want CONNACK", resp.PacketType())
	return ack
}

// The helper's tests are not parallel, so that goleak.VerifyNone can check
// that nothing is left once a broker is stopped.

func TestMosquittoStartServesMQTTAndStops(t *testing.T) {
	b := Start(t)
	assert.True(t, strings.HasPrefix(b.Addr(), "127.0.0.1:"))
	assert.Equal(t, "mqtt://"+b.Addr(), b.URL())
	assert.True(t, b.Running())
	assert.Positive(t, b.PID())
	ack := connack(t, b.Addr(), "probe", "", "", 30)
	assert.EqualValues(t, 0, ack.ReasonCode)

	_, ok := b.WaitLog("New client connected from", 1, 5*time.Second)
	assert.True(t, ok, "connection logged")
	assert.Positive(t, b.Count("running"), "start-up logged")
	for _, l := range b.Lines() {
		assert.False(t, l.Time.IsZero())
	}
	cfg, err := os.ReadFile(filepath.Join(b.Dir(), "mosquitto.conf"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "listener "+strings.TrimPrefix(b.Addr(), "127.0.0.1:")+" 127.0.0.1\n")
	assert.Contains(t, string(cfg), "allow_anonymous true\n")

	b.Stop()
	assert.False(t, b.Running())
	assert.Zero(t, b.PID())
	_, err = net.DialTimeout("tcp", b.Addr(), time.Second)
	assert.Error(t, err, "nothing listens after Stop")
	b.Stop() // idempotent
	b.Kill()
	goleak.VerifyNone(t)
}

func TestMosquittoKillAndRestartKeepThePort(t *testing.T) {
	b := Start(t)
	addr := b.Addr()
	pid := b.PID()
	b.Kill()
	assert.False(t, b.Running())
	_, err := net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "nothing listens after Kill")
	goleak.VerifyNone(t)

	require.NoError(t, b.Restart())
	assert.Equal(t, addr, b.Addr())
	assert.NotEqual(t, pid, b.PID())
	assert.EqualValues(t, 0, connack(t, addr, "again", "", "", 30).ReasonCode)

	// Restart of a running broker: SIGTERM, then start again, at once
	// (the port is rebound while the old connections' sockets linger).
	require.NoError(t, b.Restart())
	assert.EqualValues(t, 0, connack(t, addr, "again", "", "", 30).ReasonCode)
	assert.Equal(t, 3, b.Count("--- internal/mosquitto: start #"))
	b.Stop()
	goleak.VerifyNone(t)
}

func TestMosquittoMaxKeepAliveSendsServerKeepAlive(t *testing.T) {
	// 10 s is the smallest max_keepalive Mosquitto 2.0 accepts.
	b := Start(t, WithMaxKeepAlive(10))
	for _, asked := range []uint16{60, 0} {
		ack := connack(t, b.Addr(), "ka", "", "", asked)
		require.EqualValues(t, 0, ack.ReasonCode)
		require.NotNil(t, ack.Properties)
		require.NotNil(t, ack.Properties.ServerKeepAlive, "Server Keep Alive in CONNACK when asked for %d s", asked)
		assert.EqualValues(t, 10, *ack.Properties.ServerKeepAlive)
	}
	// The client's own value, when within the limit, stands: no property.
	ack := connack(t, b.Addr(), "ka", "", "", 5)
	require.EqualValues(t, 0, ack.ReasonCode)
	if ack.Properties != nil {
		assert.Nil(t, ack.Properties.ServerKeepAlive)
	}
}

func TestMosquittoPasswordFile(t *testing.T) {
	b := Start(t, WithPasswordFile("alice", "correct horse"))
	cfg, err := os.ReadFile(filepath.Join(b.Dir(), "mosquitto.conf"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "allow_anonymous false\n")

	assert.EqualValues(t, 0, connack(t, b.Addr(), "ok", "alice", "correct horse", 30).ReasonCode)
	wrong := connack(t, b.Addr(), "bad", "alice", "battery staple", 30).ReasonCode
	assert.GreaterOrEqual(t, wrong, byte(0x80), "wrong password refused")
	anon := connack(t, b.Addr(), "anon", "", "", 30).ReasonCode
	assert.GreaterOrEqual(t, anon, byte(0x80), "anonymous refused")
	t.Logf("CONNACK reason code: wrong password 0x%02X, anonymous 0x%02X", wrong, anon)
}

func TestMosquittoPersistenceSurvivesRestart(t *testing.T) {
	b := Start(t, WithPersistence())
	// A session with a subscription (expiry 300 s), saved by SIGTERM.
	conn, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	// Clean Start 0: Mosquitto writes only such sessions to its database.
	c.ProtocolName, c.ProtocolVersion, c.ClientID, c.KeepAlive, c.CleanStart = "MQTT", 5, "keeper", 30, false
	expiry := uint32(300)
	c.Properties = &packets.Properties{SessionExpiryInterval: &expiry}
	_, err = cp.WriteTo(conn)
	require.NoError(t, err)
	_, err = packets.ReadPacket(conn)
	require.NoError(t, err)
	sp := packets.NewControlPacket(packets.SUBSCRIBE)
	s := sp.Content.(*packets.Subscribe)
	s.PacketID = 1
	s.Subscriptions = []packets.SubOptions{{Topic: "keep/#", QoS: 1}}
	_, err = sp.WriteTo(conn)
	require.NoError(t, err)
	_, err = packets.ReadPacket(conn)
	require.NoError(t, err)
	require.NoError(t, conn.Close())

	require.NoError(t, b.Restart())
	_, err = os.Stat(filepath.Join(b.Dir(), "data", "mosquitto.db"))
	require.NoError(t, err, "database written")

	conn2, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	require.NoError(t, err)
	defer conn2.Close()
	require.NoError(t, conn2.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = cp.WriteTo(conn2)
	require.NoError(t, err)
	resp, err := packets.ReadPacket(conn2)
	require.NoError(t, err)
	ack := resp.Content.(*packets.Connack)
	assert.EqualValues(t, 0, ack.ReasonCode)
	assert.True(t, ack.SessionPresent, "session restored from the database")
}

func TestMosquittoLogShownOnlyOnFailure(t *testing.T) {
	b := Start(t)
	_, ok := b.WaitLog("no such line", 1, 50*time.Millisecond)
	assert.False(t, ok)
	lines, ok := b.WaitLog("running", 1, time.Second)
	assert.True(t, ok)
	assert.NotEmpty(t, lines)
	assert.Contains(t, b.Log(), "--- internal/mosquitto: start #1 on "+b.Addr())
}

// fakeTB records Skip and Fatal without ending the goroutine.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped = fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any) { f.fatal = fmt.Sprint(args...) }

func TestMosquittoMissingBinarySkipsUnlessRequired(t *testing.T) {
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

func TestMosquittoPartialLinesAreJoined(t *testing.T) {
	b := &Broker{}
	w := b.logWriter()
	_, _ = w.Write([]byte("one\ntw"))
	_, _ = w.Write([]byte("o\r\nthree"))
	lines := b.Lines()
	require.Len(t, lines, 2)
	assert.Equal(t, "one", lines[0].Text)
	assert.Equal(t, "two", lines[1].Text)
	assert.Equal(t, 1, b.Count("tw"))
}
