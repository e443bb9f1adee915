package mqttkeep_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
	"github.com/mqttkeep/mqttkeep/internal/mosquitto"
	"github.com/mqttkeep/mqttkeep/internal/rabbitmq"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashKills sets how many times the crash test kills its publisher:
//
//	go test -run TestDurablePublishSurvivesKill -crashkills 25 -v .
var crashKills = flag.Int("crashkills", 4, "TestDurablePublishSurvivesKill: SIGKILLs of the publisher")

// The crash test: a child process publishes QoS 1 and QoS 2 through the
// durable path (PublishAsync on a file store) and is killed with SIGKILL
// at random moments, then started again on the same store, client ID and
// session; a subscriber in this process records everything. Every message
// whose PublishAsync returned nil (the child prints it once it did) must
// arrive: QoS 1 at least once, QoS 2 exactly once. On the embedded broker
// and on Mosquitto (persistence on).
func TestDurablePublishSurvivesKill(t *testing.T) {
	if os.Getenv("MQTTKEEP_CHILD") == "crash-publisher" {
		crashPublisher()
		return
	}
	t.Run("mochi", func(t *testing.T) {
		t.Parallel()
		b := mqttkeeptest.NewBroker(t)
		// mochi v2.7.9 loses a session's in-flight QoS 2 state when a new
		// connection takes the client ID over while it still processes
		// the old one (its takeover race): a restarted publisher then
		// gets duplicates no client can prevent. Wait until mochi is done
		// with the killed process's connection.
		runCrashTest(t, b.URL(), func(runs int) {
			eventuallyTrue(t, "mochi done with the killed connection", func() bool { return b.Disconnects("crash-pub") >= runs })
		}, func(missing []string) {
			for _, m := range missing {
				topic, payload, _ := strings.Cut(m, " ")
				var got, sent int
				for _, p := range b.Payloads(topic) {
					if string(p) == payload {
						got++
					}
				}
				for _, p := range b.SentTo("crash-sub") {
					if string(p) == payload {
						sent++
					}
				}
				t.Logf("missing %s: mochi received it %d times, sent it to the subscriber %d times; mochi dropped %d messages in all",
					m, got, sent, b.Dropped())
			}
		})
	})
	t.Run("mosquitto", func(t *testing.T) {
		t.Parallel()
		runCrashTest(t, mosquitto.Start(t, mosquitto.WithPersistence()).URL(), func(int) {}, func([]string) {})
	})
	// MQTT 3.1.1, negotiated; QoS 1 only (RabbitMQ 3.10 has no QoS 2).
	t.Run("rabbitmq", func(t *testing.T) {
		t.Parallel()
		n := rabbitmq.Shared(t)
		user, pass := n.Credentials()
		runCrashTestOn(t, crashTarget{url: "mqtt://" + n.MQTTAddr(), user: user, pass: pass}, func(int) {}, func([]string) {})
	})
}

// runCrashTest runs the crash test against the broker at url; afterKill
// runs after each kill, diagnose when messages are missing.
func runCrashTest(t *testing.T, url string, afterKill func(runs int), diagnose func(missing []string)) {
	runCrashTestOn(t, crashTarget{url: url, qos2: true}, afterKill, diagnose)
}

// crashTarget is the broker of a crash test: its URL, credentials, and
// whether it has QoS 2 (RabbitMQ 3.10 has not: the child then publishes
// QoS 1 only).
type crashTarget struct {
	url, user, pass string
	qos2            bool
}

func (ct crashTarget) options() []mqttkeep.Option {
	opts := []mqttkeep.Option{mqttkeep.WithServer(ct.url)}
	if ct.user != "" {
		opts = append(opts, mqttkeep.WithCredentials(ct.user, ct.pass))
	}
	return opts
}

func runCrashTestOn(t *testing.T, ct crashTarget, afterKill func(runs int), diagnose func(missing []string)) {
	url := ct.url
	var mu sync.Mutex
	got := map[string]int{}
	sub := newClient(t, append(ct.options(), mqttkeep.WithClientID("crash-sub"),
		mqttkeep.WithSubscription("crash/#", 2, func(m *mqttkeep.Message) {
			mu.Lock()
			got[m.Topic+" "+string(m.Payload)]++
			mu.Unlock()
		}))...)
	connect(t, sub)
	eventuallyTrue(t, "subscribed", func() bool { return sub.Stats().PacketsIn >= 2 })

	dir := t.TempDir()
	accepted := map[string]bool{}
	kills := 0
	for run := 0; run <= *crashKills; run++ {
		last := run == *crashKills
		cmd := exec.Command(os.Args[0], "-test.run=^TestDurablePublishSurvivesKill$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MQTTKEEP_CHILD=crash-publisher", "CRASH_URL="+url, "CRASH_DIR="+dir,
			"CRASH_RUN="+strconv.Itoa(run), "CRASH_LAST="+strconv.FormatBool(last),
			"CRASH_USER="+ct.user, "CRASH_PASS="+ct.pass, "CRASH_QOS2="+strconv.FormatBool(ct.qos2))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		lines := make(chan string, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// The kill comes at a random moment once the child is connected
		// (a child killed while it starts would leave nothing to test, and
		// no connection for afterKill to wait for).
		var timer <-chan time.Time
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				if k, ok := strings.CutPrefix(l, "accepted "); ok {
					accepted[k] = true
				} else if l == "connected" && !last {
					timer = time.After(100*time.Millisecond + rand.N(400*time.Millisecond))
				}
			case <-timer:
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				kills++
				timer = nil
			}
		}
		err = cmd.Wait()
		if last {
			require.NoError(t, err, "the last run ends by itself")
		} else {
			afterKill(run + 1)
		}
	}
	// Everything accepted arrives.
	missing := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for k := range accepted {
			if got[k] == 0 {
				out = append(out, k)
			}
		}
		return out
	}
	if !assert.Eventually(t, func() bool { return len(missing()) == 0 }, 30*time.Second, 10*time.Millisecond) {
		m := missing()
		diagnose(m)
		t.Fatalf("accepted messages that never arrived: %v", m)
	}
	mu.Lock()
	defer mu.Unlock()
	dups1, dups2 := 0, 0
	for k, n := range got {
		if n > 1 {
			if strings.HasPrefix(k, "crash/q2 ") {
				dups2++
				t.Logf("QoS 2 duplicate: %s (%d times)", k, n)
			} else {
				dups1++
			}
		}
	}
	t.Logf("%d kills, %d messages accepted, %d received, QoS 1 duplicates %d, QoS 2 duplicates %d",
		kills, len(accepted), len(got), dups1, dups2)
	assert.Zero(t, dups2, "a QoS 2 message arrived twice")
	assert.Positive(t, len(accepted))
}

// crashPublisher is the child: it publishes until it is killed, printing
// each message PublishAsync accepted; the last run only sends what the
// store holds and exits.
func crashPublisher() {
	fail := func(err error) { fmt.Fprintln(os.Stderr, "crash publisher:", err); os.Exit(3) }
	store, err := filestore.Open(os.Getenv("CRASH_DIR"))
	if err != nil {
		fail(err)
	}
	target := crashTarget{url: os.Getenv("CRASH_URL"), user: os.Getenv("CRASH_USER"), pass: os.Getenv("CRASH_PASS")}
	c, err := mqttkeep.New(append(target.options(), mqttkeep.WithClientID("crash-pub"),
		mqttkeep.WithCleanStart(false), mqttkeep.WithSessionExpiry(time.Hour), mqttkeep.WithStore(store))...)
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		fail(err)
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "connected")
	w.Flush()
	if os.Getenv("CRASH_LAST") == "true" {
		if err := c.Flush(ctx); err != nil {
			fail(err)
		}
		_ = c.Close(ctx)
		_ = store.Close()
		return
	}
	run := os.Getenv("CRASH_RUN")
	for i := 0; ; i++ {
		topic, qos := "crash/q1", mqttkeep.QoS(1)
		if i%2 == 1 && os.Getenv("CRASH_QOS2") == "true" {
			topic, qos = "crash/q2", 2
		}
		payload := run + "-" + strconv.Itoa(i)
		if _, err := c.PublishAsync(ctx, topic, []byte(payload), mqttkeep.WithQoS(qos)); err != nil {
			fail(err)
		}
		fmt.Fprintf(w, "accepted %s %s\n", topic, payload)
		w.Flush()
	}
}
