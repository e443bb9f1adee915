package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// detectSlackTest is what real sockets and goroutine scheduling may add to
// the K/2 + ping timeout bound on a loaded 2-core machine with -race (the
// library's own tests allow 500ms on an idle one).
const detectSlackTest = time.Second

// The demo goes through every phase in a short run and loses nothing.
func TestDemoText(t *testing.T) {
	t.Parallel()
	began := time.Now()
	svgPath := filepath.Join(t.TempDir(), "demo.svg")
	code, stdout, stderr := runSync(t, nil, "demo", "--duration", "6s", "--svg", svgPath)
	t.Logf("demo took %v\n%s", time.Since(began).Round(time.Millisecond), stdout)
	require.Equal(t, exitOK, code, "stderr: %s", stderr)
	assert.Empty(t, stderr)

	for _, want := range []string{
		"phase a: idle link",
		"phase b: silent link death",
		"link dead: sub: ping timeout detected after ",
		"phase c: link restored",
		"sub reconnected: attempt ",
		"session present true",
		"phase d: broker restart",
		"broker stopped",
		"broker restarted",
		"session present false",
		"the library re-subscribed to demo/counter by itself",
		"pub reconnected",
		"phase e: clean shutdown",
		"sub closed",
		"pub closed",
		"lost 0",
		"verdict: PASS",
	} {
		assert.Contains(t, stdout, want)
	}
	// A ping seen as one exchange, or as PINGREQ then PINGRESP.
	assert.Regexp(t, `sub (PINGREQ -> )?PINGRESP, rtt \d+\.\d{3}ms`, stdout)
	// Every event line starts with a relative timestamp.
	for _, line := range strings.Split(strings.TrimSpace(stdout[:strings.Index(stdout, "\nsummary")]), "\n") {
		assert.Regexp(t, `^ *\d+\.\d{3}s  \S`, line)
	}
	// Detected within the bound, counted from when the link went silent.
	m := regexp.MustCompile(`ping timeout detected after (\d+\.\d+)s(?: \(.*silent for (\d+\.\d+)s\))? \(bound K/2 \+ ping timeout = 2\.000s\)`).FindStringSubmatch(stdout)
	require.NotNil(t, m)
	silent := m[1]
	if m[2] != "" {
		silent = m[2]
	}
	detected, err := strconv.ParseFloat(silent, 64)
	require.NoError(t, err)
	assert.LessOrEqual(t, detected, (2*time.Second + detectSlackTest).Seconds())
	assert.Regexp(t, `messages: published [1-9]\d* \(acknowledged by the broker\), received [1-9]\d*, duplicated \d+, lost 0`, stdout)
	// The verdict says what it holds under.
	assert.Contains(t, stdout, "conditions of this verdict")
	assert.Contains(t, stdout, "session takeover")
	// A DUP flag is a re-send, not by itself a duplicate.
	assert.NotContains(t, stdout, "re-sent duplicate")
	for _, line := range strings.Split(stdout, "\n") {
		if strings.Contains(line, "DUP flag") && strings.Contains(line, "first arrival") {
			assert.NotContains(t, line, "a duplicate: this seq had arrived before")
		}
	}

	data, err := os.ReadFile(svgPath)
	require.NoError(t, err)
	checkDemoSVG(t, data, published(t, stdout))
}

// published reads the summary's count of acknowledged messages.
func published(t *testing.T, summary string) int {
	t.Helper()
	m := regexp.MustCompile(`messages: published (\d+) `).FindStringSubmatch(summary)
	require.NotNil(t, m)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// checkDemoSVG checks that the demo's SVG is well-formed XML holding
// what it must draw: both swimlanes with connected and reconnecting
// stretches, the two fault windows, ping ticks, the detection arrow with
// its bound, and a point per message received.
func checkDemoSVG(t *testing.T, data []byte, published int) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	count := make(map[string]int) // "element.class" and "#id"
	var root string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "the SVG is not well-formed XML")
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
			assert.Equal(t, "http://www.w3.org/2000/svg", se.Name.Space)
		}
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "class":
				count[se.Name.Local+"."+a.Value]++
			case "id":
				count["#"+a.Value]++
			}
		}
	}
	assert.Equal(t, "svg", root)
	for _, id := range []string{"#lane-sub", "#lane-pub", "#faults", "#pings", "#detections", "#seq", "#legend"} {
		assert.Equal(t, 1, count[id], "one %s", id)
	}
	assert.Equal(t, 2, count["rect.fault"], "the blackhole and the broker restart: %v", count)
	assert.GreaterOrEqual(t, count["rect.state-connected"], 4, "sub and pub connected, twice or more each: %v", count)
	assert.GreaterOrEqual(t, count["rect.state-reconnecting"], 3, "%v", count)
	assert.GreaterOrEqual(t, count["line.ping"], 1, "%v", count)
	assert.Equal(t, 1, count["line.detection"], "the ping timeout: %v", count)
	assert.Equal(t, 1, count["line.bound"], "%v", count)
	received := count["circle.recv"] + count["circle.resent"] + count["circle.duplicate"]
	assert.GreaterOrEqual(t, received, published, "a point per message received: %v", count)
	assert.Equal(t, published, count["rect.ack"], "a mark per acknowledgement")
}

// --json: nothing but JSON objects on stdout, one per line, each with t
// and event, ending with the summary.
func TestDemoJSON(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runSync(t, nil, "demo", "--duration", "6s", "--json")
	require.Equal(t, exitOK, code, "stderr: %s\nstdout: %s", stderr, stdout)
	assert.Empty(t, stderr)

	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Greater(t, len(lines), 10)
	events := make(map[string][]map[string]any)
	lastT := 0.0
	for i, line := range lines {
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &ev), "line %d: %s", i+1, line)
		tt, ok := ev["t"].(float64)
		require.True(t, ok, "line %d has no t: %s", i+1, line)
		assert.GreaterOrEqual(t, tt, lastT, "t goes backwards at line %d", i+1)
		lastT = tt
		name, ok := ev["event"].(string)
		require.True(t, ok, "line %d has no event: %s", i+1, line)
		events[name] = append(events[name], ev)
		if i == len(lines)-1 {
			assert.Equal(t, "summary", name)
		}
	}
	assert.NotEmpty(t, events["ping"])
	var pingTimeout bool
	for _, ev := range events["disconnected"] {
		if ev["ping_timeout"] == true {
			pingTimeout = true
			assert.Equal(t, "sub", ev["client"])
			assert.LessOrEqual(t, ev["silent_s"], ev["bound_s"].(float64)+detectSlackTest.Seconds())
			assert.Positive(t, ev["after_s"])
		}
	}
	assert.True(t, pingTimeout, "no ping timeout reported")
	// sub after the blackhole, sub and pub after the restart (more only if
	// a loaded machine made a connection flap).
	assert.GreaterOrEqual(t, len(events["reconnected"]), 3)

	require.Len(t, events["summary"], 1)
	sum := events["summary"][0]
	assert.Equal(t, 0.0, sum["lost"])
	assert.Equal(t, "pass", sum["verdict"])
	assert.Equal(t, true, sum["completed"])
	assert.Greater(t, sum["published"], 0.0)
	assert.GreaterOrEqual(t, sum["received"], sum["published"])
	disconnects := sum["disconnects"].(map[string]any)
	assert.GreaterOrEqual(t, disconnects["sub"], 2.0)
	assert.GreaterOrEqual(t, disconnects["pub"], 1.0)
	faults, ok := sum["faults"].([]any)
	require.True(t, ok)
	require.Len(t, faults, 3)
	for _, f := range faults {
		f := f.(map[string]any)
		for _, k := range []string{"detected_s", "reconnected_s", "flowing_again_s"} {
			assert.NotNil(t, f[k], "%s of %v", k, f)
		}
	}
}
