package embedbroker_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/internal/embedbroker"
)

// killWithoutData runs the brokers of TestDataDirSurvivesKill and
// TestDataDirKillDuringPublishing without a data directory, to see the
// tests fail (every queued message and the session lost):
//
//	go test ./internal/embedbroker/ -run TestDataDirSurvivesKill -kill-without-data
var killWithoutData = flag.Bool("kill-without-data", false, "TestDataDirSurvivesKill: run the broker without WithDataDir (the test then fails)")

// The broker runs in a child process (this test binary again) with a data
// directory. A persistent session subscribes and leaves, a publisher
// sends it QoS 1 messages (each acknowledged) and a retained message, the
// broker is killed with SIGKILL and started again on the same directory
// and address: the session, its subscription, every queued message and
// the retained message are there.
func TestDataDirSurvivesKill(t *testing.T) {
	if os.Getenv("EMBEDBROKER_CHILD") == "broker" {
		childBroker()
		return
	}
	dir := t.TempDir()
	if *killWithoutData {
		dir = ""
	}
	first := startChild(t, dir, "127.0.0.1:0")
	url := "mqtt://" + first.addr
	leaveState(t, url)
	first.kill(t)

	second := startChild(t, dir, first.addr)
	defer second.stop(t)
	checkState(t, url)
}

// A broker killed while a publisher streams QoS 1 messages to a
// persistent session keeps every message it acknowledged: the session's
// next connection, to the restarted broker, gets each one.
func TestDataDirKillDuringPublishing(t *testing.T) {
	dir := t.TempDir()
	if *killWithoutData {
		dir = ""
	}
	first := startChild(t, dir, "127.0.0.1:0")
	url := "mqtt://" + first.addr
	subscribeAndLeave(t, url, "stream-sub", "stream/#")

	pub := connectClient(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), sessionTimeout)
	defer cancel()
	var results []*mqttkeep.PublishResult
	killAt := 100 + rand.IntN(400) // acknowledged messages before the kill
	acked := 0
	for i := 1; acked < killAt; i++ {
		res, err := pub.PublishAsync(ctx, "stream/x", []byte(strconv.Itoa(i)), mqttkeep.WithQoS(1))
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
		for acked < len(results) && isAcked(results[acked]) {
			acked++
		}
		if len(results)-acked > 50 { // a window in flight, as a streaming sensor has
			if err := results[acked].Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	first.kill(t)
	closeCtx, done := context.WithTimeout(context.Background(), time.Second)
	defer done()
	_ = pub.Close(closeCtx)
	var want []string
	for i, res := range results {
		if isAcked(res) {
			want = append(want, strconv.Itoa(i+1))
		}
	}
	t.Logf("killed after %d messages were published, %d acknowledged", len(results), len(want))

	second := startChild(t, dir, first.addr)
	defer second.stop(t)
	in := newInbox()
	connectClient(t, url, sessionOptions("stream-sub", in)...)
	deadline := time.After(sessionTimeout)
	for {
		got := make(map[string]bool)
		for _, p := range in.payloads("stream/x") {
			got[p] = true
		}
		var missing []string
		for _, p := range want {
			if !got[p] {
				missing = append(missing, p)
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-in.added:
		case <-deadline:
			t.Fatalf("%d of %d acknowledged messages lost: %v", len(missing), len(want), missing)
		}
	}
}

// isAcked reports whether the broker acknowledged res's message.
func isAcked(res *mqttkeep.PublishResult) bool {
	select {
	case <-res.Done():
		return res.Err() == nil
	default:
		return false
	}
}

// child is a broker in a child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

// startChild runs a broker process on addr with the data directory dir
// ("" for none) and returns once it listens.
func startChild(t *testing.T, dir, addr string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDataDirSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EMBEDBROKER_CHILD=broker", "EMBEDBROKER_DIR="+dir, "EMBEDBROKER_ADDR="+addr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { // a test that failed midway leaves no process behind
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				listening <- a
			}
		}
		close(listening)
	}()
	select {
	case a, ok := <-listening:
		if !ok {
			t.Fatal("the broker process ended before it listened")
		}
		c.addr = a
	case <-time.After(sessionTimeout):
		t.Fatal("the broker process did not listen")
	}
	return c
}

// kill ends the broker process with SIGKILL: no clean shutdown.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := c.cmd.Wait()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the broker process ended with %v, not by SIGKILL", err)
	}
}

// stop ends the broker process cleanly (it closes the broker when its
// stdin closes).
func (c *child) stop(t *testing.T) {
	t.Helper()
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the broker process: %v", err)
		}
	case <-time.After(sessionTimeout):
		t.Error("the broker process did not stop")
	}
}

// childBroker is the child process: a broker on $EMBEDBROKER_ADDR with
// the data directory $EMBEDBROKER_DIR, until its stdin closes.
func childBroker() {
	var opts []embedbroker.Option
	if dir := os.Getenv("EMBEDBROKER_DIR"); dir != "" {
		opts = append(opts, embedbroker.WithDataDir(dir))
	}
	b, err := embedbroker.New(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child broker:", err)
		os.Exit(1)
	}
	defer b.Close()
	// The killed broker's port may still be held for a moment.
	deadline := time.Now().Add(sessionTimeout)
	for {
		err = b.Listen(os.Getenv("EMBEDBROKER_ADDR"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "child broker:", err)
			os.Exit(1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("listening on " + b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
}
