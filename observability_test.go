package mqttkeep_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Stats carries when the connection came up, when bytes last arrived and
// when the last PINGRESP came, on the fake clock of a synctest bubble so
// that each can be checked to the nanosecond; after the connection ends
// ConnectedSince is zero and LastReceived keeps the last arrival.
func TestStatsTimestamps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		c := newClient(t, mqttkeep.WithServer("mqtt://pipe"), pipeDialer(b),
			mqttkeep.WithClientID("stamps"), mqttkeep.WithKeepAlive(10*time.Second))
		st := c.Stats()
		assert.True(t, st.ConnectedSince.IsZero() && st.LastReceived.IsZero() && st.LastPingResponse.IsZero(),
			"nothing before the first connection: %+v", st)

		start := time.Now()
		connect(t, c) // no time passes in the bubble
		st = c.Stats()
		assert.True(t, st.ConnectedSince.Equal(start), "connected since %v, want %v", st.ConnectedSince, start)
		assert.True(t, st.LastReceived.Equal(start), "the CONNACK arrived at %v, want %v", st.LastReceived, start)
		assert.True(t, st.LastPingResponse.IsZero())

		time.Sleep(5*time.Second + time.Millisecond) // the idle ping goes out at K/2
		synctest.Wait()
		st = c.Stats()
		pinged := start.Add(5 * time.Second)
		assert.True(t, st.LastPingResponse.Equal(pinged), "last PINGRESP at %v, want %v", st.LastPingResponse, pinged)
		assert.True(t, st.LastReceived.Equal(pinged), "last received at %v, want %v", st.LastReceived, pinged)
		assert.True(t, st.ConnectedSince.Equal(start))

		require.NoError(t, c.Close(context.Background()))
		st = c.Stats()
		assert.True(t, st.ConnectedSince.IsZero(), "no connection after Close, yet connected since %v", st.ConnectedSince)
		assert.True(t, st.LastReceived.Equal(pinged), "the last arrival is kept: %v, want %v", st.LastReceived, pinged)
	})
}

// A State is its name in JSON (and any text encoding), both ways; other
// text is refused with a named error.
func TestStateMarshalsAsText(t *testing.T) {
	out, err := json.Marshal(mqttkeep.Stats{State: mqttkeep.StateConnected})
	require.NoError(t, err)
	assert.Contains(t, string(out), `"State":"connected"`)

	for s := mqttkeep.StateDisconnected; s <= mqttkeep.StateClosed; s++ {
		text, err := s.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, s.String(), string(text))
		var back mqttkeep.State
		require.NoError(t, back.UnmarshalText(text))
		assert.Equal(t, s, back)
	}
	var s mqttkeep.State
	err = json.Unmarshal([]byte(`"online"`), &s)
	assert.True(t, errors.Is(err, mqttkeep.ErrInvalidArgument), "got %v", err)
	assert.ErrorContains(t, err, "online")
	_, err = mqttkeep.State(42).MarshalText()
	assert.True(t, errors.Is(err, mqttkeep.ErrInvalidArgument), "got %v", err)
}

// Every log record carries the client ID, so that the lines of several
// clients in one process can be told apart; an ID the broker assigns
// appears from its CONNACK on.
func TestLogRecordsCarryClientID(t *testing.T) {
	for _, tc := range []struct{ name, id string }{{"given", "logged-id"}, {"assigned", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			b := mqttkeeptest.NewBroker(t)
			var mu sync.Mutex
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newClient(t, mqttkeep.WithServer(b.URL()), mqttkeep.WithClientID(tc.id),
				mqttkeep.WithLogger(logger.With("app", "test")))
			connect(t, c)
			_, err := c.Ping(t.Context()) // a Debug record on the same client
			require.NoError(t, err)
			id := c.ClientID()
			require.NotEmpty(t, id)
			// Connect may return before the supervisor has logged the
			// connection; after Close every record is written.
			require.NoError(t, c.Close(context.Background()))

			mu.Lock()
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			mu.Unlock()
			var connected int
			for _, line := range lines {
				var rec map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &rec), "line %q", line)
				assert.Equal(t, "test", rec["app"], "the logger's own attributes stay: %s", line)
				assert.Equal(t, id, rec["client_id"], "record without the client ID: %s", line)
				if rec["msg"] == "mqttkeep: connected" {
					connected++
				}
			}
			assert.Equal(t, 1, connected, "log:\n%s", strings.Join(lines, "\n"))
		})
	}
}

// A received QoS 1/2 message carries the broker's packet identifier (what
// mosquitto_sub prints as %m); a QoS 0 message has none.
func TestReceivedPacketID(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	got := make(chan *mqttkeep.Message, 2)
	c := newClient(t, mqttkeep.WithServer(b.URL()),
		mqttkeep.WithSubscription("ids/#", 2, func(m *mqttkeep.Message) { got <- m }))
	connect(t, c)
	eventuallyTrue(t, "subscribed", func() bool { return c.Stats().PacketsIn >= 2 })
	require.NoError(t, b.Publish("ids/q1", []byte("x"), 1))
	m := <-got
	assert.NotZero(t, m.PacketID, "QoS %d", m.QoS)
	require.NoError(t, b.Publish("ids/q0", []byte("y"), 0))
	m = <-got
	assert.Zero(t, m.PacketID, "QoS %d", m.QoS)
}
