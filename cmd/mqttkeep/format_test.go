package main

import (
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The expected lines below are what mosquitto_sub 2.0.11 printed for the
// same messages (recorded on this machine, TZ=UTC, with the time set to
// the one given here).
var fmtTime = time.Date(2026, 12, 1, 19, 8, 11, 311107000, time.UTC)

func TestFormatLine(t *testing.T) {
	t.Parallel()
	hello := &mqttkeep.Message{Topic: "j/a", Payload: []byte("héllo"), QoS: 1}
	props := &mqttkeep.Message{Topic: "f/a", Payload: []byte("hi there"), QoS: 1, PacketID: 5,
		UserProperties: []mqttkeep.UserProperty{{Key: "k", Value: "v"}, {Key: "k2", Value: "v2"}},
		ContentType:    "text/plain", ResponseTopic: "r/t", CorrelationData: []byte("cd"),
		MessageExpiry: 60 * time.Second, PayloadUTF8: true}
	empty := &mqttkeep.Message{Topic: "j/d", Retain: true}
	for _, tc := range []struct {
		name    string
		p       printer
		format  string
		m       *mqttkeep.Message
		want    string
		wantErr string
	}{
		{"payload alone", printer{eol: true}, "", hello, "héllo\n", ""},
		{"payload alone, empty: nothing", printer{eol: true}, "", empty, "", ""},
		{"-v", printer{eol: true, verbose: true}, "", hello, "j/a héllo\n", ""},
		{"-v empty", printer{eol: true, verbose: true}, "", empty, "j/d (null)\n", ""},
		{"-v -N", printer{verbose: true}, "", hello, "j/a héllo", ""},
		{"-v -N empty", printer{verbose: true}, "", empty, "", ""},
		{"widths", printer{eol: true}, "%10t|%-10t|%.2t|%5l|%05l|%-5l|%x|%10x", hello,
			"       j/a|j/a       |j/|    6|00006|6    |68c3a96c6c6f|    68c3a9\n", ""},
		{"fields", printer{eol: true}, "%t|%p|%q|%r|%l|%x|%X|%C|%E|%A|%S|%R|%P|%F|%D", props,
			"f/a|hi there|1|0|8|6869207468657265|6869207468657265|text/plain|60|||r/t|k:v k2:v2|1|cd\n", ""},
		{"absent fields", printer{eol: true}, "[%C|%E|%A|%S|%R|%P|%F|%D|%5E|%-3C]", hello, "[||||||||     |   ]\n", ""},
		{"retain", printer{eol: true}, "%r %q %l", empty, "1 0 0\n", ""},
		{"packet identifier", printer{eol: true}, "%m %3m|%m", props, "5   5|5\n", ""},
		{"packet identifier, QoS 0", printer{eol: true}, "%m", empty, "0\n", ""},
		{"escapes", printer{eol: true}, `a\tb\nc\\d\0e\ef\ag\rh\v%%@@`, hello, "a\tb\nc\\d\x00e\x1bf\ag\rh\v%@\n", ""},
		{"times", printer{eol: true}, "%I|%U|@Y-@m-@dT@H:@M:@S@z|@N|@s|@j|@Q", hello,
			"2026-12-01T19:08:11+0000|1796152091.311107000|2026-12-01T19:08:11+0000|311107000|1796152091|335|%Q\n", ""},
		{"%j", printer{eol: true}, "%j", props,
			`{"tst":"2026-12-01T19:08:11.311107Z+0000","topic":"f/a","qos":1,"retain":0,"payloadlen":8,"mid":5,"properties":{"user-properties":{"k":"v","k2":"v2"},"content-type":"text/plain","response-topic":"r/t","correlation-data":"cd","payload-format-indicator":1,"message-expiry-interval":60},"payload":"hi there"}` + "\n", ""},
		{"%j empty payload", printer{eol: true}, "%j", &mqttkeep.Message{Topic: "j/d"},
			`{"tst":"2026-12-01T19:08:11.311107Z+0000","topic":"j/d","qos":0,"retain":0,"payloadlen":0,"payload":null}` + "\n", ""},
		{"%j escapes", printer{eol: true}, "%j", &mqttkeep.Message{Topic: "j/e", Payload: []byte("a\"b\\c\nd\x01")},
			`{"tst":"2026-12-01T19:08:11.311107Z+0000","topic":"j/e","qos":0,"retain":0,"payloadlen":8,"payload":"a\"b\\c\nd\u0001"}` + "\n", ""},
		{"%j bytes", printer{eol: true}, "%j", &mqttkeep.Message{Topic: "j/b", Payload: []byte{0, 1, 0xff}},
			`{"tst":"2026-12-01T19:08:11.311107Z+0000","topic":"j/b","qos":0,"retain":0,"payloadlen":3,"payload":[0,1,255]}` + "\n", ""},
		{"%j subscription id", printer{eol: true}, "%j", &mqttkeep.Message{Topic: "s", Payload: []byte("x"), SubscriptionIDs: []int{7}},
			`{"tst":"2026-12-01T19:08:11.311107Z+0000","topic":"s","qos":0,"retain":0,"payloadlen":1,"properties":{"subscription-identifier":7},"payload":"x"}` + "\n", ""},
		{"%J", printer{eol: true}, "%J", &mqttkeep.Message{Topic: "j/c", Payload: []byte(`{"a": [1, 2.50, 1e3, "x\u00e9"], "b": {}}`), CorrelationData: []byte("abc")},
			`{"tst":"2026-12-01T19:08:11.311107Z+0000","topic":"j/c","qos":0,"retain":0,"payloadlen":41,"properties":{"correlation-data":"abc"},"payload":{"a":[1,2.5,1000,"xé"],"b":{}}}` + "\n", ""},
		{"%J not JSON", printer{eol: true}, "<%J>", hello, "<>\n", "message payload is not valid JSON on topic j/a"},
		{"--pretty", printer{eol: true, pretty: true}, "%j", &mqttkeep.Message{Topic: "j/a", Payload: []byte("héllo"),
			UserProperties: []mqttkeep.UserProperty{{Key: "k", Value: "v"}, {Key: "k", Value: "v2"}}},
			"{\n\t\"tst\":\t\"2026-12-01T19:08:11.311107Z+0000\",\n\t\"topic\":\t\"j/a\",\n\t\"qos\":\t0,\n\t\"retain\":\t0,\n\t\"payloadlen\":\t6,\n" +
				"\t\"properties\":\t{\n\t\t\"user-properties\":\t{\n\t\t\t\"k\":\t\"v\",\n\t\t\t\"k\":\t\"v2\"\n\t\t}\n\t},\n\t\"payload\":\t\"héllo\"\n}\n", ""},
		{"--pretty array", printer{pretty: true}, "%J", &mqttkeep.Message{Topic: "t", Payload: []byte(`[1,[2,3]]`)},
			"{\n\t\"tst\":\t\"2026-12-01T19:08:11.311107Z+0000\",\n\t\"topic\":\t\"t\",\n\t\"qos\":\t0,\n\t\"retain\":\t0,\n\t\"payloadlen\":\t9,\n\t\"payload\":\t[1, [2, 3]]\n}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if tc.format != "" {
				toks, err := parseFormat(tc.format)
				require.NoError(t, err)
				p.format = toks
			}
			got, err := p.line(tc.m, fmtTime)
			if tc.wantErr != "" {
				assert.EqualError(t, err, tc.wantErr)
			} else {
				assert.NoError(t, err)
			}
			assert.Equal(t, tc.want, string(got))
		})
	}
}

func TestFormatErrors(t *testing.T) {
	t.Parallel()
	for f, want := range map[string]string{
		"%":         "incomplete % sequence",
		"%-05":      "incomplete % sequence",
		"%Z":        "invalid format specifier %Z",
		"@":         "incomplete @ sequence",
		`\`:         `incomplete \ escape`,
		`\x`:        `invalid escape \x`,
		"%9999999t": "above 65535",
	} {
		_, err := parseFormat(f)
		assert.ErrorContains(t, err, want, "-F %q", f)
	}
}
