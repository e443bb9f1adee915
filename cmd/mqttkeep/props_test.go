package main

import (
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What -k, -c, -x, -i, -u/-P, the will flags and -D connect / will /
// disconnect put in CONNECT and DISCONNECT, read off the wire with paho's
// codec.
func TestConnectAndDisconnectProperties(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	tp := newTap(t, b.Addr())
	code, _, stderr := runSync(t, nil, "sub", "-L", tp.url(), "-t", "p/#", "-q", "1", "-E",
		"-k", "10", "-c", "-i", "props-sub", "-x", "120", "-u", "alice", "-P", "s3cret",
		"-D", "connect", "user-property", "ck", "cv",
		"-D", "CONNECT", "receive-maximum", "7",
		"-D", "connect", "maximum-packet-size", "100000",
		"-D", "connect", "topic-alias-maximum", "3",
		"-D", "connect", "request-response-information", "1",
		"-D", "connect", "request-problem-information", "0",
		"-D", "connect", "authentication-method", "TOKEN", "-D", "connect", "authentication-data", "abc",
		"--will-topic", "p/will", "--will-payload", "bye", "--will-qos", "1", "--will-retain", "--will-delay", "5",
		"-D", "will", "content-type", "text/x", "-D", "will", "user-property", "wk", "wv",
		"-D", "will", "message-expiry-interval", "30", "-D", "will", "response-topic", "p/reply",
		"-D", "will", "correlation-data", "cid", "-D", "will", "payload-format-indicator", "1",
		"-D", "disconnect", "user-property", "dk", "dv", "-D", "disconnect", "session-expiry-interval", "7",
	)
	require.Equal(t, exitOK, code, stderr)
	eventually(t, 10*time.Second, "the DISCONNECT through the tap", func() bool { return b.Disconnects("props-sub") == 1 })

	c := tp.first(t, 0, packets.CONNECT).Content.(*packets.Connect)
	assert.Equal(t, "props-sub", c.ClientID)
	assert.Equal(t, uint16(10), c.KeepAlive)
	assert.False(t, c.CleanStart, "-c")
	assert.Equal(t, "alice", c.Username)
	assert.Equal(t, []byte("s3cret"), c.Password)
	p := c.Properties
	require.NotNil(t, p)
	assert.Equal(t, uint32(120), *p.SessionExpiryInterval, "-x")
	assert.Equal(t, uint16(7), *p.ReceiveMaximum)
	assert.Equal(t, uint32(100000), *p.MaximumPacketSize)
	assert.Equal(t, uint16(3), *p.TopicAliasMaximum)
	assert.Equal(t, byte(1), *p.RequestResponseInfo)
	assert.Equal(t, byte(0), *p.RequestProblemInfo)
	assert.Equal(t, "TOKEN", p.AuthMethod)
	assert.Equal(t, []byte("abc"), p.AuthData)
	assert.Contains(t, p.User, packets.User{Key: "ck", Value: "cv"})
	assert.True(t, c.WillFlag)
	assert.Equal(t, "p/will", c.WillTopic)
	assert.Equal(t, []byte("bye"), c.WillMessage)
	assert.Equal(t, byte(1), c.WillQOS)
	assert.True(t, c.WillRetain)
	wp := c.WillProperties
	require.NotNil(t, wp)
	assert.Equal(t, uint32(5), *wp.WillDelayInterval)
	assert.Equal(t, "text/x", wp.ContentType)
	assert.Equal(t, []packets.User{{Key: "wk", Value: "wv"}}, wp.User)
	assert.Equal(t, uint32(30), *wp.MessageExpiry)
	assert.Equal(t, "p/reply", wp.ResponseTopic)
	assert.Equal(t, []byte("cid"), wp.CorrelationData)
	assert.Equal(t, byte(1), *wp.PayloadFormat)

	d := tp.first(t, 0, packets.DISCONNECT).Content.(*packets.Disconnect)
	require.NotNil(t, d.Properties)
	assert.Equal(t, uint32(7), *d.Properties.SessionExpiryInterval)
	assert.Equal(t, []packets.User{{Key: "dk", Value: "dv"}}, d.Properties.User)
}

// -c alone: a session that never expires (mosquitto's -x -1); -x ∞ the
// same; without either, the library's 300 s, and Clean Start.
func TestSessionExpiryFlags(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	for _, tc := range []struct {
		args   []string
		clean  bool
		expiry uint32
	}{
		{[]string{"-c", "-i", "sx1"}, false, 4294967295},
		{[]string{"-x", "∞", "-i", "sx2"}, true, 4294967295},
		{[]string{"-x", "-1", "-i", "sx3"}, true, 4294967295},
		{[]string{"-x", "0"}, true, 0},
		{[]string{"-D", "connect", "session-expiry-interval", "60"}, true, 60},
		{nil, true, 300},
	} {
		tp := newTap(t, b.Addr())
		code, _, stderr := runSync(t, nil, append([]string{"sub", "-L", tp.url(), "-t", "s", "-E"}, tc.args...)...)
		require.Equal(t, exitOK, code, "%v: %s", tc.args, stderr)
		c := tp.first(t, 0, packets.CONNECT).Content.(*packets.Connect)
		assert.Equal(t, tc.clean, c.CleanStart, "%v", tc.args)
		var got uint32
		if c.Properties != nil && c.Properties.SessionExpiryInterval != nil {
			got = *c.Properties.SessionExpiryInterval
		}
		assert.Equal(t, tc.expiry, got, "%v", tc.args)
	}
}

// -D publish properties go on every PUBLISH and come out of sub's -F.
func TestPublishProperties(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	tp := newTap(t, b.Addr())
	sub := startSub(t, "-L", b.URL(), "-t", "pp", "-q", "1", "-C", "2", "-F", "%C|%R|%D|%E|%F|%P|%p")
	code, _, stderr := runSync(t, nil, "pub", "-L", tp.url(), "-t", "pp", "-q", "1", "-m", "body", "--repeat", "2",
		"-D", "publish", "content-type", "text/plain", "-D", "publish", "response-topic", "pp/reply",
		"-D", "publish", "correlation-data", "corr", "-D", "publish", "message-expiry-interval", "3600",
		"-D", "publish", "payload-format-indicator", "1",
		"-D", "publish", "user-property", "k1", "v1", "-D", "publish", "user-property", "k1", "v2")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second), sub.stderr.String())
	for _, l := range sub.stdout.lines() {
		f := strings.Split(l, "|")
		require.Len(t, f, 7, l)
		assert.Equal(t, []string{"text/plain", "pp/reply", "corr"}, f[:3])
		assert.Contains(t, []string{"3600", "3599"}, f[3], "message expiry counts down at the broker")
		assert.Equal(t, []string{"1", "k1:v1 k1:v2", "body"}, f[4:])
	}
	var pubs int
	for _, p := range tp.packets(t, 0) {
		if p.FixedHeader.Type != packets.PUBLISH {
			continue
		}
		pubs++
		pp := p.Content.(*packets.Publish).Properties
		assert.Equal(t, "text/plain", pp.ContentType)
		assert.Equal(t, []packets.User{{Key: "k1", Value: "v1"}, {Key: "k1", Value: "v2"}}, pp.User)
	}
	assert.Equal(t, 2, pubs)
}

// -D subscribe user-property goes on every SUBSCRIBE sub sends, in the
// order given.
func TestSubscribeProperties(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	tp := newTap(t, b.Addr())
	sub := startSub(t, "-L", tp.url(), "-t", "sp/a", "-t", "sp/b", "-q", "1", "-C", "1",
		"-D", "subscribe", "user-property", "tenant", "acme", "-D", "subscribe", "user-property", "tenant", "beta")
	code, _, stderr := runSync(t, nil, "pub", "-L", b.URL(), "-t", "sp/a", "-q", "1", "-m", "x")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second), sub.stderr.String())
	var filters []string
	for _, p := range tp.packets(t, 0) {
		if p.FixedHeader.Type != packets.SUBSCRIBE {
			continue
		}
		s := p.Content.(*packets.Subscribe)
		for _, o := range s.Subscriptions {
			filters = append(filters, o.Topic)
		}
		require.NotNil(t, s.Properties)
		assert.Equal(t, []packets.User{{Key: "tenant", Value: "acme"}, {Key: "tenant", Value: "beta"}}, s.Properties.User)
	}
	assert.ElementsMatch(t, []string{"sp/a", "sp/b"}, filters)
}

// The will of a connection that dies without DISCONNECT is published,
// retained as asked.
func TestWill(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	proxy := mqttkeeptest.NewProxy(t, b.Addr())
	watcher := startSub(t, "-L", b.URL(), "-t", "status/#", "-q", "1", "-C", "1", "-v")
	_ = startSub(t, "-L", proxy.URL(), "-t", "nothing", "-i", "mortal",
		"--will-topic", "status/mortal", "--will-payload", "offline", "--will-qos", "1", "--will-retain")
	proxy.Reset() // the connection dies: no DISCONNECT
	require.Equal(t, exitOK, watcher.wait(t, 10*time.Second), watcher.stderr.String())
	assert.Equal(t, "status/mortal offline\n", watcher.stdout.String())
	code, stdout, _ := runSync(t, nil, "sub", "-L", b.URL(), "-t", "status/#", "-C", "1", "-F", "%t %p %r")
	require.Equal(t, exitOK, code)
	assert.Equal(t, "status/mortal offline 1\n", stdout, "--will-retain")
}
