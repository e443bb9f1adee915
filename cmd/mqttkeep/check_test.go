package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// check reports the CONNACK's figures and what the keep alive means.
func TestCheck(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithServerKeepAlive(5), mqttkeeptest.WithMaximumPacketSize(4096))
	code, stdout, stderr := runSync(t, nil, "check", "-L", b.URL(), "-k", "60", "--pings", "3", "--json", "-i", "checker")
	require.Equal(t, exitOK, code, stderr)
	var r checkReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &r), stdout)
	assert.Equal(t, b.URL(), r.Broker)
	assert.Equal(t, "checker", r.ClientID)
	assert.False(t, r.ClientIDAssigned)
	assert.Equal(t, 60.0, r.KeepAliveAskedS)
	assert.Equal(t, 5.0, r.KeepAliveS)
	assert.True(t, r.KeepAliveImposed)
	assert.Equal(t, 5.0, r.DeadLinkWithinS)
	assert.Equal(t, 7.5, r.BrokerDropsAfterS)
	assert.Equal(t, 4096, r.MaximumPacketSize)
	assert.Equal(t, byte(2), r.MaximumQoS)
	assert.True(t, r.RetainAvailable)
	assert.Equal(t, 300.0, r.SessionExpiryS)
	assert.Equal(t, "5", r.ProtocolVersion)
	assert.Nil(t, r.TLS)
	require.NotNil(t, r.RTT)
	assert.Equal(t, 3, r.RTT.Count)
	assert.LessOrEqual(t, r.RTT.Min, r.RTT.Avg)
	assert.LessOrEqual(t, r.RTT.Avg, r.RTT.Max)
	assert.Equal(t, 3, b.Packets("checker", 12), "the PINGREQs counted")
	eventually(t, 10*time.Second, "the broker done with check", func() bool { return b.Disconnects("checker") == 1 })
	assert.Equal(t, 1, b.Packets("checker", 14), "and a DISCONNECT")

	code, _, stderr = runSync(t, nil, "check", "-L", b.URL(), "-k", "60", "-i", "", "--pings", "1")
	require.Equal(t, exitUsage, code, stderr) // -i "" is refused: leave -i out for a generated ID
	code, stdout, _ = runSync(t, nil, "check", "-L", b.URL(), "-k", "60")
	require.Equal(t, exitOK, code)
	for _, want := range []string{
		"broker imposes K = 5 s (we asked 60 s): a dead link is reported within 5 s",
		"the broker drops a client silent for 1.5 K = 7.5 s",
		"maximum packet size  4096 bytes",
		"TLS                  none",
		"round trip           5 PINGREQs: min/avg/max = ",
	} {
		assert.Contains(t, stdout, want)
	}
}

// check -V mqttv311 speaks MQTT 3.1.1 and says what it implies; the
// version negotiated (or asked) is in the JSON too.
func TestCheckMQTT311(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	code, stdout, stderr := runSync(t, nil, "check", "-L", b.URL(), "-V", "mqttv311", "--json", "--pings", "1")
	require.Equal(t, exitOK, code, stderr)
	var r checkReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &r), stdout)
	assert.Equal(t, "3.1.1", r.ProtocolVersion)
	code, stdout, stderr = runSync(t, nil, "check", "-L", b.URL(), "-V", "311", "--pings", "1")
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "MQTT 3.1.1 (the broker refused MQTT 5, or -V mqttv311): no properties")
}

// A refused connection: one line, status 1.
func TestCheckRefused(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	b.Refuse(0x8A)
	code, stdout, stderr := runSync(t, nil, "check", "-L", b.URL())
	assert.Equal(t, exitFail, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "CONNACK 0x8A banned")
	code, _, stderr = runSync(t, nil, "check", "-L", "mqtt://127.0.0.1:1")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, stderr, "connection refused")
}
