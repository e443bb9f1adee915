package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startSub runs "mqttkeep sub" with args and waits until it subscribed to
// every -t it was given.
func startSub(t *testing.T, args ...string) *proc {
	t.Helper()
	p := start(t, nil, append([]string{"sub"}, args...)...)
	n := strings.Count(strings.Join(args, " "), "-t ")
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.stderr.String(), "subscribed to ") < n {
		select {
		case <-p.done:
			t.Fatalf("sub ended (status %d) before it subscribed; its stderr:\n%s", p.code, p.stderr)
		case <-time.After(10 * time.Millisecond): // polls the output: no event to wait for
		}
		if time.Now().After(deadline) {
			t.Fatalf("sub did not subscribe within 20 s; its stderr:\n%s", p.stderr)
		}
	}
	return p
}

// stdinPipe returns the stdin for "pub --stdin" and a function that writes
// lines to it without blocking the test; closing the reader at cleanup
// unblocks a writer whose pub has gone.
func stdinPipe(t *testing.T) (io.Reader, func(lines ...string), func()) {
	pr, pw := io.Pipe()
	queue := make(chan string, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for l := range queue {
			if _, err := io.WriteString(pw, l+"\n"); err != nil {
				return
			}
		}
		_ = pw.Close()
	}()
	var closed bool
	closeIn := func() {
		if !closed {
			closed = true
			close(queue)
		}
	}
	t.Cleanup(func() {
		closeIn()
		_ = pr.Close()
		<-done
	})
	return pr, func(lines ...string) {
		for _, l := range lines {
			queue <- l
		}
	}, closeIn
}

func numbered(from, to int) []string {
	var lines []string
	for i := from; i <= to; i++ {
		lines = append(lines, strconv.Itoa(i))
	}
	return lines
}

// received parses the "topic payload" lines of sub: the sequence numbers in
// the order they came, and how often each came.
func received(t *testing.T, sub *proc, topic string) ([]int, map[int]int) {
	t.Helper()
	var order []int
	count := make(map[int]int)
	for _, line := range sub.stdout.lines() {
		payload, ok := strings.CutPrefix(line, topic+" ")
		require.True(t, ok, "unexpected line %q", line)
		n, err := strconv.Atoi(payload)
		require.NoError(t, err)
		if count[n] == 0 {
			order = append(order, n)
		}
		count[n]++
	}
	return order, count
}

// Every message from two publishers arrives once, and the 29 lines of
// "pub --stdin" arrive in the order they were written. MQTT orders
// messages per publisher connection only: "pub -m 1" has a connection of
// its own, and mochi writes its PUBACK before forwarding the message
// (processPublish), so the second publisher may overtake it.
func TestPubSubInOrder(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	sub := startSub(t, "-s", b.URL(), "-t", "test/order", "-q", "1", "-C", "30")

	// One message with -m, then 2..30 from stdin.
	code, _, stderr := runSync(t, nil, "pub", "-s", b.URL(), "-t", "test/order", "-q", "1", "-m", "1")
	require.Equal(t, exitOK, code, stderr)
	// mochi sends the PUBACK before it forwards the message, and order
	// holds only within one connection: let 1 arrive before the next pub.
	eventually(t, 10*time.Second, "message 1 at the sub", func() bool { return len(sub.stdout.lines()) > 0 })
	stdin, write, closeIn := stdinPipe(t)
	pub := start(t, stdin, "pub", "-s", b.URL(), "-t", "test/order", "-q", "1", "--stdin")
	write(numbered(2, 15)...)
	write("", "16\r") // a blank line is skipped, "\r\n" is a line end
	write(numbered(17, 30)...)
	closeIn()
	require.Equal(t, exitOK, pub.wait(t, 20*time.Second), pub.stderr.String())

	require.Equal(t, exitOK, sub.wait(t, 10*time.Second), sub.stderr.String()) // -C 30
	lines := sub.stdout.lines()
	var fromM int
	var fromStdin []string
	for _, l := range lines {
		if l == "test/order 1" {
			fromM++
		} else {
			fromStdin = append(fromStdin, l)
		}
	}
	assert.Equal(t, 1, fromM, "the -m message, once; all lines: %q", lines)
	want := make([]string, 0, 29)
	for i := 2; i <= 30; i++ {
		want = append(want, fmt.Sprintf("test/order %d", i))
	}
	assert.Equal(t, want, fromStdin, "the --stdin lines, each once, in the order written; all lines: %q", lines)
	assert.Contains(t, sub.stderr.String(), "connected to "+b.URL())
}

// A broker restart in the middle of a "pub --stdin" stream of QoS 1 lines
// loses nothing at a "sub".
//
// The restarted broker has no subscriptions, so a message it acknowledges
// before sub has re-subscribed would be dropped for want of a subscriber:
// a broker property no client can help. pub therefore goes through a
// fault proxy that keeps it out (Refuse) until sub is back, while the
// lines written during the outage wait in pub.
func TestPubSubBrokerRestart(t *testing.T) {
	t.Parallel()
	const topic = "test/restart"
	b := mqttkeeptest.NewBroker(t)
	proxy := mqttkeeptest.NewProxy(t, b.Addr())
	sub := startSub(t, "-s", b.URL(), "-t", topic, "-q", "1", "-i", "restart-sub")

	stdin, write, closeIn := stdinPipe(t)
	pub := start(t, stdin, "pub", "-s", proxy.URL(), "-t", topic, "-q", "1", "--stdin", "-i", "restart-pub", "--timeout", "30s")
	have := func(n int) func() bool {
		return func() bool { _, count := received(t, sub, topic); return len(count) >= n }
	}

	write(numbered(1, 50)...)
	eventually(t, 10*time.Second, "lines 1..50 at sub", have(50))

	proxy.Refuse(true)
	b.Stop()
	write(numbered(51, 60)...) // read by pub while the broker is down
	// The scenario: the outage lasts 300 ms. Lines pub has not read by
	// then wait in the pipe; either way they must all arrive.
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, b.Restart())
	eventually(t, 10*time.Second, "sub to reconnect", func() bool {
		return strings.Contains(sub.stderr.String(), "reconnected to ")
	})
	assert.NotContains(t, sub.stderr.String(), "restoring subscriptions failed")
	proxy.Refuse(false)

	write(numbered(61, 100)...)
	closeIn()
	require.Equal(t, exitOK, pub.wait(t, 30*time.Second), "pub stderr:\n%s", pub.stderr)
	eventually(t, 10*time.Second, "lines 1..100 at sub", have(100))
	require.Equal(t, exitOK, sub.interrupt(t), sub.stderr.String())

	order, count := received(t, sub, topic)
	for i := 1; i <= 100; i++ {
		assert.Positive(t, count[i], "message %d lost", i)
	}
	assert.Equal(t, numbered(1, 100), func() []string {
		var s []string
		for _, n := range order {
			s = append(s, strconv.Itoa(n))
		}
		return s
	}(), "first arrivals out of order")
	assert.Contains(t, pub.stderr.String(), "connection lost")
	assert.Contains(t, sub.stderr.String(), "connection lost")
	t.Logf("sub stderr:\n%spub stderr:\n%s", sub.stderr, pub.stderr)
}

func TestSubJSON(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	url := b.URL()
	// A retained text message, published before sub subscribes. mochi
	// stores it, writes the PUBACK and only then fans the message out to
	// subscribers (processPublish), so pub may have exited before mochi is
	// done with it; a SUBSCRIBE processed in between would get the message
	// twice, retained and live. mochi reads a connection's packets one after
	// another: once it finished with pub's connection, it finished with the
	// PUBLISH.
	code, _, stderr := runSync(t, nil, "pub", "-s", url, "-i", "json-retainer", "-t", "test/json/text", "-q", "1", "-r", "-m", `héllo <"world">`)
	require.Equal(t, exitOK, code, stderr)
	eventually(t, 10*time.Second, "the broker to finish with pub", func() bool { return b.Disconnects("json-retainer") == 1 })
	sub := startSub(t, "-s", url, "-t", "test/json/#", "-t", "test/+/bin", "-q", "1", "--format", "json", "-d")

	code, _, stderr = runSync(t, nil, "pub", "-s", url, "-t", "test/json/bin", "-q", "1", "-m", "\xff\x00\x01")
	require.Equal(t, exitOK, code, stderr)

	// Properties, through the library.
	c, err := mqttkeep.New(mqttkeep.WithServer(url))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Connect(ctx))
	require.NoError(t, c.Publish(ctx, "test/json/props", []byte("{}"), mqttkeep.WithQoS(1),
		mqttkeep.WithContentType("application/json"), mqttkeep.WithUserProperty("k", "v"),
		mqttkeep.WithCorrelationData([]byte{1, 2}), mqttkeep.WithResponseTopic("test/reply"),
		mqttkeep.WithMessageExpiry(time.Hour), mqttkeep.WithPayloadUTF8()))
	require.NoError(t, c.Close(ctx))

	eventually(t, 10*time.Second, "three messages printed", func() bool {
		out := sub.stdout.String()
		return strings.Contains(out, `"test/json/text"`) && strings.Contains(out, `"test/json/bin"`) && strings.Contains(out, `"test/json/props"`)
	})
	require.Equal(t, exitOK, sub.interrupt(t), sub.stderr.String())
	// mochi sends a message matching both filters once (it merges a
	// client's matching subscriptions) and the command prints it once. QoS
	// 1 is at least once: a re-delivery after a reconnect (dup: true, not
	// expected here) may add a line.
	var lines []string
	for _, l := range sub.stdout.lines() {
		if !strings.Contains(l, `"dup":true`) {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 3, "the message matching both filters is printed once; all lines: %q", sub.stdout.lines())
	// Messages from different publishers may arrive in any order.
	msgs := make(map[string]jsonMessage)
	for _, l := range lines {
		var m jsonMessage
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		msgs[m.Topic] = m
		var raw map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &raw))
		assert.Contains(t, raw, "properties")
	}
	for _, topic := range []string{"test/json/text", "test/json/bin"} {
		m := msgs[topic]
		m.Properties.MessageExpiry = 0 // mochi gives every message one (its maximum, a day)
		msgs[topic] = m
	}
	assert.Equal(t, jsonMessage{Topic: "test/json/text", Payload: `héllo <"world">`, QoS: 1, Retain: true}, msgs["test/json/text"])
	assert.Equal(t, jsonMessage{Topic: "test/json/bin", Payload: base64.StdEncoding.EncodeToString([]byte("\xff\x00\x01")), PayloadBase64: true, QoS: 1}, msgs["test/json/bin"])
	require.Contains(t, msgs, "test/json/props")
	assert.Equal(t, "{}", msgs["test/json/props"].Payload)
	p := msgs["test/json/props"].Properties
	assert.Equal(t, "application/json", p.ContentType)
	assert.Equal(t, "test/reply", p.ResponseTopic)
	assert.Equal(t, []byte{1, 2}, p.CorrelationData)
	assert.True(t, p.PayloadUTF8)
	assert.InDelta(t, 3600, p.MessageExpiry, 2)
	assert.Equal(t, []jsonUserProp{{"k", "v"}}, p.UserProperties)
}

// pub gives up with status 1 when the message cannot be delivered within
// --timeout.
func TestPubTimeout(t *testing.T) {
	t.Parallel()
	began := time.Now()
	code, stdout, stderr := runSync(t, nil, "pub", "-s", "mqtt://127.0.0.1:1", "-t", "a", "-m", "x", "-q", "1", "--timeout", "500ms")
	assert.Equal(t, exitFail, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "--timeout 500ms")
	// Gives up after the 500 ms timeout; 5 s leaves room for a loaded
	// machine and is still far below "never".
	assert.Less(t, time.Since(began), 5*time.Second)
}

// A refusal that retrying cannot fix ends sub and pub with status 1 and a
// message that does not repeat the password.
func TestBadCredentials(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	b.Refuse(0x86)
	for _, args := range [][]string{
		{"sub", "-s", b.URL(), "-t", "a", "-u", "bob", "-P", "hunter2-secret"},
		{"pub", "-s", b.URL(), "-t", "a", "-m", "x", "-u", "bob", "-P", "hunter2-secret"},
		{"pub", "-s", b.URL(), "-t", "a", "--stdin", "-u", "bob", "-P", "hunter2-secret", "-d"},
	} {
		code, stdout, stderr := runSync(t, strings.NewReader("x\n"), args...)
		assert.Equal(t, exitFail, code, "%v: %s", args[0], stderr)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "bad user name or password")
		assert.NotContains(t, stderr, "hunter2")
	}
}

// Ctrl-C on a sub waiting for a broker that is not there: clean exit 0.
func TestSubInterruptedWhileConnecting(t *testing.T) {
	t.Parallel()
	sub := start(t, nil, "sub", "-s", "mqtt://127.0.0.1:1", "-t", "a")
	eventually(t, 5*time.Second, "a reconnect attempt", func() bool {
		return strings.Contains(sub.stderr.String(), "reconnecting in ")
	})
	assert.Equal(t, exitOK, sub.interrupt(t))
}

func TestBroker(t *testing.T) {
	t.Parallel()
	broker := start(t, nil, "broker", "-l", "127.0.0.1:0")
	var addr string
	eventually(t, 5*time.Second, "the broker to listen", func() bool {
		m := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(broker.stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	// A connection that never sends CONNECT must not hold up Ctrl-C
	// (mochi's own Close waits for it forever).
	silent, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer silent.Close()
	sub := startSub(t, "-p", strings.Split(addr, ":")[1], "-h", "127.0.0.1", "-t", "hello", "-C", "1", "-i", "the-sub")
	code, _, stderr := runSync(t, nil, "pub", "-s", "mqtt://"+addr, "-t", "hello", "-m", "world", "-q", "1", "-i", "the-pub", "-u", "bob", "-P", "hunter2-secret")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second))
	assert.Equal(t, []string{"hello world"}, sub.stdout.lines())

	assert.Equal(t, exitOK, broker.interrupt(t))
	logs := broker.stderr.String()
	assert.Contains(t, logs, `client "the-sub" connected from 127.0.0.1:`)
	assert.Contains(t, logs, `client "the-pub" disconnected`)
	assert.NotContains(t, logs, "hunter2")

	// The address is now free again; a busy one is an error (status 1).
	other := start(t, nil, "broker", "-l", "127.0.0.1:0")
	eventually(t, 5*time.Second, "the second broker to listen", func() bool {
		return strings.Contains(other.stderr.String(), "listening on")
	})
	m := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(other.stderr.String())
	require.NotNil(t, m)
	code, _, stderr = runSync(t, nil, "broker", "-l", m[1])
	assert.Equal(t, exitFail, code)
	assert.Contains(t, stderr, "address already in use")
}

// The broker keeps $SYS/# current, every second (mochi's default), for
// "mqttkeep sub -t '$SYS/#'".
func TestBrokerSysTopics(t *testing.T) {
	t.Parallel()
	broker := start(t, nil, "broker", "-l", "127.0.0.1:0")
	var addr string
	eventually(t, 5*time.Second, "the broker to listen", func() bool {
		m := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(broker.stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	// The retained value, then two updates.
	sub := startSub(t, "-s", "mqtt://"+addr, "-t", "$SYS/broker/uptime", "-C", "3")
	require.Equal(t, exitOK, sub.wait(t, 20*time.Second))
	assert.Len(t, sub.stdout.lines(), 3)
}
