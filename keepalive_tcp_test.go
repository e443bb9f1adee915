package mqttkeep_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tcpSlack is what real sockets and the scheduler's goroutines may add to
// the K/2 + ping timeout bound on a loaded 2-core machine with -race.
const tcpSlack = 500 * time.Millisecond

// The same silent link death as TestSilentLinkDeathDetectedWithinBound,
// over real TCP through the fault proxy (both sockets stay open, bytes are
// dropped), at a random phase of the ping cycle.
func TestSilentLinkDeathOverTCP(t *testing.T) {
	const k = 2 * time.Second
	for _, publishing := range []bool{false, true} {
		name := "idle"
		if publishing {
			name = "publishing QoS 0 every 50ms"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := mqttkeeptest.NewBroker(t)
			p := mqttkeeptest.NewProxy(t, b.Addr())
			ev := newEvents()
			c := newClient(t, append(ev.options(), mqttkeep.WithServer(p.URL()), mqttkeep.WithKeepAlive(k),
				mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
			connect(t, c)

			stop := make(chan struct{})
			pubDone := make(chan struct{})
			go func() {
				defer close(pubDone)
				for publishing {
					if c.Publish(context.Background(), "t/qos0", []byte("tick")) != nil {
						return
					}
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}()
			defer func() { close(stop); <-pubDone }()

			time.Sleep(k + rand.N(k/2)) // the scenario: the link dies at a random phase of the ping cycle
			diedAt := time.Now()
			p.Blackhole()
			select {
			case e := <-ev.lost:
				detection := time.Since(diedAt)
				require.ErrorIs(t, e.Err, mqttkeep.ErrPingTimeout)
				assert.LessOrEqual(t, detection, k+tcpSlack, "K/2 + ping timeout + slack")
				t.Logf("%s: detection %v (K=%v, ping timeout %v)", name, detection.Round(time.Millisecond), k, k/2)
			case <-time.After(5 * k):
				t.Fatal("dead link never reported")
			}
		})
	}
}

// paho.mqtt.golang's issue #723: a PINGREQ write stuck behind a publish
// that fills the socket buffer delays detection forever. Here the proxy
// stops reading, the publisher's write blocks holding the write lock, and
// the link must still be declared dead within K/2 + ping timeout of the
// last byte received.
func TestBlockedWriteDoesNotDelayDetection(t *testing.T) {
	t.Parallel()
	const k = 2 * time.Second
	b := mqttkeeptest.NewBroker(t)
	p := mqttkeeptest.NewProxy(t, b.Addr())
	ev := newEvents()
	c := newClient(t, append(ev.options(), mqttkeep.WithServer(p.URL()), mqttkeep.WithKeepAlive(k),
		mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
	connect(t, c)

	p.Stall()
	stalledAt := time.Now()
	var longest atomic.Int64 // the longest Publish call, in nanoseconds
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		payload := make([]byte, 256<<10)
		// Bounded: once the link is declared dead, Publish queues until
		// the 8 MiB offline queue is full and returns ErrQueueFull.
		for range 1000 {
			start := time.Now()
			err := c.Publish(context.Background(), "t/big", payload)
			if d := int64(time.Since(start)); d > longest.Load() {
				longest.Store(d)
			}
			if err != nil {
				return
			}
		}
	}()

	select {
	case e := <-ev.lost:
		detection := time.Since(stalledAt)
		<-pubDone
		assert.Greater(t, time.Duration(longest.Load()), k/4,
			"a publish write was blocked until the link was declared dead")
		require.ErrorIs(t, e.Err, mqttkeep.ErrPingTimeout)
		assert.LessOrEqual(t, detection, k+tcpSlack)
		t.Logf("detection with a blocked write: %v", detection.Round(time.Millisecond))
	case <-time.After(5 * k):
		t.Error("dead link never reported while a write was blocked")
		require.NoError(t, c.Close(context.Background()))
		<-pubDone
	}
}

// A broker that floods unsolicited PINGRESPs: no round trip the client
// reports is negative, and a PINGRESP read before a PINGREQ went out is
// never taken for its answer (MQTT pairs them by order only). Real TCP,
// because the mistake lived in the gap between the read and the clock.
func TestUnsolicitedPingrespsNeverGiveANegativeRTT(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	stop := make(chan struct{})
	var served sync.WaitGroup
	served.Add(1)
	go func() {
		defer served.Done()
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if cp, err := packets.ReadPacket(nc); err != nil || cp.Type != packets.CONNECT {
			t.Errorf("want CONNECT: %v %v", cp, err)
			return
		}
		ca := packets.NewControlPacket(packets.CONNACK)
		ca.Content.(*packets.Connack).Properties = &packets.Properties{}
		if _, err := ca.WriteTo(nc); err != nil {
			return
		}
		go func() { _, _ = io.Copy(io.Discard, nc) }() // PINGREQs and the DISCONNECT
		flood := bytes.Repeat([]byte{packets.PINGRESP << 4, 0}, 512)
		deadline := time.Now().Add(time.Minute)
		rest := flood
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			if len(rest) == 0 {
				rest = flood
			}
			_ = nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := nc.Write(rest)
			rest = rest[n:] // a write cut short by the deadline goes on where it stopped
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
				return
			}
		}
	}()
	c := newClient(t, mqttkeep.WithServer("mqtt://"+ln.Addr().String()), mqttkeep.WithKeepAlive(0))
	connect(t, c)
	negative := 0
	for range 50 {
		rtt, err := c.Ping(context.Background())
		require.NoError(t, err)
		if rtt < 0 {
			negative++
		}
	}
	st := c.Stats()
	close(stop)
	require.NoError(t, c.Close(context.Background()))
	served.Wait()
	assert.Zero(t, negative, "Ping calls that returned a negative round trip")
	assert.GreaterOrEqual(t, st.PingRTTMin, time.Duration(0), "Stats.PingRTTMin")
}
