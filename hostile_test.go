package mqttkeep_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Close while many QoS 2 publishes are in flight: paho v0.23.0's session
// state crashed here (a nil connection read without its lock, in 2 of 5
// runs). The client now owns its session state; the scenario runs in a
// child process so that a crash fails this test instead of the suite.
func TestCloseDuringQoS2PublishesDoesNotCrash(t *testing.T) {
	if os.Getenv("MQTTKEEP_CHILD") == "close-qos2" {
		closeDuringQoS2()
		return
	}
	for run := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCloseDuringQoS2PublishesDoesNotCrash$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MQTTKEEP_CHILD=close-qos2")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "child run %d crashed:\n%s", run, out)
	}
}

// closeDuringQoS2 is the child's scenario: 16 publishers, 40 rounds, each
// round closed while its QoS 2 publishes are in flight.
func closeDuringQoS2() {
	b, err := mqttkeeptest.StartBroker()
	if err != nil {
		panic(err)
	}
	defer b.Close()
	for round := range 40 {
		c, err := mqttkeep.New(mqttkeep.WithServer(b.URL()))
		if err != nil {
			panic(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := c.Connect(ctx); err != nil {
			panic(err)
		}
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; ; j++ {
					if err := c.Publish(ctx, "crash/test", []byte(fmt.Sprint(round, i, j)), mqttkeep.WithQoS(2)); err != nil {
						return // closed
					}
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond) // Close at a different point each round
		if err := c.Close(ctx); err != nil {
			panic(err)
		}
		wg.Wait()
		cancel()
	}
}

// A payload that makes the packet larger than MQTT can encode is refused
// with ErrPacketTooLarge, connected or queued; paho's encoder panicked.
func TestPublishLargerThanMQTTCanCarry(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	c := newClient(t, mqttkeep.WithServer(b.URL()))
	connect(t, c)
	huge := make([]byte, 268435455) // the payload alone fills the remaining length
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, qos := range []mqttkeep.QoS{0, 1} {
		err := c.Publish(ctx, "big", huge, mqttkeep.WithQoS(qos))
		require.ErrorIs(t, err, mqttkeep.ErrPacketTooLarge, "QoS %d", qos)
		_, err = c.PublishAsync(ctx, "big", huge, mqttkeep.WithQoS(qos))
		require.ErrorIs(t, err, mqttkeep.ErrPacketTooLarge, "QoS %d async", qos)
	}
	b.Stop() // and while reconnecting, before anything is queued
	require.ErrorIs(t, c.Publish(ctx, "big", huge), mqttkeep.ErrPacketTooLarge)
	assert.Zero(t, c.Stats().OutQueued)
}

// A server that accepts and then redirects (DISCONNECT 0x9C) to itself
// gets a bounded number of reconnects, not thousands a second: redirects
// after a connection that did not last count against the limit and the
// backoff.
func TestRedirectLoopBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		var connects atomic.Int32
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				var sc *scriptConn
				select {
				case sc = <-srv.conns:
				case <-stop:
					return
				}
				connects.Add(1)
				sc.handshake(nil)
				d := packets.NewControlPacket(packets.DISCONNECT)
				d.Content.(*packets.Disconnect).ReasonCode = 0x9C
				d.Content.(*packets.Disconnect).Properties = &packets.Properties{ServerReference: "mqtt://pipe:1883"}
				sc.send(d)
				_ = sc.Close()
			}
		}()
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer())
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		time.Sleep(5 * time.Second)
		require.NoError(t, c.Close(context.Background()))
		n := connects.Load()
		// Default backoff: 3 redirects without waiting, then waits of up
		// to 0.5, 1, 2, 4 s: at most about 8 connections in 5 s.
		assert.LessOrEqual(t, n, int32(10), "connections in 5 s")
		assert.GreaterOrEqual(t, n, int32(4), "the first redirects are followed at once")
		t.Logf("redirect loop: %d connections in 5 s", n)
	})
}

// When the server stops reading, every call that takes a ctx returns
// within it: the send buffer fills, and Publish (QoS 0 and 1), Subscribe,
// Unsubscribe and Ping wait for ctx, not for the socket. The server keeps
// sending PINGRESPs, so the link itself looks alive until the write
// timeout.
func TestCallsReturnWithinCtxWhenServerStopsReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		go func() {
			sc := srv.accept()
			sc.handshake(nil)
			// Never read again; keep the client's reader busy.
			for sc.send(packets.NewControlPacket(packets.PINGRESP)) && srv.sleep(200*time.Millisecond) {
			}
		}()
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithKeepAlive(60*time.Second), mqttkeep.WithWriteTimeout(time.Hour))
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		const bound = 300 * time.Millisecond
		call := func(what string, f func(ctx context.Context) error) error {
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			start := time.Now()
			err := f(ctx)
			assert.LessOrEqual(t, time.Since(start), bound, "%s outlived its ctx", what)
			return err
		}
		payload := make([]byte, 64<<10)
		var err0 error
		for i := 0; err0 == nil && i < 100; i++ {
			err0 = call("QoS 0 Publish", func(ctx context.Context) error { return c.Publish(ctx, "t", payload) })
		}
		require.ErrorIs(t, err0, context.DeadlineExceeded, "the send buffer filled up")
		err = call("QoS 1 Publish", func(ctx context.Context) error { return c.Publish(ctx, "t", []byte("x"), mqttkeep.WithQoS(1)) })
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		err = call("Subscribe", func(ctx context.Context) error {
			return c.Subscribe(ctx, "a", 1, func(*mqttkeep.Message) {})
		})
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		err = call("Unsubscribe", func(ctx context.Context) error { return c.Unsubscribe(ctx, "a") })
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		err = call("Ping", func(ctx context.Context) error { _, err := c.Ping(ctx); return err })
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		err = call("Flush", c.Flush)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		require.NoError(t, c.Close(context.Background()))
	})
}

// A write that makes no progress for the write timeout ends the
// connection with ErrWriteTimeout, even while the server keeps sending.
func TestStuckWriteEndsConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		go func() {
			sc := srv.accept()
			sc.handshake(nil)
			for sc.send(packets.NewControlPacket(packets.PINGRESP)) && srv.sleep(100*time.Millisecond) {
			}
		}()
		ev := newEvents()
		c, err := mqttkeep.New(append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithKeepAlive(60*time.Second), mqttkeep.WithWriteTimeout(2*time.Second),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Hour }}))...)
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		start := time.Now()
		require.NoError(t, c.Publish(context.Background(), "t", []byte("stuck")))
		e := <-ev.lost
		assert.ErrorIs(t, e.Err, mqttkeep.ErrWriteTimeout)
		assert.Equal(t, 2*time.Second, time.Since(start))
		require.NoError(t, c.Close(context.Background()))
	})
}

// Close from a message handler and from a hook returns instead of waiting
// for itself.
func TestCloseFromCallbacks(t *testing.T) {
	b := mqttkeeptest.NewBroker(t)
	for _, from := range []string{"handler", "OnConnect", "OnDisconnect"} {
		t.Run(from, func(t *testing.T) {
			closed := make(chan error, 1)
			var c *mqttkeep.Client
			closeNow := func() { closed <- c.Close(context.Background()) }
			opts := []mqttkeep.Option{mqttkeep.WithServer(b.URL())}
			switch from {
			case "handler":
				opts = append(opts, mqttkeep.WithSubscription("close/me", 1, func(*mqttkeep.Message) { closeNow() }))
			case "OnConnect":
				opts = append(opts, mqttkeep.HooksForTest(func(mqttkeep.ConnectEvent) { closeNow() }, nil, nil, nil))
			case "OnDisconnect":
				opts = append(opts, mqttkeep.HooksForTest(nil, func(mqttkeep.DisconnectEvent) {
					if len(closed) == 0 {
						closeNow()
					}
				}, nil, nil))
			}
			var err error
			c, err = mqttkeep.New(opts...)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Connect(ctx); err != nil {
				// The OnConnect hook may close the client before Connect
				// has seen the connected state.
				require.ErrorIs(t, err, mqttkeep.ErrClosed)
			}
			switch from {
			case "handler":
				require.NoError(t, b.Publish("close/me", []byte("x"), 1))
			case "OnDisconnect":
				require.NoError(t, b.DisconnectClient(c.ClientID(), 0x98))
			}
			select {
			case err := <-closed:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("Close from a callback never returned")
			}
			assert.Equal(t, mqttkeep.StateClosed, c.State())
		})
	}
}

// A broker that never acknowledges holds at most WithInflightLimits in
// the session; publishes beyond it wait in the queue and leave it when
// their ctx ends.
func TestInflightBoundedWhenBrokerNeverAcks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		go func() {
			sc := srv.accept()
			sc.handshake(nil)
			sc.serve(nil) // PUBLISH: never acknowledged
		}()
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithInflightLimits(100, 64<<10))
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		payload := make([]byte, 1024)
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 200 {
					ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
					err := c.Publish(ctx, "never/acked", payload, mqttkeep.WithQoS(1))
					cancel()
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("publish: %v", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		st := c.Stats()
		assert.LessOrEqual(t, st.OutInFlight, 64, "64 KiB of 1 KiB messages")
		assert.LessOrEqual(t, st.OutInFlightBytes, 64<<10)
		assert.Positive(t, st.OutInFlight)
		assert.Zero(t, st.OutQueued, "messages whose ctx ended while queued were taken out")
		require.NoError(t, c.Close(context.Background()))
	})
}

// Every connect timeout is an ErrConnectTimeout, whether the dial, the
// TLS/WebSocket handshake or the CONNACK took too long.
func TestConnectTimeoutIsNamed(t *testing.T) {
	for _, scheme := range []string{"mqtt", "ws"} {
		t.Run(scheme, func(t *testing.T) {
			ln := silentListener(t)
			var mu sync.Mutex
			var errs []error
			c := newClient(t, mqttkeep.WithServer(scheme+"://"+ln),
				mqttkeep.WithConnectTimeout(20*time.Millisecond),
				mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return time.Millisecond }}),
				mqttkeep.HooksForTest(nil, nil, func(e mqttkeep.ReconnectingEvent) {
					mu.Lock()
					errs = append(errs, e.Err)
					mu.Unlock()
				}, nil))
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			_ = c.Connect(ctx) // starts the client, which keeps trying
			cancel()
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(errs) >= 30
			}, 10*time.Second, time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			for i, err := range errs[:30] {
				assert.ErrorIs(t, err, mqttkeep.ErrConnectTimeout, "attempt %d", i+1)
			}
		})
	}
}
