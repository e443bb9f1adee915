package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/benchmarks/internal/sink"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childBrokerEnv) == "1" {
		childBrokerMain() // idle-footprint re-executes the test binary
	}
	if spec := os.Getenv(durableChildEnv); spec != "" {
		durableChildMain(spec) // so does durable, under strace
	}
	if spec := os.Getenv(idleChildEnv); spec != "" {
		idleChildMain(spec) // and the idle scenarios
	}
	goleak.VerifyTestMain(m)
}

// Every contestant connects, subscribes, and gets back what it publishes
// (QoS 0 and, where it can, QoS 1).
func TestContestantsPublishAndReceive(t *testing.T) {
	for _, c := range contestants() {
		t.Run(c.Name(), func(t *testing.T) {
			b, err := startBroker()
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got := make(chan []byte, 10)
			cl, err := c.Connect(ctx, ClientConfig{
				Addr: b.Addr(), ClientID: "smoke-" + strings.ReplaceAll(c.Name(), " ", ""), KeepAlive: 5 * time.Second,
				Sub: &Subscription{Topic: "smoke/t", QoS: 1, Handler: func(p []byte) { got <- bytes.Clone(p) }},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if !closeBounded(cl) {
					t.Error("Close did not return in time")
				}
			}()
			qoss := []byte{0}
			if c.Caps().QoS1 {
				qoss = append(qoss, 1)
			}
			for _, q := range qoss {
				want := fmt.Appendf(nil, "hello qos %d", q)
				if err := cl.Publish(ctx, "smoke/t", want, q); err != nil {
					t.Fatalf("publish QoS %d: %v", q, err)
				}
				select {
				case p := <-got:
					if !bytes.Equal(p, want) {
						t.Fatalf("got %q, want %q", p, want)
					}
				case <-ctx.Done():
					t.Fatalf("QoS %d message not received", q)
				}
			}
		})
	}
}

func TestFaultproxyBlackholeAndPass(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // echo server
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	p, err := mqttkeeptest.StartProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func(msg string, wait time.Duration) (string, error) {
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
	if got, err := echo("one", 5*time.Second); err != nil || got != "one" {
		t.Fatalf("pass: got %q, %v", got, err)
	}
	p.Blackhole()
	if got, err := echo("two", 300*time.Millisecond); err == nil {
		t.Fatalf("blackhole: got %q", got)
	}
	p.Pass()
	if got, err := echo("three", 5*time.Second); err != nil || got != "three" {
		t.Fatalf("pass again: got %q, %v", got, err)
	}
}

// The sink answers QoS 1 and counts; the raw client allocates nothing per
// QoS 0 publish, so neither does the benchmark harness.
func TestSinkAndRawClientAllocateNothing(t *testing.T) {
	s, err := sink.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := rawContestant{}.Connect(ctx, ClientConfig{Addr: s.Addr(), ClientID: "sinktest"})
	if err != nil {
		t.Fatal(err)
	}
	defer closeBounded(cl)
	if err := cl.Publish(ctx, "t", payload64, 1); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := cl.Publish(ctx, "t", payload64, 0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.1 {
		t.Errorf("%.2f allocs per raw QoS 0 publish to the sink, want 0", allocs)
	}
}

// Every scenario runs once at a small scale (the slow ones only for
// mqttkeep), and the table has a row per metric.
func TestScenariosSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 30 s")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{keepAlive: 2 * time.Second, runs: 1, scale: 0.02, exe: exe, phases: []time.Duration{2500 * time.Millisecond},
		broker: "embedded", idleK: 2 * time.Second}
	slow := map[string]bool{"dead-link-idle": true, "dead-link-publishing": true, "restart-connected": true, "restart-connected-100ms": true, "restart-first-message": true,
		"routing-mochi": true, "routing-feeder": true, "routing-feeder-ids": true,
		"storm-mosquitto": true, "storm-mqttkeep-broker": true, "idle-10k": true}
	cs := contestants()
	res := newResults(scenarios(), cs)
	for si, s := range scenarios() {
		for ci, c := range cs {
			if !s.applies(c.Caps()) || (slow[s.name] && c.Name() != "mqttkeep") {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout(e))
			vals, err := s.run(ctx, e, c, 0)
			cancel()
			if _, ok := err.(*incomplete); err != nil && !ok {
				t.Errorf("%s, %s: %v", s.name, c.Name(), err)
			}
			res.add(si, ci, vals, err)
		}
	}
	var out strings.Builder
	res.print(&out, e)
	rows := 0
	for _, s := range scenarios() {
		rows += len(s.metrics)
	}
	if n := strings.Count("\n"+out.String(), "\n| ") - 1; n != rows { // less the header row
		t.Errorf("table has %d rows, want %d:\n%s", n, rows, out.String())
	}
	t.Logf("\n%s", out.String())
}
