package main

import (
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlural(t *testing.T) {
	assert.Equal(t, "0 days", plural(0, "day", "days"))
	assert.Equal(t, "1 day", plural(1, "day", "days"))
	assert.Equal(t, "2 deliveries", plural(2, "delivery", "deliveries"))
}

// A certificate's expiry in the unit that fits, rounded down, singular
// for one.
func TestExpiresIn(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		left time.Duration
		want string
	}{
		{400 * 24 * time.Hour, "expires in 400 days"},
		{48 * time.Hour, "expires in 2 days"},
		{47*time.Hour + 59*time.Minute, "expires in 1 day"},
		{24 * time.Hour, "expires in 1 day"},
		{24*time.Hour - time.Second, "expires in 23 hours"},
		{time.Hour + 30*time.Minute, "expires in 1 hour"},
		{59*time.Minute + 59*time.Second, "expires in 59 minutes"},
		{90 * time.Second, "expires in 1 minute"},
		{30 * time.Second, "expires in less than a minute"},
		{-time.Second, "EXPIRED"},
	} {
		assert.Equal(t, tc.want, expiresIn(now.Add(tc.left), now), "%v left", tc.left)
	}
}

// One PINGREQ: ping's summary and check's round trip say so in the
// singular.
func TestOnePingSingular(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	code, stdout, stderr := runSync(t, nil, "ping", "-L", b.URL(), "-c", "1")
	require.Equal(t, pingAnswered, code, stderr)
	assert.Contains(t, stdout, "1 PINGREQ sent, 1 PINGRESP received, 0% loss")

	code, stdout, stderr = runSync(t, nil, "check", "-L", b.URL(), "--pings", "1")
	require.Equal(t, exitOK, code, stderr)
	assert.Regexp(t, `round trip +1 PINGREQ: min/avg/max = `, stdout)
	assert.Regexp(t, `receive maximum +\d+ QoS 1/2 messages in flight towards the broker`, stdout)

	st := pingStats{sent: 3}
	st.add(time.Millisecond)
	assert.Contains(t, st.summary(time.Second), "3 PINGREQs sent, 1 PINGRESP received, 66% loss")
}
