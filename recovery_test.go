package mqttkeep_test

import (
	"context"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restartable is a broker behind in-memory pipes that can go down (its
// port refuses: the dialer fails with ECONNREFUSED at once, as a host
// with nothing listening answers) and come back as a fresh broker with
// no sessions, as after a restart. It counts dials and CONNECTs.
type restartable struct {
	mu       sync.Mutex
	broker   *mqttkeeptest.Broker
	down     bool
	dials    atomic.Int64
	connects atomic.Int64 // CONNECT packets that reached a broker
	all      []*mqttkeeptest.Broker
}

func newRestartable(t *testing.T) *restartable {
	r := &restartable{}
	r.restart(t)
	return r
}

func (r *restartable) restart(t *testing.T) {
	b, err := mqttkeeptest.StartPipeBroker()
	require.NoError(t, err)
	r.mu.Lock()
	if r.broker != nil {
		r.broker.Close() // drops every connection, as a dying process does
	}
	r.broker, r.down = b, false
	r.all = append(r.all, b)
	r.mu.Unlock()
}

func (r *restartable) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broker.Close()
	r.down = true
}

func (r *restartable) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.all {
		b.Close()
	}
}

func (r *restartable) dialer() mqttkeep.Option {
	return mqttkeep.WithDialer(func(context.Context, *url.URL) (net.Conn, error) {
		r.dials.Add(1)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		r.connects.Add(1)
		return r.broker.Pipe(), nil
	})
}

// percentile returns the p-th percentile (0..1) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// After an outage of D (the port refusing meanwhile), the client is back
// within D + 1 s at the 99th percentile: outages of 1 to 10 s, and
// restarts 3 to 7 s apart, 100 of each, with the default policy.
func TestRecoveryWithinOutagePlusOneSecond(t *testing.T) {
	cases := []struct {
		name   string
		outage func() time.Duration
		up     func() time.Duration // how long the broker stays up between restarts
	}{
		{"1s outage", func() time.Duration { return time.Second }, func() time.Duration { return 20 * time.Second }},
		{"10s outage", func() time.Duration { return 10 * time.Second }, func() time.Duration { return 20 * time.Second }},
		{"restarts 3-7s apart", func() time.Duration { return time.Second }, func() time.Duration { return 3*time.Second + rand.N(4*time.Second) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRestartable(t)
				defer r.close()
				connected := make(chan time.Time, 200)
				c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), r.dialer(),
					mqttkeep.WithSubscription("t", 1, func(*mqttkeep.Message) {}),
					mqttkeep.HooksForTest(func(mqttkeep.ConnectEvent) { connected <- time.Now() }, nil, nil, nil))
				require.NoError(t, err)
				require.NoError(t, c.Connect(context.Background()))
				<-connected
				var waits []time.Duration
				for range 100 {
					time.Sleep(tc.up())
					r.stop()
					time.Sleep(tc.outage())
					r.restart(t)
					upAt := time.Now()
					waits = append(waits, (<-connected).Sub(upAt))
				}
				require.NoError(t, c.Close(context.Background()))
				p50, p99, worst := percentile(waits, 0.5), percentile(waits, 0.99), slices.Max(waits)
				t.Logf("%s: broker back -> connected: median %v, p99 %v, max %v (100 outages)", tc.name, p50, p99, worst)
				assert.LessOrEqual(t, p99, time.Second)
			})
		})
	}
}

// A broker that refuses with a retryable code gets at most 12 CONNECTs
// in 60 s; a port that refuses gets none — only dials.
func TestAttemptsDuringAMinuteOutage(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(r *restartable, id string)
		maxConn int64
	}{
		{"port refuses", func(r *restartable, _ string) { r.stop() }, 0},
		{"CONNACK 0x88 server unavailable", func(r *restartable, id string) {
			r.broker.Refuse(0x88)
			_ = r.broker.DisconnectClient(id, 0x89)
		}, 12},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRestartable(t)
				defer r.close()
				c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), r.dialer(), mqttkeep.WithClientID("outage"))
				require.NoError(t, err)
				require.NoError(t, c.Connect(context.Background()))
				before, dials := r.connects.Load(), r.dials.Load()
				tc.setup(r, "outage")
				time.Sleep(60 * time.Second)
				require.NoError(t, c.Close(context.Background()))
				n := r.connects.Load() - before
				t.Logf("%s: %d CONNECTs, %d dials in 60 s", tc.name, n, r.dials.Load()-dials)
				assert.LessOrEqual(t, n, tc.maxConn)
			})
		})
	}
}

// A broker in a crash loop — it accepts CONNECT, answers CONNACK and drops
// the connection before any exchange — gets at most 12 CONNECTs in 60 s:
// such a connection counts as a failed attempt.
func TestCrashLoopingBrokerBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		var connects atomic.Int32
		go func() {
			for {
				var sc *scriptConn
				select {
				case sc = <-srv.conns:
				case <-srv.stop:
					return
				}
				connects.Add(1)
				sc.handshake(nil)
				_ = sc.Close()
			}
		}()
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), srv.dialer())
		require.NoError(t, err)
		start, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		_ = c.Connect(start)
		cancel()
		time.Sleep(60 * time.Second)
		require.NoError(t, c.Close(context.Background()))
		t.Logf("crash-looping broker: %d CONNECTs in 60 s", connects.Load())
		assert.LessOrEqual(t, connects.Load(), int32(12))
	})
}

// A storm: 300 clients of one process lose the broker at once for 2 s.
// Their CONNECTs come back spread out (at most 300/8 per 100 ms), all are
// back and resubscribed within 2.5 s of the broker, and none fails more
// than 3 attempts.
func TestStormSpreadsReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 300
		r := newRestartable(t)
		defer r.close()
		var mu sync.Mutex
		var back []time.Time
		attempts := make([]atomic.Int32, n)
		clients := make([]*mqttkeep.Client, n)
		for i := range n {
			c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), r.dialer(),
				mqttkeep.WithSubscription("storm/t", 1, func(*mqttkeep.Message) {}),
				mqttkeep.HooksForTest(nil, nil, func(mqttkeep.ReconnectingEvent) { attempts[i].Add(1) }, nil),
				mqttkeep.HooksForTest(func(e mqttkeep.ConnectEvent) {
					if e.Downtime > 0 {
						mu.Lock()
						back = append(back, time.Now())
						mu.Unlock()
					}
				}, nil, nil, nil))
			require.NoError(t, err)
			require.NoError(t, c.Connect(context.Background()))
			clients[i] = c
		}
		time.Sleep(time.Second)
		r.stop()
		time.Sleep(2 * time.Second)
		r.restart(t)
		upAt := time.Now()
		time.Sleep(5 * time.Second)
		for _, c := range clients {
			require.NoError(t, c.Close(context.Background()))
		}
		require.Len(t, back, n, "every client came back")
		bins := map[time.Duration]int{}
		var last time.Duration
		for _, at := range back {
			d := at.Sub(upAt)
			bins[d/(100*time.Millisecond)]++
			last = max(last, d)
		}
		peak := 0
		for _, v := range bins {
			peak = max(peak, v)
		}
		worst := int32(0)
		for i := range attempts {
			worst = max(worst, attempts[i].Load())
		}
		t.Logf("storm of %d: peak %d CONNECTs per 100 ms, last client back %v after the broker, most failed attempts %d",
			n, peak, last, worst-1)
		assert.LessOrEqual(t, peak, n/8)
		assert.LessOrEqual(t, last, 2500*time.Millisecond)
		assert.LessOrEqual(t, worst-1, int32(3), "failed attempts per client")
	})
}

// The same poison after every resumed session (here: a topic alias the
// broker never set, sent right after CONNACK) makes the client give the
// session up after 3 connections and start a new one, instead of dying
// on it forever.
func TestPoisonedSessionAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScripted(t)
		defer srv.close()
		var cleanStarts []bool
		var mu sync.Mutex
		go func() {
			for {
				var sc *scriptConn
				select {
				case sc = <-srv.conns:
				case <-srv.stop:
					return
				}
				cp := sc.read()
				if cp == nil {
					continue
				}
				conn := cp.Content.(*packets.Connect)
				mu.Lock()
				cleanStarts = append(cleanStarts, conn.CleanStart)
				mu.Unlock()
				ca := packets.NewControlPacket(packets.CONNACK)
				ca.Content.(*packets.Connack).SessionPresent = !conn.CleanStart
				ca.Content.(*packets.Connack).Properties = &packets.Properties{}
				sc.send(ca)
				if !conn.CleanStart {
					sc.raw([]byte{0x30, 0x06, 0, 0, 3, 0x23, 0, 1}) // alias 1, never set
				}
				go sc.serve(nil)
			}
		}()
		ev := newEvents()
		c, err := mqttkeep.New(append(ev.options(), mqttkeep.WithServer("mqtt://pipe"), srv.dialer(),
			mqttkeep.WithCleanStart(false), mqttkeep.WithInboundTopicAliases(8),
			mqttkeep.WithReconnect(mqttkeep.ReconnectPolicy{Delay: func(int) time.Duration { return 100 * time.Millisecond }}))...)
		require.NoError(t, err)
		start, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		_ = c.Connect(start)
		cancel()
		time.Sleep(5 * time.Second)
		st := c.Stats()
		require.NoError(t, c.Close(context.Background()))
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []bool{false, false, false, true}, cleanStarts, "Clean Start per connection")
		assert.EqualValues(t, 1, st.SessionsAbandoned)
		assert.Equal(t, mqttkeep.StateClosed, c.State())
		assert.True(t, ev.disconnectEvent(t, 2).NewSession, "the third loss announces the new session")
		assert.ErrorIs(t, ev.disconnectEvent(t, 0).Err, mqttkeep.ErrProtocolViolation)
	})
}

// partitionDialer models a dial through a network partition the way the
// kernel handles it: while partitioned every SYN is lost; a dial in
// progress then only completes at its next SYN retransmission after the
// heal (1, 3, 7, 15 s after it started), and a dial started after the
// heal completes at once.
type partitionDialer struct {
	link   *pipeLink // blackholed while partitioned
	mu     sync.Mutex
	healed chan struct{}
	parted bool
	dials  atomic.Int32
}

func (p *partitionDialer) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parted, p.healed = true, make(chan struct{})
	p.link.blackhole.Store(true)
}

func (p *partitionDialer) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parted = false
	p.link.blackhole.Store(false)
	close(p.healed)
}

func (p *partitionDialer) dial(ctx context.Context, _ *url.URL) (net.Conn, error) {
	p.dials.Add(1)
	start := time.Now()
	p.mu.Lock()
	parted, healed := p.parted, p.healed
	p.mu.Unlock()
	if !parted {
		return p.link.connect(), nil
	}
	select {
	case <-healed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for _, rt := range []time.Duration{time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second} {
		if wait := time.Until(start.Add(rt)); wait >= 0 {
			select {
			case <-time.After(wait):
				return p.link.connect(), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// After an 8 s partition the client is connected again within one overlap
// interval of the heal, not at the kernel's next SYN retransmission: a dial
// that has not completed is overlapped by a fresh one (modelled in
// synctest by partitionDialer; TestDialOverlapsAfterPartition runs real
// sockets).
func TestOverlappingDialsAfterPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttkeeptest.StartPipeBroker()
		require.NoError(t, err)
		defer b.Close()
		pd := &partitionDialer{link: &pipeLink{broker: b}, healed: make(chan struct{})}
		connected := make(chan time.Time, 16)
		lost := make(chan struct{}, 16)
		c, err := mqttkeep.New(mqttkeep.WithServer("mqtt://pipe"), mqttkeep.WithDialer(pd.dial),
			mqttkeep.WithKeepAlive(2*time.Second), mqttkeep.WithPingTimeout(time.Second),
			mqttkeep.HooksForTest(func(mqttkeep.ConnectEvent) { connected <- time.Now() }, nil, nil, nil),
			mqttkeep.HooksForTest(nil, func(mqttkeep.DisconnectEvent) { lost <- struct{}{} }, nil, nil))
		require.NoError(t, err)
		require.NoError(t, c.Connect(context.Background()))
		<-connected
		var waits []time.Duration
		for range 20 {
			pd.partition()
			<-lost // the ping timeout
			time.Sleep(8*time.Second + rand.N(time.Second))
			pd.heal()
			healAt := time.Now()
			waits = append(waits, (<-connected).Sub(healAt))
			time.Sleep(rand.N(5 * time.Second))
		}
		require.NoError(t, c.Close(context.Background()))
		pd.link.wg.Wait()
		t.Logf("heal -> connected after 8 s partitions: median %v, max %v (20 runs, %d dials)",
			percentile(waits, 0.5), slices.Max(waits), pd.dials.Load())
		assert.LessOrEqual(t, percentile(waits, 0.5), 500*time.Millisecond)
		assert.LessOrEqual(t, slices.Max(waits), time.Second)
	})
}
