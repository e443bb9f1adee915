package mqttkeep

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
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
		if err != nil {
			if strings.Contains(raw, "@") && strings.Contains(raw, "://") {
				_, rest, _ := strings.Cut(raw, "://")
				if userinfo, _, ok := strings.Cut(rest, "@"); ok && len(userinfo) > 3 && !strings.ContainsAny(userinfo, "/?#") &&
					strings.Contains(err.Error(), userinfo) {
					t.Fatalf("error %q repeats the user information %q", err, userinfo)
				}
			}
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

// readerConn is a net.Conn whose reads come from a reader.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c readerConn) Close() error                     { return nil }
func (c readerConn) SetWriteDeadline(time.Time) error { return nil }

// The read path fed arbitrary bytes: paho never sees a packet larger than
// the limit (so it never allocates more), and nothing panics.
func FuzzConnRead(f *testing.F) {
	pub := packets.NewControlPacket(packets.PUBLISH)
	pub.Content.(*packets.Publish).Topic = "a/b"
	pub.Content.(*packets.Publish).Payload = []byte("hello")
	var seed bytes.Buffer
	_, _ = pub.WriteTo(&seed)
	f.Add(seed.Bytes())
	f.Add([]byte{0xD0, 0x00, 0xD0, 0x00})             // two PINGRESPs
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F})       // a 256 MiB PUBLISH header
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}) // a 5-byte remaining length
	f.Add([]byte{0x00})
	const limit = 4 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newConn(readerConn{r: bytes.NewReader(data)}, &counters{}, limit)
		for range 1000 {
			before := c.stats.bytesIn.Load()
			cp, err := packets.ReadPacket(c)
			if err != nil {
				return
			}
			if got := c.stats.bytesIn.Load() - before; cp.Type == packets.PUBLISH && got > limit+readBufferSize {
				t.Fatalf("read %d bytes for one packet, limit %d", got, limit)
			}
		}
	})
}
