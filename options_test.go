package mqttkeep_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewRejectsInvalidOptions(t *testing.T) {
	srv := mqttkeep.WithServer("mqtt://127.0.0.1:1883")
	for _, tc := range []struct {
		name   string
		opts   []mqttkeep.Option
		option string // the option the error must name
	}{
		{"no server", nil, "WithServer"},
		{"nil option", []mqttkeep.Option{srv, nil}, "option 1 is nil"},
		{"empty server list", []mqttkeep.Option{mqttkeep.WithServer()}, "WithServer"},
		{"unknown scheme", []mqttkeep.Option{mqttkeep.WithServer("gopher://h:1")}, `unsupported scheme "gopher"`},
		{"no scheme", []mqttkeep.Option{mqttkeep.WithServer("localhost:1883")}, "WithServer"},
		{"no host", []mqttkeep.Option{mqttkeep.WithServer("mqtt://:1883")}, "no host"},
		{"unparsable URL", []mqttkeep.Option{mqttkeep.WithServer("mqtt://[::1")}, "cannot parse"},
		{"user info in URL", []mqttkeep.Option{mqttkeep.WithServer("mqtt://u:pw@h")}, "WithCredentials"},
		{"negative keep alive", []mqttkeep.Option{srv, mqttkeep.WithKeepAlive(-time.Second)}, "WithKeepAlive"},
		{"fractional keep alive", []mqttkeep.Option{srv, mqttkeep.WithKeepAlive(1500 * time.Millisecond)}, "WithKeepAlive"},
		{"keep alive too long", []mqttkeep.Option{srv, mqttkeep.WithKeepAlive(65536 * time.Second)}, "WithKeepAlive"},
		{"negative ping timeout", []mqttkeep.Option{srv, mqttkeep.WithPingTimeout(-1)}, "WithPingTimeout"},
		{"ping timeout too long", []mqttkeep.Option{srv, mqttkeep.WithPingTimeout(65536 * time.Second)}, "WithPingTimeout"},
		{"zero connect timeout", []mqttkeep.Option{srv, mqttkeep.WithConnectTimeout(0)}, "WithConnectTimeout"},
		{"password without user", []mqttkeep.Option{srv, mqttkeep.WithCredentials("", "pw")}, "WithCredentials"},
		{"user with NUL", []mqttkeep.Option{srv, mqttkeep.WithCredentials("a\x00b", "")}, "WithCredentials"},
		{"will with wildcard", []mqttkeep.Option{srv, mqttkeep.WithWill(mqttkeep.Message{Topic: "a/#"}, 0)}, "WithWill"},
		{"will with QoS 3", []mqttkeep.Option{srv, mqttkeep.WithWill(mqttkeep.Message{Topic: "a", QoS: 3}, 0)}, "WithWill"},
		{"negative session expiry", []mqttkeep.Option{srv, mqttkeep.WithSessionExpiry(-time.Second)}, "WithSessionExpiry"},
		{"fractional session expiry", []mqttkeep.Option{srv, mqttkeep.WithSessionExpiry(time.Millisecond)}, "WithSessionExpiry"},
		{"session expiry too long", []mqttkeep.Option{srv, mqttkeep.WithSessionExpiry((math.MaxUint32 + 1) * time.Second)}, "WithSessionExpiry"},
		{"backoff max below initial", []mqttkeep.Option{srv, mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: time.Second, Max: time.Millisecond, Multiplier: 2}})}, "WithReconnect"},
		{"backoff multiplier < 1", []mqttkeep.Option{srv, mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 0.5}})}, "Backoff"},
		{"backoff multiplier NaN", []mqttkeep.Option{srv, mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: math.NaN()}})}, "Backoff"},
		{"backoff without initial", []mqttkeep.Option{srv, mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Max: time.Minute, Multiplier: 2}})}, "Backoff"},
		{"dial retry below 10 ms", []mqttkeep.Option{srv, mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{DialRetry: time.Millisecond})}, "DialRetry"},
		{"negative dial retry", []mqttkeep.Option{srv, mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{DialRetry: -time.Second})}, "DialRetry"},
		{"negative max failed resumes", []mqttkeep.Option{srv, mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{MaxFailedResumes: -1})}, "MaxFailedResumes"},
		{"will delay not whole seconds", []mqttkeep.Option{srv, mqttkeep.WithWill(mqttkeep.Message{Topic: "w"}, 1500*time.Millisecond)}, "WithWill"},
		{"nil dialer", []mqttkeep.Option{srv, mqttkeep.WithDialer(nil)}, "WithDialer"},
		{"receive maximum 0", []mqttkeep.Option{srv, mqttkeep.WithReceiveMaximum(0)}, "WithReceiveMaximum"},
		{"receive maximum too big", []mqttkeep.Option{srv, mqttkeep.WithReceiveMaximum(65536)}, "WithReceiveMaximum"},
		{"client ID with NUL", []mqttkeep.Option{srv, mqttkeep.WithClientID("a\x00")}, "WithClientID"},
		{"max packet size negative", []mqttkeep.Option{srv, mqttkeep.WithMaxPacketSize(-1)}, "WithMaxPacketSize"},
		{"max packet size too small", []mqttkeep.Option{srv, mqttkeep.WithMaxPacketSize(10)}, "WithMaxPacketSize"},
		{"queue limits negative", []mqttkeep.Option{srv, mqttkeep.WithQueueLimits(-1, 10)}, "WithQueueLimits"},
		{"queue limits half off", []mqttkeep.Option{srv, mqttkeep.WithQueueLimits(0, 10)}, "WithQueueLimits"},
		{"message buffer 0", []mqttkeep.Option{srv, mqttkeep.WithMessageBuffer(0)}, "WithMessageBuffer"},
		{"unknown scheme names it", []mqttkeep.Option{mqttkeep.WithServer("amqp://h")}, `"amqp"`},
		{"two ports", []mqttkeep.Option{mqttkeep.WithServer("mqtt://127.0.0.1:1883:1883")}, "WithServer"},
		{"colon in host", []mqttkeep.Option{mqttkeep.WithServer("mqtt://a:b:1883")}, "WithServer"},
		{"empty port", []mqttkeep.Option{mqttkeep.WithServer("mqtt://127.0.0.1:")}, "empty port"},
		{"unbracketed IPv6", []mqttkeep.Option{mqttkeep.WithServer("mqtt://::1")}, "WithServer"},
		{"port not a number", []mqttkeep.Option{mqttkeep.WithServer("mqtt://h:x1")}, "WithServer"},
		{"store QoS 0 without a store", []mqttkeep.Option{srv, mqttkeep.WithStoreQoS0()}, "WithStoreQoS0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *mqttkeep.Client
			var err error
			require.NotPanics(t, func() { c, err = mqttkeep.New(tc.opts...) })
			require.ErrorIs(t, err, mqttkeep.ErrInvalidOption)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tc.option)
			assert.True(t, strings.HasPrefix(err.Error(), "mqttkeep: "), err.Error())
			assert.NotContains(t, err.Error(), "pw", "credentials never appear in errors")
		})
	}
}

func TestNewAcceptsValidOptions(t *testing.T) {
	c, err := mqttkeep.New(
		mqttkeep.WithServer("mqtt://a.example", "tcp://b.example:1884", "mqtt://[::1]:1883", "mqtts://[::1]"),
		mqttkeep.WithKeepAlive(0), mqttkeep.WithKeepAlive(65535*time.Second),
		mqttkeep.WithPingTimeout(0), mqttkeep.WithConnectTimeout(time.Second),
		mqttkeep.WithCredentials("user", "secret"), mqttkeep.WithWill(mqttkeep.Message{Topic: "dev/1/status", Payload: []byte("gone"), QoS: 1, Retain: true}, 0),
		mqttkeep.WithSessionExpiry(0), mqttkeep.WithCleanStart(false), mqttkeep.WithLogger(nil),
		mqttkeep.WithReceiveMaximum(65535),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Backoff: mqttkeep.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1}}),
	)
	require.NoError(t, err)
	assert.Equal(t, mqttkeep.StateDisconnected, c.State())
	require.NoError(t, c.Close(context.Background()))
}

// The generated client ID is 20 characters from [0-9a-z] (every MQTT v5
// broker must accept up to 23 of those) and differs between clients.
func TestGeneratedClientID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://h"))
		require.NoError(t, err)
		id := c.ClientID()
		assert.Regexp(t, `^mqttkeep[0-9a-f]{12}$`, id)
		assert.False(t, seen[id], "duplicate ID %s", id)
		seen[id] = true
	}
}

// New starts no goroutine (goleak in TestMain checks that nothing is left;
// here nothing may even start) and the dialer is only called by Connect.
func TestNewStartsNothing(t *testing.T) {
	dialed := false
	_, err := mqttkeep.New(mqttkeep.WithServer("mqtt://h"),
		mqttkeep.WithDialer(func(context.Context, *url.URL) (net.Conn, error) {
			dialed = true
			return nil, errors.New("no")
		}))
	require.NoError(t, err)
	assert.False(t, dialed)
}

// The password never appears in log output, at any level, through a
// refused, retried, accepted, lost and restored connection; nor in errors
// or Stats.
func TestPasswordNeverLogged(t *testing.T) {
	const password = "s3cr3t-pw"
	var mu sync.Mutex
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := mqttkeeptest.NewBroker(t)
	b.Refuse(0x89)
	ev := newEvents()
	c := newClient(t, append(ev.options(), mqttkeep.WithServer(b.URL()), mqttkeep.WithLogger(logger),
		mqttkeep.WithCredentials("alice", password),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 10 * time.Millisecond }}))...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	err := c.Connect(short)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), password)
	b.Refuse(0)
	require.NoError(t, c.AwaitConnected(ctx))
	b.Stop()
	require.NoError(t, b.Restart())
	<-ev.lost
	require.NoError(t, c.AwaitConnected(ctx))
	_, err = c.Ping(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Close(ctx))

	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, buf.String(), "level=DEBUG", "debug output was captured")
	assert.Contains(t, buf.String(), "reconnecting")
	assert.NotContains(t, buf.String(), password)
	assert.NotContains(t, fmt.Sprintf("%+v %#v", c.Stats(), c.Stats()), password)
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for _, d := range ev.disconnects {
		if d.Err != nil {
			assert.NotContains(t, d.Err.Error(), password)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
