package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/benchmarks/internal/sink"
)

// The publish benchmarks run each client against two in-process servers:
//
//   - mochi: the mochi-mqtt broker, as in the runner. Its per-message work
//     runs in this process too, so B/op and allocs/op include the broker's.
//   - sink: a minimal MQTT server that answers CONNECT and PUBACKs QoS 1
//     and allocates nothing per message, so B/op and allocs/op are the
//     client's alone.
//
// raw is the hand-written client of the runner's raw TCP column: the floor
// (0 allocs/op shows that the harness and the sink allocate nothing).
//
//	go test -bench . -benchmem -run '^$'

func BenchmarkPublishQoS0(b *testing.B) { benchPublish(b, 0) }

func BenchmarkPublishQoS1(b *testing.B) { benchPublish(b, 1) }

func benchPublish(b *testing.B, qos byte) {
	servers := []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"mochi", func(b *testing.B) string {
			br, err := startBroker()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(br.Close)
			return br.Addr()
		}},
		{"sink", func(b *testing.B) string {
			s, err := sink.Start()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(s.Close)
			return s.Addr()
		}},
	}
	for _, srv := range servers {
		for _, c := range []Contestant{mqttkeepContestant{}, pahoContestant{}, rawContestant{}} {
			name := shortNames[c.Name()]
			if name == "" {
				name = c.Name()
			}
			b.Run(srv.name+"/"+name, func(b *testing.B) {
				addr := srv.start(b)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				cl, err := c.Connect(ctx, ClientConfig{Addr: addr, ClientID: fmt.Sprintf("bench-%s-%d", name, time.Now().UnixNano()), KeepAlive: 30 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				defer closeBounded(cl)
				b.SetBytes(payloadSize)
				b.ReportAllocs()
				for b.Loop() {
					if err := cl.Publish(ctx, "bench/publish", payload64, qos); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
