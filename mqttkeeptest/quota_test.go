package mqttkeeptest_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
)

// A QoS 1 subscriber with a Receive Maximum (mqttkeep's default, 128) gets
// a stream far longer than that window, published faster than it
// acknowledges: the broker holds back what exceeds the window and must send
// it as PUBACKs free the quota. Mochi v2.7.9 sent one held-back message per
// packet read, outside its in-flight bookkeeping, so each leaked a unit of
// quota and the stream stalled for good after a couple of windows.
func TestSendQuotaFreedSendsHeldMessages(t *testing.T) {
	const n = 5000
	b := mqttkeeptest.NewBroker(t, mqttkeeptest.WithoutRecording())

	var (
		mu       sync.Mutex
		seen     = make(map[int]bool, n)
		reorders int // messages that came after a later one
		last     int
		all      = make(chan struct{})
	)
	handle := func(m *mqttkeep.Message) {
		i, err := strconv.Atoi(string(m.Payload))
		mu.Lock()
		defer mu.Unlock()
		if err != nil || seen[i] {
			return // a duplicate (or garbage): not counted
		}
		seen[i] = true
		if i < last {
			reorders++
		}
		last = max(last, i)
		if len(seen) == n {
			close(all)
		}
	}
	c, err := mqttkeep.New(mqttkeep.WithServer(b.URL()), mqttkeep.WithClientID("quota-sub"))
	noErr(t, err)
	defer c.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	noErr(t, c.Connect(ctx))
	noErr(t, c.Subscribe(ctx, "quota/#", 1, handle))

	start := time.Now()
	for i := 1; i <= n; i++ {
		noErr(t, b.Publish("quota/x", []byte(strconv.Itoa(i)), 1))
	}
	select {
	case <-all:
		mu.Lock()
		t.Logf("%d messages handled in %v; %d out of order", n, time.Since(start), reorders)
		mu.Unlock()
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d messages handled in %v", len(seen), n, time.Since(start))
	}
}
