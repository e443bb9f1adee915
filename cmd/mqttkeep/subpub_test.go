package main

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
	sub := startSub(t, "-L", b.URL(), "-t", "test/order", "-q", "1", "-C", "30", "-v")

	// One message with -m, then 2..30 from stdin.
	code, _, stderr := runSync(t, nil, "pub", "-L", b.URL(), "-t", "test/order", "-q", "1", "-m", "1")
	require.Equal(t, exitOK, code, stderr)
	// mochi sends the PUBACK before it forwards the message, and order
	// holds only within one connection: let 1 arrive before the next pub.
	eventually(t, 10*time.Second, "message 1 at the sub", func() bool { return len(sub.stdout.lines()) > 0 })
	stdin, write, closeIn := stdinPipe(t)
	pub := start(t, stdin, "pub", "-L", b.URL(), "-t", "test/order", "-q", "1", "-l")
	write(numbered(2, 30)...)
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
	sub := startSub(t, "-L", b.URL(), "-t", topic, "-q", "1", "-i", "restart-sub", "-v")

	stdin, write, closeIn := stdinPipe(t)
	pub := start(t, stdin, "pub", "-L", proxy.URL(), "-t", topic, "-q", "1", "-l", "-i", "restart-pub", "--timeout", "30s")
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

// pub gives up with status 1 when the message cannot be delivered within
// --timeout.
func TestPubTimeout(t *testing.T) {
	t.Parallel()
	began := time.Now()
	code, stdout, stderr := runSync(t, nil, "pub", "-L", "mqtt://127.0.0.1:1", "-t", "a", "-m", "x", "-q", "1", "--timeout", "500ms")
	assert.Equal(t, exitFail, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "--timeout 500ms; last attempt: ")
	assert.Contains(t, stderr, "connection refused")
	// Gives up after the 500 ms timeout; 5 s leaves room for a loaded
	// machine and is still far below "never".
	assert.Less(t, time.Since(began), 5*time.Second)
}

// A refusal that retrying cannot fix ends sub and pub with the CONNACK
// reason code as exit status (mosquitto's), on one line that does not
// repeat the password.
func TestBadCredentials(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	b.Refuse(0x86)
	for _, args := range [][]string{
		{"sub", "-L", b.URL(), "-t", "a", "-u", "bob", "-P", "hunter2-secret"},
		{"pub", "-L", b.URL(), "-t", "a", "-m", "x", "-u", "bob", "-P", "hunter2-secret"},
		{"pub", "-L", b.URL(), "-t", "a", "-l", "-u", "bob", "-P", "hunter2-secret", "--timeout", "10s"},
		{"pub", "-L", "mqtt://bob:hunter2-secret@" + b.Addr(), "-t", "a", "-m", "x", "-d"},
	} {
		code, stdout, stderr := runSync(t, strings.NewReader("x\n"), args...)
		assert.Equal(t, 0x86, code, "%v: %s", args[0], stderr)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "CONNACK 0x86 bad user name or password")
		assert.NotContains(t, stderr, "hunter2")
		if !slices.Contains(args, "-d") {
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		}
	}
}

// Without --timeout, pub gives up at once when the port refuses, as
// mosquitto_pub does, on one line.
func TestPubFailsFast(t *testing.T) {
	t.Parallel()
	began := time.Now()
	code, stdout, stderr := runSync(t, nil, "pub", "-h", "127.0.0.1", "-p", "1", "-t", "a", "-m", "x")
	took := time.Since(began)
	assert.Equal(t, exitFail, code)
	assert.Empty(t, stdout)
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
	assert.Contains(t, stderr, "cannot connect: ")
	assert.Contains(t, stderr, "connection refused")
	t.Logf("failed after %v", took)
	// Far below the first retry's backoff (the library retries a refused
	// port after up to 900 ms): the first attempt's failure ends it.
	assert.Less(t, took, 2*time.Second)
}

// Ctrl-C on a sub waiting for a broker that is not there: clean exit 0.
func TestSubInterruptedWhileConnecting(t *testing.T) {
	t.Parallel()
	sub := start(t, nil, "sub", "-L", "mqtt://bob:hunter2-secret@127.0.0.1:1", "-t", "a")
	eventually(t, 5*time.Second, "a reconnect attempt", func() bool {
		return strings.Contains(sub.stderr.String(), "reconnecting in ")
	})
	// Every reconnect line says why, without the password.
	assert.Regexp(t, `reconnecting in \d+ms \(attempt \d+\): dial mqtt://127\.0\.0\.1:1: .*connection refused`, sub.stderr.String())
	assert.NotContains(t, sub.stderr.String(), "hunter2")
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
	sub := startSub(t, "-p", strings.Split(addr, ":")[1], "-h", "127.0.0.1", "-t", "hello", "-C", "1", "-i", "the-sub", "-v")
	code, _, stderr := runSync(t, nil, "pub", "-L", "mqtt://"+addr, "-t", "hello", "-m", "world", "-q", "1", "-i", "the-pub", "-u", "bob", "-P", "hunter2-secret")
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
	sub := startSub(t, "-L", "mqtt://"+addr, "-t", "$SYS/broker/uptime", "-C", "3")
	require.Equal(t, exitOK, sub.wait(t, 20*time.Second))
	assert.Len(t, sub.stdout.lines(), 3)
}
