package main

import (
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ping -c sends COUNT PINGREQs and prints ping(8)'s summary; exit 0.
func TestPing(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	code, stdout, stderr := runSync(t, nil, "ping", "-L", b.URL(), "-c", "4", "-i", "0.05", "--id", "pinger", "-k", "0")
	require.Equal(t, pingAnswered, code, stderr)
	assert.Contains(t, stdout, "PING "+b.URL()+": a PINGREQ every 50ms")
	assert.Contains(t, stdout, "keep alive 0 (asked): automatic pings off")
	for i := 1; i <= 4; i++ {
		assert.Regexp(t, `PINGRESP from `+regexp.QuoteMeta(b.URL())+`: seq=`+strconv.Itoa(i)+` time=\d+\.\d{3} ms`, stdout)
	}
	assert.Contains(t, stdout, "4 PINGREQs sent, 4 PINGRESPs received, 0% loss")
	m := regexp.MustCompile(`rtt min/avg/max/mdev = (\d+\.\d+)/(\d+\.\d+)/(\d+\.\d+)/(\d+\.\d+) ms`).FindStringSubmatch(stdout)
	require.NotNil(t, m, stdout)
	lo, _ := strconv.ParseFloat(m[1], 64)
	avg, _ := strconv.ParseFloat(m[2], 64)
	hi, _ := strconv.ParseFloat(m[3], 64)
	assert.True(t, lo <= avg && avg <= hi, "min <= avg <= max: %s", m[0])
	assert.Equal(t, 4, b.Packets("pinger", 12), "4 PINGREQs at the broker, no automatic one")

	// -q: the first line and the summary only; keep alive on says so.
	code, stdout, _ = runSync(t, nil, "ping", "-L", b.URL(), "-c", "2", "-i", "0.05", "-q")
	require.Equal(t, pingAnswered, code)
	assert.Contains(t, stdout, "automatic pings on")
	assert.NotContains(t, stdout, "PINGRESP from")
	assert.Contains(t, stdout, "2 PINGREQs sent, 2 PINGRESPs received, 0% loss")
}

// No broker: every PINGREQ is lost, exit 1 (ping(8): no answer at all).
func TestPingNoAnswer(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runSync(t, nil, "ping", "-L", "mqtt://127.0.0.1:1", "-c", "2", "-i", "0.05", "-W", "0.2")
	assert.Equal(t, pingNoAnswer, code)
	assert.Contains(t, stdout, "not connected within -W 200ms")
	assert.Contains(t, stdout, "no PINGRESP for seq=1: not connected")
	assert.Contains(t, stdout, "2 PINGREQs sent, 0 PINGRESPs received, 100% loss")
	assert.NotContains(t, stdout, "rtt min")
	// A broker that refuses for good is an error: 2.
	b := mqttkeeptest.NewBroker(t)
	b.Refuse(0x87)
	code, stdout, _ = runSync(t, nil, "ping", "-L", b.URL(), "-c", "2")
	assert.Equal(t, pingError, code)
	assert.Contains(t, stdout, "CONNACK 0x87 not authorized")
}

// A dead link: the PINGREQs time out (-W), the library notices and
// reconnects, ping reports it with the cause and goes on; -w ends it.
func TestPingAcrossReconnect(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	proxy := mqttkeeptest.NewProxy(t, b.Addr())
	p := start(t, nil, "ping", "-L", proxy.URL(), "-i", "0.1", "-W", "0.3", "-k", "1")
	eventually(t, 10*time.Second, "answers", func() bool { return strings.Count(p.stdout.String(), "PINGRESP from") >= 2 })
	proxy.Blackhole()
	eventually(t, 10*time.Second, "a timed-out PINGREQ", func() bool { return strings.Contains(p.stdout.String(), "none within -W 300ms") })
	eventually(t, 10*time.Second, "the loss reported", func() bool { return strings.Contains(p.stdout.String(), "connection lost") })
	proxy.Pass()
	eventually(t, 10*time.Second, "the reconnect", func() bool { return strings.Contains(p.stdout.String(), "reconnected to ") })
	n := strings.Count(p.stdout.String(), "PINGRESP from")
	eventually(t, 10*time.Second, "answers again", func() bool { return strings.Count(p.stdout.String(), "PINGRESP from") > n })
	require.Equal(t, pingAnswered, p.interrupt(t))
	out := p.stdout.String()
	assert.Regexp(t, `mqttkeep ping: connection lost after \d+ms: ping timeout`, out)
	m := regexp.MustCompile(`(\d+) PINGREQs? sent, (\d+) PINGRESPs? received, (\d+)% loss`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	sent, _ := strconv.Atoi(m[1])
	got, _ := strconv.Atoi(m[2])
	assert.Less(t, got, sent, "some were lost")
	assert.Positive(t, got)
}

// -w bounds the run; with -c too, fewer answers than -c is status 1.
func TestPingDeadline(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	began := time.Now()
	code, stdout, _ := runSync(t, nil, "ping", "-L", b.URL(), "-i", "0.05", "-w", "0.3")
	assert.Equal(t, pingAnswered, code)
	assert.GreaterOrEqual(t, time.Since(began), 300*time.Millisecond)
	// The PINGREQ in flight when the deadline comes counts as lost, as
	// with ping(8).
	m := regexp.MustCompile(`(\d+) PINGREQs? sent, (\d+) PINGRESPs? received`).FindStringSubmatch(stdout)
	require.NotNil(t, m, stdout)
	sent, _ := strconv.Atoi(m[1])
	got, _ := strconv.Atoi(m[2])
	assert.GreaterOrEqual(t, got, sent-1, stdout)
	assert.GreaterOrEqual(t, sent, 3, "one at once, then one per 50 ms for 300 ms")
	code, _, _ = runSync(t, nil, "ping", "-L", b.URL(), "-i", "1", "-w", "0.3", "-c", "5")
	assert.Equal(t, pingNoAnswer, code, "1 of 5 answered before the deadline")
}

// silentListener accepts TCP connections on 127.0.0.1 and reads what
// they send without ever answering: a port that is open but speaks no
// MQTT.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "mqtt://" + ln.Addr().String()
}

// ping -c gives up after -c attempts, each bounded by -W, against a
// closed port and against a port that accepts TCP and never answers
// MQTT: exit 1, as ping(8) with no reply, and every attempt reported.
func TestPingGivesUpOnUnreachableBroker(t *testing.T) {
	t.Parallel()
	for name, url := range map[string]string{
		"closed port":   "mqtt://127.0.0.1:1",
		"silent broker": silentListener(t),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			code, stdout, _ := runSync(t, nil, "ping", "-L", url, "-c", "3", "-i", "0.1", "-W", "0.5")
			took := time.Since(began)
			assert.Equal(t, pingNoAnswer, code, stdout)
			for seq := 1; seq <= 3; seq++ {
				assert.Contains(t, stdout, "no PINGRESP for seq="+strconv.Itoa(seq)+": not connected within -W 500ms")
			}
			assert.Contains(t, stdout, "3 PINGREQs sent, 0 PINGRESPs received, 100% loss")
			assert.NotContains(t, stdout, "rtt min")
			// 2 × 100 ms + 500 ms; far below the library's own 10 s connect
			// timeout, which the attempts must not wait for.
			t.Logf("ended after %v", took)
			assert.Less(t, took, 8*time.Second)
		})
	}
}

// -w bounds the whole run, the wait for the first connection included
// (it ran for -W, 10 s by default, before the deadline started).
func TestPingDeadlineBoundsConnecting(t *testing.T) {
	t.Parallel()
	began := time.Now()
	code, stdout, _ := runSync(t, nil, "ping", "-L", "mqtt://127.0.0.1:1", "-w", "0.5", "-i", "0.2")
	took := time.Since(began)
	assert.Equal(t, pingNoAnswer, code)
	assert.Regexp(t, `PING mqtt://127\.0\.0\.1:1: a PINGREQ every 200ms`, stdout)
	assert.Regexp(t, `\d+ PINGREQs? sent, 0 PINGRESPs received`, stdout)
	t.Logf("ended after %v", took)
	assert.Less(t, took, 8*time.Second, "well before -W's 10 s")
}

// With -c and -w, as ping(8), ping goes on until -c PINGREQs were
// answered: lost ones do not count.
func TestPingCountWithDeadlineWaitsForAnswers(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	proxy := mqttkeeptest.NewProxy(t, b.Addr())
	proxy.Refuse(true)
	p := start(t, nil, "ping", "-L", proxy.URL(), "-c", "2", "-w", "20", "-i", "0.1", "-W", "0.2")
	eventually(t, 10*time.Second, "a third attempt lost", func() bool {
		return strings.Contains(p.stdout.String(), "no PINGRESP for seq=3: ")
	})
	proxy.Refuse(false)
	assert.Equal(t, pingAnswered, p.wait(t, 15*time.Second), p.stdout.String())
	out := p.stdout.String()
	assert.Equal(t, 2, strings.Count(out, "PINGRESP from "), out)
	assert.Regexp(t, `\d+ PINGREQs sent, 2 PINGRESPs received`, out)
}

// Ctrl-C while the first connection is still being waited for: the
// summary all the same, exit 1.
func TestPingInterruptedBeforeConnecting(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "ping", "-L", "mqtt://127.0.0.1:1", "-W", "20", "-i", "60")
	eventually(t, 10*time.Second, "a failed attempt", func() bool {
		return strings.Contains(p.stdout.String(), "reconnecting in ")
	})
	assert.Equal(t, pingNoAnswer, p.interrupt(t))
	out := p.stdout.String()
	assert.Contains(t, out, "PING mqtt://127.0.0.1:1: ")
	assert.Contains(t, out, "--- mqtt://127.0.0.1:1 MQTT ping statistics ---\n1 PINGREQ sent, 0 PINGRESPs received, 100% loss")
}

// A certificate that does not verify cannot get better by retrying: the
// library stops, and ping says why and exits 2.
func TestPingCertificateNotVerified(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithTLS(pki.serverConfig(false)))
	for range 3 { // the first result and the stop race; each must give 2
		code, stdout, _ := runSync(t, nil, "ping", "-L", b.URL(), "-c", "1", "-W", "5")
		assert.Equal(t, pingError, code, stdout)
		assert.Contains(t, stdout, "mqttkeep ping: giving up: ")
		assert.Contains(t, stdout, "certificate signed by unknown authority")
	}
}
