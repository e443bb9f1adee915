package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each message source of mosquitto_pub: -m, -n, -f, -s, -l (an empty line
// is an empty message, "\r" is kept, a last line without "\n" is sent),
// and --repeat.
func TestPubMessageSources(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	file := filepath.Join(t.TempDir(), "msg")
	require.NoError(t, os.WriteFile(file, []byte("from\na file\n"), 0o600))
	sub := startSub(t, "-L", b.URL(), "-t", "src/#", "-q", "2", "-F", `%t [%p]`, "-C", "11")
	for _, tc := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"-t", "src/m", "-m", "dash m"}},
		{"", []string{"-t", "src/n", "-n"}},
		{"", []string{"-t", "src/f", "-f", file}},
		{"whole\nstdin", []string{"-t", "src/s", "-s"}},
		{"l1\n\nl3\r\nl4", []string{"-t", "src/l", "-l"}},
		{"", []string{"-t", "src/r", "-m", "again", "--repeat", "3"}},
	} {
		id := "src-" + tc.args[1]
		code, _, stderr := runSync(t, strings.NewReader(tc.stdin), append([]string{"pub", "-L", b.URL(), "-q", "2", "-i", id}, tc.args...)...)
		require.Equal(t, exitOK, code, "%v: %s", tc.args, stderr)
		// Order holds per publisher connection only, and mochi forwards
		// after its acknowledgement: let it finish with this one first.
		eventually(t, 10*time.Second, "the broker done with "+id, func() bool { return b.Disconnects(id) == 1 })
	}
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second), sub.stderr.String())
	assert.Equal(t, "src/m [dash m]\nsrc/n []\nsrc/f [from\na file\n]\nsrc/s [whole\nstdin]\n"+
		"src/l [l1]\nsrc/l []\nsrc/l [l3\r]\nsrc/l [l4]\nsrc/r [again]\nsrc/r [again]\nsrc/r [again]\n", sub.stdout.String())
}

// --repeat-delay waits after each completed message.
func TestPubRepeatDelay(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	sub := startSub(t, "-L", b.URL(), "-t", "rd", "-q", "1", "-F", "%U", "-C", "3")
	code, _, stderr := runSync(t, nil, "pub", "-L", b.URL(), "-t", "rd", "-q", "1", "-m", "x", "--repeat", "3", "--repeat-delay", "0.15")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second))
	var at []float64
	for _, l := range sub.stdout.lines() {
		f, err := strconv.ParseFloat(l, 64)
		require.NoError(t, err)
		at = append(at, f)
	}
	require.Len(t, at, 3)
	for i := 1; i < 3; i++ {
		// The delay comes after the previous message's PUBACK, so the
		// arrivals are at least that far apart.
		assert.GreaterOrEqual(t, at[i]-at[i-1], 0.14, "gap %d", i)
	}
}

// -r retains; -M and QoS 2 deliver in order.
func TestPubRetainAndInflight(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	code, _, stderr := runSync(t, nil, "pub", "-L", b.URL(), "-t", "keep/me", "-m", "kept", "-r", "-q", "1", "-i", "keeper")
	require.Equal(t, exitOK, code, stderr)
	// mochi acknowledges before it stores and forwards; once it is done
	// with pub's connection it is done with the message.
	eventually(t, 10*time.Second, "the broker done with pub", func() bool { return b.Disconnects("keeper") == 1 })
	sub := startSub(t, "-L", b.URL(), "-t", "keep/#", "-q", "2", "-C", "51", "-F", "%t %p %r")
	var lines []string
	for i := 1; i <= 50; i++ {
		lines = append(lines, strconv.Itoa(i))
	}
	code, _, stderr = runSync(t, strings.NewReader(strings.Join(lines, "\n")+"\n"), "pub", "-L", b.URL(), "-t", "keep/seq", "-q", "2", "-M", "1", "-l")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second))
	got := sub.stdout.lines()
	require.Len(t, got, 51)
	assert.Equal(t, "keep/me kept 1", got[0])
	for i, l := range got[1:] {
		assert.Equal(t, "keep/seq "+strconv.Itoa(i+1)+" 0", l)
	}
}

// A line that cannot be delivered within --timeout fails pub with status
// 1 on one line that names it; Ctrl-C while waiting for stdin, with
// everything delivered, exits 0.
func TestPubLineTimeoutAndInterrupt(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	proxy := mqttkeeptest.NewProxy(t, b.Addr())
	stdin, write, _ := stdinPipe(t)
	pub := start(t, stdin, "pub", "-L", proxy.URL(), "-t", "to", "-q", "1", "-l", "--timeout", "500ms")
	eventually(t, 10*time.Second, "pub connected", func() bool { return b.Connects() == 1 })
	proxy.Blackhole()
	write("lost in the hole")
	assert.Equal(t, exitFail, pub.wait(t, 10*time.Second))
	assert.Contains(t, pub.stderr.String(), "line 1 not delivered within --timeout 500ms")
	proxy.Pass()

	stdin2, write2, _ := stdinPipe(t)
	sub := startSub(t, "-L", b.URL(), "-t", "to", "-q", "1", "-C", "2")
	pub2 := start(t, stdin2, "pub", "-L", b.URL(), "-t", "to", "-q", "1", "-l")
	write2("a", "b")
	require.Equal(t, exitOK, sub.wait(t, 10*time.Second))
	assert.Equal(t, exitOK, pub2.interrupt(t), pub2.stderr.String())
}
