package mqttkeep_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/internal/redact"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every value MQTT limits is refused before anything is sent, with a
// named error; nothing is ever shortened to fit.
func TestOutboundLimits(t *testing.T) {
	long := strings.Repeat("x", 65536)
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cases := []struct {
		name string
		m    mqttkeep.Message
		want error
	}{
		{"topic over 65535 bytes", mqttkeep.Message{Topic: long}, mqttkeep.ErrInvalidTopic},
		{"topic not UTF-8", mqttkeep.Message{Topic: "a\xff"}, mqttkeep.ErrInvalidTopic},
		{"topic with U+0000", mqttkeep.Message{Topic: "a\x00"}, mqttkeep.ErrInvalidTopic},
		{"empty topic", mqttkeep.Message{Topic: ""}, mqttkeep.ErrInvalidTopic},
		{"wildcard in topic", mqttkeep.Message{Topic: "a/+"}, mqttkeep.ErrInvalidTopic},
		{"QoS 3", mqttkeep.Message{Topic: "a", QoS: 3}, mqttkeep.ErrInvalidQoS},
		{"correlation data over 65535 bytes", mqttkeep.Message{Topic: "a", CorrelationData: []byte(long)}, mqttkeep.ErrInvalidArgument},
		{"content type over 65535 bytes", mqttkeep.Message{Topic: "a", ContentType: long}, mqttkeep.ErrInvalidArgument},
		{"content type not UTF-8", mqttkeep.Message{Topic: "a", ContentType: "\xff"}, mqttkeep.ErrInvalidArgument},
		{"response topic with a wildcard", mqttkeep.Message{Topic: "a", ResponseTopic: "r/#"}, mqttkeep.ErrInvalidTopic},
		{"user property name over 65535 bytes", mqttkeep.Message{Topic: "a", UserProperties: []mqttkeep.UserProperty{{Key: long}}}, mqttkeep.ErrInvalidArgument},
		{"user property value not UTF-8", mqttkeep.Message{Topic: "a", UserProperties: []mqttkeep.UserProperty{{Key: "k", Value: "\xc0"}}}, mqttkeep.ErrInvalidArgument},
		{"message expiry not whole seconds", mqttkeep.Message{Topic: "a", MessageExpiry: 1500 * time.Millisecond}, mqttkeep.ErrInvalidArgument},
		{"message expiry over 2^32-1 s", mqttkeep.Message{Topic: "a", MessageExpiry: (1 << 32) * time.Second}, mqttkeep.ErrInvalidArgument},
		{"negative message expiry", mqttkeep.Message{Topic: "a", MessageExpiry: -time.Second}, mqttkeep.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			err := c.PublishMessage(ctx, &m)
			require.ErrorIs(t, err, tc.want)
			assert.NotContains(t, err.Error(), long, "the error does not repeat the value")
		})
	}
	assert.Zero(t, b.Packets(c.ClientID(), packetPublish), "nothing was sent")
	assert.Equal(t, mqttkeep.StateConnected, c.State())

	for _, f := range []string{long, "a/#/b", "a+", "$share/g", "\xff"} {
		assert.ErrorIs(t, c.Subscribe(ctx, f, 1, func(*mqttkeep.Message) {}), mqttkeep.ErrInvalidTopic, "filter %.20q", f)
	}
	assert.ErrorIs(t, c.Subscribe(ctx, "a", 3, func(*mqttkeep.Message) {}), mqttkeep.ErrInvalidQoS)
	assert.ErrorIs(t, c.Subscribe(ctx, "a", 1, nil), mqttkeep.ErrInvalidArgument)
	assert.ErrorIs(t, c.Subscribe(ctx, "$share/g/a", 1, func(*mqttkeep.Message) {}, mqttkeep.WithNoLocal()), mqttkeep.ErrInvalidArgument)
	assert.ErrorIs(t, c.Subscribe(ctx, "a", 1, func(*mqttkeep.Message) {}, mqttkeep.WithRetainHandling(3)), mqttkeep.ErrInvalidArgument)
	assert.ErrorIs(t, c.Subscribe(ctx, "a", 1, func(*mqttkeep.Message) {}, mqttkeep.WithConcurrency(0)), mqttkeep.ErrInvalidArgument)
}

// Options with values MQTT cannot carry are refused by New, naming the
// option.
func TestOptionLimits(t *testing.T) {
	long := strings.Repeat("x", 65536)
	srv := mqttkeep.WithServer("mqtt://127.0.0.1")
	cases := []struct {
		name   string
		opt    mqttkeep.Option
		option string
	}{
		{"client ID over 65535 bytes", mqttkeep.WithClientID(long), "WithClientID"},
		{"user name over 65535 bytes", mqttkeep.WithCredentials(long, ""), "WithCredentials"},
		{"password over 65535 bytes", mqttkeep.WithCredentials("u", long), "WithCredentials"},
		{"will payload over 65535 bytes", mqttkeep.WithWill(mqttkeep.Message{Topic: "w", Payload: []byte(long)}, 0), "WithWill"},
		{"will topic with a wildcard", mqttkeep.WithWill(mqttkeep.Message{Topic: "w/#"}, 0), "WithWill"},
		{"will QoS 3", mqttkeep.WithWill(mqttkeep.Message{Topic: "w", QoS: 3}, 0), "WithWill"},
		{"keep alive over 65535 s", mqttkeep.WithKeepAlive(65536 * time.Second), "WithKeepAlive"},
		{"keep alive not whole seconds", mqttkeep.WithKeepAlive(1500 * time.Millisecond), "WithKeepAlive"},
		{"session expiry over 2^32-1 s", mqttkeep.WithSessionExpiry((1 << 32) * time.Second), "WithSessionExpiry"},
		{"receive maximum 0", mqttkeep.WithReceiveMaximum(0), "WithReceiveMaximum"},
		{"receive maximum 65536", mqttkeep.WithReceiveMaximum(65536), "WithReceiveMaximum"},
		{"maximum packet size over MQTT's", mqttkeep.WithMaxPacketSize(268435461), "WithMaxPacketSize"},
		{"topic alias maximum 65536", mqttkeep.WithInboundTopicAliases(65536), "WithInboundTopicAliases"},
		{"in-flight limit 0", mqttkeep.WithInflightLimits(0, 1), "WithInflightLimits"},
		{"port 0", mqttkeep.WithServer("mqtt://127.0.0.1:0"), "WithServer"},
		{"port 65536", mqttkeep.WithServer("mqtt://127.0.0.1:65536"), "WithServer"},
		{"port 99999", mqttkeep.WithServer("mqtt://h:99999"), "WithServer"},
		{"no host", mqttkeep.WithServer("mqtt://:1883"), "WithServer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mqttkeep.New(srv, tc.opt)
			require.ErrorIs(t, err, mqttkeep.ErrInvalidOption)
			assert.Contains(t, err.Error(), tc.option)
			assert.NotContains(t, err.Error(), long)
		})
	}
}

// A password inside a server URL never shows in New's error, whatever
// the URL looks like.
func TestURLPasswordNeverShown(t *testing.T) {
	const pw = "hunter2secret"
	for _, raw := range []string{
		"mqtt://u:" + pw + "@h:1883",
		"mqtt://u:" + pw + "/x@h",          // "/" in the password
		"mqtt://u:" + pw + "@h/path?q=a@b", // "@" later in the query
		"mqtt://u:" + pw + "@h:99999",      // and another error
		"gopher://u:" + pw + "@h",          // unknown scheme
		"u:" + pw + "@h:1883",              // no scheme
		"mqtt://u:" + pw + "@[::1",         // unparsable
	} {
		_, err := mqttkeep.New(mqttkeep.WithServer(raw))
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), pw, raw)
		assert.NotContains(t, redact.URL(raw), pw, raw)
	}
}

// A call whose ctx has already ended does nothing and says so.
func TestEndedCtxIsHonoured(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()), mqttkeep.WithClientID("ended"))
	connect(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, call := range []struct {
		name string
		f    func() error
	}{
		{"Publish QoS 0", func() error { return c.Publish(ctx, "t", []byte("x")) }},
		{"Publish QoS 1", func() error { return c.Publish(ctx, "t", []byte("x"), mqttkeep.WithQoS(1)) }},
		{"PublishAsync", func() error { _, err := c.PublishAsync(ctx, "t", []byte("x")); return err }},
		{"Subscribe", func() error { return c.Subscribe(ctx, "t", 1, func(*mqttkeep.Message) {}) }},
		{"Unsubscribe", func() error { return c.Unsubscribe(ctx, "t") }},
		{"Ping", func() error { _, err := c.Ping(ctx); return err }},
		{"Flush", func() error { return c.Flush(ctx) }},
	} {
		assert.ErrorIs(t, call.f(), context.Canceled, call.name)
	}
	live, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	_, err := c.Ping(live) // everything before it has been read by the broker
	require.NoError(t, err)
	assert.Zero(t, b.Packets("ended", packetPublish))
	assert.Zero(t, b.Packets("ended", packetSubscribe))
	assert.Zero(t, b.Packets("ended", packetUnsubscribe))
	assert.EqualValues(t, 1, b.Packets("ended", packetPingreq))

	fresh, err := mqttkeep.New(mqttkeep.WithServer(b.URL()))
	require.NoError(t, err)
	assert.ErrorIs(t, fresh.Connect(ctx), context.Canceled)
	assert.Equal(t, mqttkeep.StateDisconnected, fresh.State(), "Connect with an ended ctx starts nothing")
	require.NoError(t, fresh.Close(live))
}

// Bytes from the broker that are not MQTT, or break its rules, end the
// connection with a DISCONNECT carrying the matching reason code and an
// error that names it — not an EOF that reads like a hang-up.
func TestBrokerProtocolViolations(t *testing.T) {
	cases := []struct {
		name   string
		packet []byte
		code   byte
		want   error
	}{
		{"malformed remaining length", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 0x81, mqttkeep.ErrMalformedPacket},
		{"PUBLISH topic not UTF-8", []byte{0x30, 0x04, 0, 1, 0xFF, 0}, 0x81, mqttkeep.ErrMalformedPacket},
		{"PUBLISH with a wildcard topic", []byte{0x30, 0x04, 0, 1, '#', 0}, 0x82, mqttkeep.ErrProtocolViolation},
		{"topic alias never set", []byte{0x30, 0x06, 0, 0, 3, 0x23, 0, 1}, 0x94, mqttkeep.ErrProtocolViolation},
		{"topic alias above our maximum", []byte{0x30, 0x07, 0, 1, 't', 3, 0x23, 0xFF, 0xFF}, 0x94, mqttkeep.ErrProtocolViolation},
		{"a second CONNACK", []byte{0x20, 0x03, 0, 0, 0}, 0x82, mqttkeep.ErrProtocolViolation},
		{"a packet larger than WithMaxPacketSize", []byte{0x30, 0xFF, 0xFF, 0x03}, 0x95, mqttkeep.ErrPacketTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newScripted(t)
				defer srv.close()
				got := make(chan *packets.Disconnect, 1)
				go func() {
					sc := srv.accept()
					sc.handshake(nil)
					sc.raw(tc.packet)
					sc.serve(func(cp *packets.ControlPacket) {
						if d, ok := cp.Content.(*packets.Disconnect); ok {
							got <- d
						}
					})
				}()
				ev := newEvents()
				c, err := mqttkeep.New(append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
					mqttkeep.WithMaxPacketSize(1<<16),
					mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
				require.NoError(t, err)
				// Connect may never see the connected state: the packet can
				// end the connection before the client is marked connected.
				start, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
				_ = c.Connect(start)
				cancel()
				e := <-ev.lost
				assert.ErrorIs(t, e.Err, tc.want)
				assert.True(t, e.WillReconnect)
				d := <-got
				assert.Equal(t, tc.code, d.ReasonCode, "DISCONNECT reason code")
				require.NoError(t, c.Close(context.Background()))
			})
		})
	}
}
