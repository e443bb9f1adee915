package mqttkeep

import (
	"strings"
	"testing"
)

// Seeds live in testdata/fuzz/<FuzzName>/ as well as in f.Add below; go
// test runs them all. To fuzz longer:
//
//	go test -run '^$' -fuzz FuzzConnRead -fuzztime 5m .

func FuzzParseServerURL(f *testing.F) {
	for _, s := range []string{
		"mqtt://127.0.0.1:1883", "tcp://h", "mqtts://h:8883", "ssl://h", "tls://h",
		"ws://h/mqtt", "wss://h:443/mqtt", "MQTT://H", "mqtt://[::1]:1883", "mqtt://u:pw@h",
		"gopher://h", "h:1883", "mqtt://:1", "mqtt://[::1", "", "://", "mqtt://h:99999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := parseServerURL(raw)
		// Whatever precedes the last "@" may be a password: neither the
		// error nor redactURL may repeat it.
		if at := strings.LastIndex(raw, "@"); at >= 0 {
			secret := raw[:at]
			if _, rest, ok := strings.Cut(secret, "://"); ok {
				secret = rest
			}
			if len(secret) > 3 {
				if strings.Contains(redactURL(raw), secret) {
					t.Fatalf("redactURL(%q) repeats %q", raw, secret)
				}
				if err != nil && strings.Contains(strings.ReplaceAll(err.Error(), schemeList, ""), secret) {
					t.Fatalf("error %q repeats %q", err, secret)
				}
			}
		}
		if err != nil {
			return
		}
		if _, ok := schemes[u.Scheme]; !ok {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		if u.Hostname() == "" || u.Port() == "" || u.User != nil {
			t.Fatalf("accepted %q as %#v", raw, u)
		}
	})
}

func FuzzTopic(f *testing.F) {
	for _, s := range []string{"a/b", "a/+/c", "#", "a/#", "$SYS/x", "$share/g/a/#", "a/#/b", "a+", "", "\x00", "\xff", "/", "//", "+/+"} {
		f.Add(s, "a/b")
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		filterErr := validateFilter(filter)
		topicErr := validateTopicName(topic)
		if topicErr == nil && !strings.HasPrefix(topic, "$share/") {
			if err := validateFilter(topic); err != nil {
				t.Fatalf("topic name %q is not a valid filter: %v", topic, err)
			}
			if !matchTopic(topic, topic) {
				t.Fatalf("topic %q does not match itself as a filter", topic)
			}
		}
		if filterErr == nil && topicErr == nil {
			_ = matchTopic(filter, topic) // must not panic
		}
		if filterErr == nil && strings.Contains(filter, "#") && !strings.HasSuffix(filter, "#") {
			t.Fatalf("accepted filter %q with # not last", filter)
		}
	})
}
