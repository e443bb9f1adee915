package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/internal/mosquitto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests run mosquitto_sub and mosquitto_pub beside "mqttkeep sub"
// and "mqttkeep pub" on a Mosquitto broker: the same flags must give the
// same output and the same exit status. They skip without Mosquitto
// (fail with MQTTKEEP_REQUIRE_MOSQUITTO=1).

// mosquittoClient returns the path of mosquitto_pub or mosquitto_sub,
// which come with the broker (package mosquitto-clients).
func mosquittoClient(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join(filepath.Dir(mosquitto.Binary()), "..", "bin", name)
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("%s not found next to mosquitto: install mosquitto-clients", name)
	}
	return p
}

// mosqProc is a running mosquitto_sub or mosquitto_pub.
type mosqProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	err            error
}

// startMosq starts a Mosquitto client speaking MQTT v5 to b.
func startMosq(t *testing.T, b *mosquitto.Broker, stdin io.Reader, name string, args ...string) *mosqProc {
	t.Helper()
	host, port, _ := strings.Cut(b.Addr(), ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, mosquittoClient(t, name), append([]string{"-V", "mqttv5", "-h", host, "-p", port}, args...)...)
	p := &mosqProc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, p.stdout, p.stderr
	require.NoError(t, cmd.Start())
	go func() {
		defer close(p.done)
		p.err = cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// wait returns the exit status.
func (p *mosqProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%v still running; stderr: %s", p.cmd.Args, p.stderr)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, p.err)
	return 0
}

// runMosq runs a Mosquitto client to its end: status, stdout, stderr.
func runMosq(t *testing.T, b *mosquitto.Broker, stdin io.Reader, name string, args ...string) (int, string, string) {
	t.Helper()
	p := startMosq(t, b, stdin, name, args...)
	code := p.wait(t)
	return code, p.stdout.String(), p.stderr.String()
}

// subscribed waits until the broker logged n SUBSCRIBEs in all.
func subscribed(t *testing.T, b *mosquitto.Broker, n int) {
	t.Helper()
	_, ok := b.WaitLog("Received SUBSCRIBE", n, 10*time.Second)
	require.True(t, ok, "only %d SUBSCRIBEs", b.Count("Received SUBSCRIBE"))
}

// The same -v / -N / -F flags print the same lines in mosquitto_sub and
// mqttkeep sub, for messages from mosquitto_pub and mqttkeep pub alike,
// with and without properties.
func TestMosquittoSameOutput(t *testing.T) {
	t.Parallel()
	b := mosquitto.Start(t)
	formats := [][]string{
		{}, {"-v"}, {"-v", "-N"},
		{"-F", `%t|%p|%q|%r|%l|%x|%X|%C|%R|%P|%F|%D|%10t|%-6l|%05l|%.3p|%A`},
		{"-F", `\t%t\n%%@@\\`},
	}
	type pair struct {
		ours   *proc
		theirs *mosqProc
	}
	var pairs []pair
	for _, f := range formats {
		common := append([]string{"-t", "same/#", "-q", "1", "-C", "6", "-T", "same/skip"}, f...)
		pairs = append(pairs, pair{
			ours:   start(t, nil, append([]string{"sub", "-L", b.URL()}, common...)...),
			theirs: startMosq(t, b, nil, "mosquitto_sub", common...),
		})
	}
	subscribed(t, b, 2*len(formats))
	props := []string{"-D", "publish", "content-type", "text/plain", "-D", "publish", "response-topic", "same/reply",
		"-D", "publish", "correlation-data", "corr", "-D", "publish", "payload-format-indicator", "1",
		"-D", "publish", "user-property", "k", "v", "-D", "publish", "user-property", "k2", "v2"}
	for i, msg := range [][]string{
		{"-t", "same/a", "-m", "hello world"},
		{"-t", "same/skip", "-m", "filtered out"},
		{"-t", "same/b", "-n"},
		append([]string{"-t", "same/c", "-m", "with properties"}, props...),
	} {
		args := append([]string{"-q", "1"}, msg...)
		code, _, stderr := runMosq(t, b, nil, "mosquitto_pub", args...)
		require.Equal(t, 0, code, "mosquitto_pub %v: %s", args, stderr)
		if i == 1 {
			continue // one filtered message is enough
		}
		code, _, stderr = runSync(t, nil, append([]string{"pub", "-L", b.URL()}, args...)...)
		require.Equal(t, exitOK, code, "mqttkeep pub %v: %s", args, stderr)
	}
	for i, p := range pairs {
		require.Equal(t, 0, p.theirs.wait(t), "mosquitto_sub %v: %s", formats[i], p.theirs.stderr)
		require.Equal(t, exitOK, p.ours.wait(t, 10*time.Second), "mqttkeep sub %v: %s", formats[i], p.ours.stderr)
		assert.Equal(t, p.theirs.stdout.String(), p.ours.stdout.String(), "output of %v", formats[i])
	}
}

// %j: the same JSON object, but for the time, the value of "mid" (each
// subscriber's connection has packet identifiers of its own; both must
// have one) and our subscription identifier (mosquitto_sub asks for none).
func TestMosquittoSameJSON(t *testing.T) {
	t.Parallel()
	b := mosquitto.Start(t)
	args := []string{"-t", "js/#", "-q", "1", "-C", "3", "-F", "%j"}
	ours := start(t, nil, append([]string{"sub", "-L", b.URL()}, args...)...)
	theirs := startMosq(t, b, nil, "mosquitto_sub", args...)
	subscribed(t, b, 2)
	for _, m := range [][]string{
		{"-t", "js/a", "-m", `text "quoted" \ back`},
		{"-t", "js/b", "-n", "-r"},
		{"-t", "js/c", "-m", "p", "-D", "publish", "content-type", "a/b", "-D", "publish", "user-property", "k", "v",
			"-D", "publish", "correlation-data", "c", "-D", "publish", "response-topic", "r"},
	} {
		code, _, stderr := runMosq(t, b, nil, "mosquitto_pub", append([]string{"-q", "1"}, m...)...)
		require.Equal(t, 0, code, stderr)
	}
	require.Equal(t, 0, theirs.wait(t), theirs.stderr.String())
	require.Equal(t, exitOK, ours.wait(t, 10*time.Second), ours.stderr.String())
	norm := func(line string, drop ...string) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		delete(m, "tst")
		for _, k := range drop {
			delete(m, k)
		}
		if p, ok := m["properties"].(map[string]any); ok {
			delete(p, "subscription-identifier")
			if len(p) == 0 {
				delete(m, "properties")
			}
		}
		return m
	}
	tl, ol := theirs.stdout.lines(), ours.stdout.lines()
	require.Len(t, ol, len(tl))
	for i := range tl {
		theirs, ours := norm(tl[i]), norm(ol[i])
		assert.Contains(t, theirs, "mid")
		assert.Contains(t, ours, "mid")
		delete(theirs, "mid")
		delete(ours, "mid")
		assert.Equal(t, theirs, ours)
	}
}

// -l, -s, -f, -n and --repeat publish the same payloads with
// mosquitto_pub and mqttkeep pub: an empty line is an empty message, a
// "\r" stays, a last line without "\n" is sent.
func TestMosquittoSamePayloads(t *testing.T) {
	t.Parallel()
	b := mosquitto.Start(t)
	file := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(file, []byte("file\ncontent"), 0o600))
	const stdin = "a\n\nb\r\nc"
	watch := startMosq(t, b, nil, "mosquitto_sub", "-t", "pl/#", "-q", "1", "-F", `%t [%p]`, "-C", "18")
	subscribed(t, b, 1)
	for _, args := range [][]string{
		{"-l"}, {"-s"}, {"-f", file}, {"-n"}, {"-m", "rep", "--repeat", "2"},
	} {
		code, _, stderr := runMosq(t, b, strings.NewReader(stdin), "mosquitto_pub", append([]string{"-t", "pl/theirs", "-q", "1"}, args...)...)
		require.Equal(t, 0, code, "%v: %s", args, stderr)
		code, _, stderr = runSync(t, strings.NewReader(stdin), append([]string{"pub", "-L", b.URL(), "-t", "pl/ours", "-q", "1"}, args...)...)
		require.Equal(t, exitOK, code, "%v: %s", args, stderr)
	}
	require.Equal(t, 0, watch.wait(t), watch.stderr.String())
	var theirs, ours []string
	for _, l := range strings.SplitAfter(watch.stdout.String(), "]\n") {
		switch {
		case strings.HasPrefix(l, "pl/theirs "):
			theirs = append(theirs, strings.TrimPrefix(l, "pl/theirs "))
		case strings.HasPrefix(l, "pl/ours "):
			ours = append(ours, strings.TrimPrefix(l, "pl/ours "))
		}
	}
	assert.Len(t, theirs, 9)
	assert.Equal(t, theirs, ours)
}

// The exit statuses that apply: a refused CONNECT gives its reason code,
// -W 27, -E and -C 0, a closed port 1.
func TestMosquittoSameExitStatus(t *testing.T) {
	t.Parallel()
	b := mosquitto.Start(t, mosquitto.WithPasswordFile("alice", "right"))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"mosquitto_sub", []string{"-t", "a", "-u", "alice", "-P", "wrong"}},
		{"mosquitto_pub", []string{"-t", "a", "-m", "x", "-u", "alice", "-P", "wrong"}},
		{"mosquitto_sub", []string{"-t", "a", "-u", "alice", "-P", "right", "-W", "1"}},
		{"mosquitto_sub", []string{"-t", "a", "-u", "alice", "-P", "right", "-E"}},
		{"mosquitto_sub", []string{"-t", "a", "-u", "alice", "-P", "right", "-E", "-c", "-i", "persist"}},
	} {
		want, _, stderr := runMosq(t, b, nil, tc.name, tc.args...)
		ours := strings.TrimPrefix(tc.name, "mosquitto_")
		got, _, ourErr := runSync(t, nil, append([]string{ours, "-L", b.URL()}, tc.args...)...)
		assert.Equal(t, want, got, "%s %v: theirs: %s ours: %s", tc.name, tc.args, stderr, ourErr)
	}
	code, _, _ := runSync(t, nil, "pub", "-L", "mqtt://127.0.0.1:1", "-t", "a", "-m", "x")
	theirs, _, _ := runMosq(t, b, nil, "mosquitto_pub", "-p", "1", "-t", "a", "-m", "x")
	assert.Equal(t, theirs, code, "closed port")
}

// --retained-only and -R on Mosquitto's retained messages.
func TestMosquittoSameRetained(t *testing.T) {
	t.Parallel()
	b := mosquitto.Start(t)
	for _, topic := range []string{"ret/a", "ret/b"} {
		code, _, stderr := runSync(t, nil, "pub", "-L", b.URL(), "-t", topic, "-m", "old "+topic, "-r", "-q", "1")
		require.Equal(t, exitOK, code, stderr)
	}
	for i, flags := range [][]string{{"--retained-only"}, {"-R", "-C", "1"}} {
		args := append([]string{"-t", "ret/#", "-v", "-q", "1"}, flags...)
		ours := start(t, nil, append([]string{"sub", "-L", b.URL()}, args...)...)
		theirs := startMosq(t, b, nil, "mosquitto_sub", args...)
		subscribed(t, b, 2*(i+1))
		eventually(t, 10*time.Second, "retained messages printed", func() bool {
			return flags[0] == "-R" || (len(ours.stdout.lines()) == 2 && len(theirs.stdout.lines()) == 2)
		})
		code, _, stderr := runMosq(t, b, nil, "mosquitto_pub", "-t", "ret/live", "-m", "new", "-q", "1")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, 0, theirs.wait(t))
		require.Equal(t, exitOK, ours.wait(t, 10*time.Second))
		assert.ElementsMatch(t, theirs.stdout.lines(), ours.stdout.lines(), "%v", flags)
	}
}

// Topic aliases (-D publish topic-alias) reach mosquitto_sub intact: the
// library numbers them within Mosquitto's Topic Alias Maximum (10).
func TestMosquittoTopicAlias(t *testing.T) {
	t.Parallel()
	b := mosquitto.Start(t)
	watch := startMosq(t, b, nil, "mosquitto_sub", "-t", "alias/#", "-q", "1", "-C", "3", "-v")
	subscribed(t, b, 1)
	code, _, stderr := runSync(t, nil, "pub", "-L", b.URL(), "-t", "alias/long/topic", "-m", "x", "-q", "1", "--repeat", "3",
		"-D", "publish", "topic-alias", "1")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, 0, watch.wait(t))
	assert.Equal(t, strings.Repeat("alias/long/topic x\n", 3), watch.stdout.String())
}
