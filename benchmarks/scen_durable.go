package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/autopaho/queue/file"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/filestore"
)

// The durable enqueue scenarios (issue 13): QoS 1, 64-byte payloads,
// through each library's own on-disk path, connected to the embedded
// broker; the clock runs from the call to its return. What a return means
// differs, and is the point:
//
//   - mqttkeep PublishAsync with WithStore(filestore.Open(dir)): the
//     message is in the log and fdatasync'ed (group commit: concurrent
//     callers share one sync).
//   - mqttkeep Publish, same store: stored and synced, then written, then
//     acknowledged by the broker (PUBACK).
//   - autopaho v0.23.0 PublishViaQueue with ClientConfig.Queue =
//     queue/file.New(dir): the packet is in a new file created with
//     os.CreateTemp, written and closed; never fsync'ed. A goroutine sends
//     the files in ModTime order and deletes each once written.
//   - paho.mqtt.golang v1.5.1 Publish with SetStore(NewFileStore(dir)):
//     the packet is in a temp file written, closed and renamed into place
//     (never fsync'ed) and handed to the send channel; the token completes
//     on PUBACK later.
const durableMessages = 3000

// durableClient is one library's durable path.
type durableClient struct {
	enqueue func(ctx context.Context) error // one QoS 1 message of 64 B
	drain   func(ctx context.Context) error // waits until everything enqueued was sent
	close   func()
}

// openDurable connects lib's client to addr with its store in dir.
func openDurable(ctx context.Context, lib, addr, dir, clientID string, k time.Duration) (*durableClient, error) {
	switch lib {
	case "mqttkeep-async", "mqttkeep-publish":
		st, err := filestore.Open(dir)
		if err != nil {
			return nil, err
		}
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://"+addr), mqttkeep.WithClientID(clientID),
			mqttkeep.WithKeepAlive(k), mqttkeep.WithStore(st))
		if err != nil {
			st.Close()
			return nil, err
		}
		closeAll := func() { closeWithTimeout(c.Close); _ = st.Close() }
		if err := c.Connect(ctx); err != nil {
			closeAll()
			return nil, err
		}
		q1 := mqttkeep.WithQoS(1)
		enq := func(ctx context.Context) error {
			_, err := c.PublishAsync(ctx, "bench/durable", payload64, q1)
			return err
		}
		if lib == "mqttkeep-publish" {
			enq = func(ctx context.Context) error { return c.Publish(ctx, "bench/durable", payload64, q1) }
		}
		return &durableClient{enqueue: enq, drain: c.Flush, close: closeAll}, nil
	case "autopaho":
		q, err := file.New(dir, "q", ".msg")
		if err != nil {
			return nil, err
		}
		u, err := url.Parse("mqtt://" + addr)
		if err != nil {
			return nil, err
		}
		cm, err := autopaho.NewConnection(context.Background(), autopaho.ClientConfig{
			ServerUrls: []*url.URL{u}, KeepAlive: uint16(k.Seconds()), CleanStartOnInitialConnection: true,
			Queue: q, ClientConfig: paho.ClientConfig{ClientID: clientID},
		})
		if err != nil {
			return nil, err
		}
		closeAll := func() { closeWithTimeout(cm.Disconnect) }
		if err := cm.AwaitConnection(ctx); err != nil {
			closeAll()
			return nil, err
		}
		return &durableClient{
			enqueue: func(ctx context.Context) error {
				return cm.PublishViaQueue(ctx, &autopaho.QueuePublish{Publish: &paho.Publish{Topic: "bench/durable", QoS: 1, Payload: payload64}})
			},
			drain: func(ctx context.Context) error {
				select {
				case <-q.WaitForEmpty():
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			},
			close: closeAll,
		}, nil
	case "paho.mqtt.golang":
		o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
			SetProtocolVersion(4).SetKeepAlive(k).SetStore(mqtt.NewFileStore(dir))
		c := mqtt.NewClient(o)
		if err := wait(ctx, c.Connect()); err != nil {
			c.Disconnect(10)
			return nil, err
		}
		var mu sync.Mutex
		var tokens []mqtt.Token
		return &durableClient{
			enqueue: func(context.Context) error {
				t := c.Publish("bench/durable", 1, false, payload64)
				mu.Lock()
				tokens = append(tokens, t)
				mu.Unlock()
				return nil
			},
			drain: func(ctx context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				for _, t := range tokens {
					if err := wait(ctx, t); err != nil {
						return err
					}
				}
				return nil
			},
			close: func() { c.Disconnect(10) },
		}, nil
	}
	return nil, fmt.Errorf("no durable path for %q", lib)
}

// durableLib maps a contestant (and the scenario's call) to its path.
func durableLib(c Contestant, publish bool) string {
	switch c.Name() {
	case "mqttkeep":
		if publish {
			return "mqttkeep-publish"
		}
		return "mqttkeep-async"
	case "autopaho", "paho.mqtt.golang":
		return c.Name()
	}
	return ""
}

// durableMetrics are the rows of a durable scenario.
func durableMetrics(call string) []metric {
	var m []metric
	for _, callers := range []int{1, concurrency} {
		p := fmt.Sprintf("D. durable enqueue (%s), %d caller(s)", call, callers)
		m = append(m,
			metric{row: p + ": calls returned per second", unit: unitRate, higherBetter: true},
			metric{row: p + ": p50 call latency", unit: unitMicros},
			metric{row: p + ": p99 call latency", unit: unitMicros},
			metric{row: p + ": p99 ÷ p50 of a raw 64 B append + fdatasync (same run)", unit: unitCount})
	}
	return append(m,
		metric{row: fmt.Sprintf("D. durable (%s): raw 64 B append + fdatasync on the same disk, p50 (measured before the 1-caller run)", call), unit: unitMicros},
		metric{row: fmt.Sprintf("D. durable (%s), 1 caller: fsync+fdatasync calls per message (strace -f, a separate child run)", call), unit: unitCount},
		metric{row: fmt.Sprintf("D. durable (%s), %d callers: fsync+fdatasync calls per message (strace -f, a separate child run)", call, concurrency), unit: unitCount})
}

// durable runs the 1-caller and the 64-caller measurement of one path, each
// on a fresh store directory under os.TempDir() and a fresh broker.
func durable(ctx context.Context, e *env, c Contestant, publish bool) ([]float64, error) {
	lib := durableLib(c, publish)
	if lib == "" {
		return nil, fmt.Errorf("%s has no durable path", c.Name())
	}
	raw, err := rawFsync(200)
	if err != nil {
		return nil, err
	}
	rawP50 := percentile(raw, 0.50)
	var vals []float64
	for _, callers := range []int{1, concurrency} {
		n := e.n(durableMessages)
		lat, d, err := durableRun(ctx, e, c, lib, callers, n)
		if err != nil {
			return nil, fmt.Errorf("%d callers: %w", callers, err)
		}
		p99 := percentile(lat, 0.99)
		vals = append(vals, float64(n)/d.Seconds(), percentile(lat, 0.50).Seconds()*1e6, p99.Seconds()*1e6, p99.Seconds()/rawP50.Seconds())
	}
	vals = append(vals, rawP50.Seconds()*1e6)
	for _, callers := range []int{1, concurrency} {
		v, err := countSyncs(e.exe, lib, callers, e.n(durableMessages))
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// durableRun enqueues n messages from callers goroutines and returns every
// call's latency and the time until the last call returned. It then waits
// (untimed) until the library sent everything, and closes.
func durableRun(ctx context.Context, e *env, c Contestant, lib string, callers, n int) ([]time.Duration, time.Duration, error) {
	b, err := startBroker()
	if err != nil {
		return nil, 0, err
	}
	defer b.Close()
	dir, err := os.MkdirTemp("", "mqttkeep-bench-durable-")
	if err != nil {
		return nil, 0, err
	}
	defer os.RemoveAll(dir)
	dc, err := openDurable(ctx, lib, b.Addr(), filepath.Join(dir, "store"), e.clientID(c), e.keepAlive)
	if err != nil {
		return nil, 0, fmt.Errorf("open: %w", err)
	}
	defer dc.close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lats := make([][]time.Duration, callers)
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				t := time.Now()
				if err := dc.enqueue(ctx); err != nil {
					cancel(err)
					return
				}
				lats[w] = append(lats[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	if err := context.Cause(ctx); err != nil {
		return nil, 0, err
	}
	ops.Add(int64(n))
	if err := dc.drain(ctx); err != nil {
		return nil, 0, fmt.Errorf("drain: %w", err)
	}
	return slices.Concat(lats...), d, nil
}

// ops counts the messages enqueued in this process (for -syncs).
var ops atomic.Int64

// rawFsync appends 64 bytes to a file and fdatasyncs it, n times, in a
// fresh directory under os.TempDir(), and returns each round's time: the
// disk's unit of durability.
func rawFsync(n int) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "mqttkeep-bench-fsync-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "raw"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if _, err := f.Write(payload64); err != nil {
			return nil, err
		}
		if err := fdatasync(f); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t))
	}
	return out, nil
}

// percentile returns the q-quantile (nearest rank) of v.
func percentile(v []time.Duration, q float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
