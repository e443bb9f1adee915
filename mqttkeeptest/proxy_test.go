package mqttkeeptest_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// silence is how long a test waits to conclude that nothing arrives.
const silence = 300 * time.Millisecond

// waitFor bounds waits for something that should happen.
const waitFor = 5 * time.Second

// echoServer is a TCP echo server on 127.0.0.1:0. Each connection echoes
// everything it reads and closes once its peer closes.
type echoServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &echoServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

func dialProxy(t *testing.T, p *mqttkeeptest.Proxy) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), waitFor)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg and reads exactly len(msg) bytes back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(waitFor)))
	_, err := c.Write([]byte(msg))
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, msg, string(got))
	require.NoError(t, c.SetDeadline(time.Time{}))
}

// expectSilence asserts that nothing arrives on c for a while and that c is
// not closed: the read times out instead of returning EOF or an error.
func expectSilence(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(silence)))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "got %d bytes %q", n, buf[:n])
	require.Zero(t, n)
	require.NoError(t, c.SetReadDeadline(time.Time{}))
}

// expectReset dials the proxy and expects the connection to be reset. The
// reset can race with the end of the client's connect, so it may surface
// from the dial itself or from the first read.
func expectReset(t *testing.T, p *mqttkeeptest.Proxy) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), waitFor)
	if err == nil {
		defer c.Close()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
		_, err = c.Read(make([]byte, 1))
	}
	require.ErrorIs(t, err, syscall.ECONNRESET)
}

func TestProxyPassEchoes(t *testing.T) {
	echo := startEcho(t)
	p := mqttkeeptest.NewProxy(t, echo.addr())
	assert.Equal(t, "mqtt://"+p.Addr(), p.URL())

	c := dialProxy(t, p)
	roundTrip(t, c, "hello")
	roundTrip(t, c, "world")

	// A larger stream survives intact and in order.
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Write(data); errc <- err }()
	got := make([]byte, len(data))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.NoError(t, <-errc)
	require.True(t, bytes.Equal(data, got))

	// A half-close travels through the proxy and the echo server's close
	// comes back as EOF.
	require.NoError(t, c.CloseWrite())
	rest, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Empty(t, rest)
	require.Eventually(t, func() bool { return p.Active() == 0 }, waitFor, 10*time.Millisecond)
}

func TestProxyBlackhole(t *testing.T) {
	for _, tc := range []struct {
		name string
		// newConn dials after Blackhole instead of before.
		newConn bool
	}{
		{name: "existing connection"},
		{name: "new connection", newConn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo := startEcho(t)
			p := mqttkeeptest.NewProxy(t, echo.addr())
			var c *net.TCPConn
			if !tc.newConn {
				c = dialProxy(t, p)
				roundTrip(t, c, "before")
			}
			p.Blackhole()
			if tc.newConn {
				c = dialProxy(t, p)
			}

			// Writes succeed, even far more than socket buffers hold:
			// the proxy keeps reading and dropping.
			require.NoError(t, c.SetWriteDeadline(time.Now().Add(waitFor)))
			_, err := c.Write([]byte("lost"))
			require.NoError(t, err)
			_, err = c.Write(make([]byte, 16<<20))
			require.NoError(t, err)
			require.NoError(t, c.SetWriteDeadline(time.Time{}))

			// Nothing comes back, and the socket is not closed.
			expectSilence(t, c)
			assert.Equal(t, 1, p.Active())

			// The link comes back: dropped bytes stay dropped, new ones
			// are forwarded.
			p.Pass()
			roundTrip(t, c, "back")
			assert.Equal(t, 1, p.Connections())
		})
	}
}

func TestProxyBlackholeHoldsFIN(t *testing.T) {
	echo := startEcho(t)
	p := mqttkeeptest.NewProxy(t, echo.addr())
	c := dialProxy(t, p)
	roundTrip(t, c, "x")

	p.Blackhole()
	require.NoError(t, c.CloseWrite())
	// The FIN does not reach the echo server, so it does not close.
	expectSilence(t, c)

	p.Pass()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	rest, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Empty(t, rest)
}

func TestProxyStall(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newConn bool
	}{
		{name: "existing connection"},
		{name: "new connection", newConn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo := startEcho(t)
			p := mqttkeeptest.NewProxy(t, echo.addr())
			var c *net.TCPConn
			if !tc.newConn {
				c = dialProxy(t, p)
				roundTrip(t, c, "before")
			}
			p.Stall()
			if tc.newConn {
				c = dialProxy(t, p)
			}

			// Drain everything echoed back, so only the stall can make
			// the writer block.
			var received atomic.Int64
			readDone := make(chan struct{})
			go func() {
				defer close(readDone)
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					received.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()

			chunk := make([]byte, 1<<20)
			var written int64
			var werr error
			for written < 512<<20 {
				require.NoError(t, c.SetWriteDeadline(time.Now().Add(silence)))
				n, err := c.Write(chunk)
				written += int64(n)
				if err != nil {
					werr = err
					break
				}
			}
			require.ErrorIs(t, werr, os.ErrDeadlineExceeded, "wrote %d bytes without blocking", written)
			assert.Zero(t, received.Load())
			assert.Equal(t, 1, p.Active())

			// Reading resumes and everything written arrives.
			p.Pass()
			require.NoError(t, c.SetWriteDeadline(time.Now().Add(waitFor)))
			n, err := c.Write(chunk)
			require.NoError(t, err)
			written += int64(n)
			require.Eventually(t, func() bool { return received.Load() == written },
				waitFor, 10*time.Millisecond, "received %d of %d", received.Load(), written)

			require.NoError(t, c.Close())
			<-readDone
		})
	}
}

func TestProxyDelay(t *testing.T) {
	const d = 150 * time.Millisecond
	echo := startEcho(t)
	p := mqttkeeptest.NewProxy(t, echo.addr())
	c := dialProxy(t, p)
	roundTrip(t, c, "warm up")

	p.Delay(d)
	start := time.Now()
	roundTrip(t, c, "slow")
	rtt := time.Since(start)
	assert.GreaterOrEqual(t, rtt, 2*d)

	// Throughput is not serialized by the latency: many writes in a row
	// all arrive, in order, after about one round trip. (The 1 ms pauses
	// are the scenario: they make the writes separate chunks.)
	var want bytes.Buffer
	start = time.Now()
	for i := range 50 {
		msg := []byte{byte(i), byte(i >> 8), 'm'}
		want.Write(msg)
		_, err := c.Write(msg)
		require.NoError(t, err)
		time.Sleep(time.Millisecond)
	}
	got := make([]byte, want.Len())
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, want.Bytes(), got)
	assert.GreaterOrEqual(t, time.Since(start), 2*d)
	// Serialized, the 50 chunks would take 50 × 150 ms = 7.5 s; 4 s
	// leaves room for 50 short sleeps on a loaded machine.
	assert.Less(t, time.Since(start), 4*time.Second, "delay serialized the chunks")

	// Switching back to Pass while bytes are still queued keeps the order.
	data := make([]byte, 2<<20)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data[:len(data)/2])
		if err == nil {
			p.Pass()
			_, err = c.Write(data[len(data)/2:])
		}
		errc <- err
	}()
	got = make([]byte, len(data))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.NoError(t, <-errc)
	require.True(t, bytes.Equal(data, got), "stream corrupted across Delay -> Pass")

	// Delayed, every round trip takes at least 2 × 150 ms; the fastest of
	// five stays under 150 ms even when a loaded machine slows some.
	fastest := time.Hour
	for range 5 {
		start = time.Now()
		roundTrip(t, c, "fast again")
		fastest = min(fastest, time.Since(start))
	}
	assert.Less(t, fastest, d)
}

func TestProxyResetAndCloseAll(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    func(*mqttkeeptest.Proxy)
		act     func(*mqttkeeptest.Proxy)
		wantErr func(t *testing.T, err error)
	}{
		{
			name: "reset",
			mode: (*mqttkeeptest.Proxy).Pass,
			act:  (*mqttkeeptest.Proxy).Reset,
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, syscall.ECONNRESET)
			},
		},
		{
			name: "reset while blackholed",
			mode: (*mqttkeeptest.Proxy).Blackhole,
			act:  (*mqttkeeptest.Proxy).Reset,
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, syscall.ECONNRESET)
			},
		},
		{
			name: "close all",
			mode: (*mqttkeeptest.Proxy).Pass,
			act:  (*mqttkeeptest.Proxy).CloseAll,
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, io.EOF)
			},
		},
		{
			name: "close all while stalled",
			mode: (*mqttkeeptest.Proxy).Stall,
			act:  (*mqttkeeptest.Proxy).CloseAll,
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, io.EOF)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo := startEcho(t)
			p := mqttkeeptest.NewProxy(t, echo.addr())
			c1, c2 := dialProxy(t, p), dialProxy(t, p)
			roundTrip(t, c1, "one")
			roundTrip(t, c2, "two")
			tc.mode(p)
			require.Equal(t, 2, p.Active())

			tc.act(p)
			for _, c := range []net.Conn{c1, c2} {
				require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
				_, err := c.Read(make([]byte, 1))
				tc.wantErr(t, err)
			}
			require.Equal(t, 0, p.Active())

			// The proxy keeps serving new connections in the same mode.
			p.Pass()
			roundTrip(t, dialProxy(t, p), "three")
			assert.Equal(t, 3, p.Connections())
		})
	}
}

func TestProxyRefuse(t *testing.T) {
	echo := startEcho(t)
	p := mqttkeeptest.NewProxy(t, echo.addr())
	live := dialProxy(t, p)
	roundTrip(t, live, "live")

	p.Refuse(true)
	expectReset(t, p)
	// Existing connections are unaffected.
	roundTrip(t, live, "still live")
	assert.Equal(t, 2, p.Connections())
	assert.Equal(t, 1, p.Active())

	p.Refuse(false)
	roundTrip(t, dialProxy(t, p), "back")
	assert.Equal(t, 3, p.Connections())
}

func TestProxyTargetDown(t *testing.T) {
	// Reserve a port, then close it so nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	target := ln.Addr().String()
	require.NoError(t, ln.Close())

	p := mqttkeeptest.NewProxy(t, target)
	expectReset(t, p)
	assert.Equal(t, 1, p.Connections())
	require.Eventually(t, func() bool { return p.Active() == 0 }, waitFor, 10*time.Millisecond)
}

func TestProxyModeSwitchingRepeatedly(t *testing.T) {
	echo := startEcho(t)
	p := mqttkeeptest.NewProxy(t, echo.addr())
	c := dialProxy(t, p)
	for range 3 {
		p.Stall()
		p.Blackhole()
		p.Delay(time.Millisecond)
		roundTrip(t, c, "delay")
		p.Stall()
		p.Pass()
		roundTrip(t, c, "pass")
	}
}

func TestProxyCloseLeavesNoGoroutines(t *testing.T) {
	echo := startEcho(t)
	ignore := goleak.IgnoreCurrent()

	p, err := mqttkeeptest.StartProxy(echo.addr())
	require.NoError(t, err)

	// Connections in every state: idle, stalled with full buffers,
	// delayed with queued data, blackholed, half-closed.
	idle := dialProxy(t, p)
	roundTrip(t, idle, "idle")

	halfClosed := dialProxy(t, p)
	roundTrip(t, halfClosed, "half")
	require.NoError(t, halfClosed.CloseWrite())

	p.Delay(time.Hour)
	delayed := dialProxy(t, p)
	_, err = delayed.Write(make([]byte, 1<<20))
	require.NoError(t, err)

	p.Stall()
	stalled := dialProxy(t, p)
	stallDone := make(chan error, 1)
	go func() {
		_ = stalled.SetWriteDeadline(time.Now().Add(waitFor))
		_, err := stalled.Write(make([]byte, 64<<20))
		stallDone <- err
	}()

	p.Blackhole()
	_ = dialProxy(t, p)
	require.Eventually(t, func() bool { return p.Connections() == 5 }, waitFor, 10*time.Millisecond)

	start := time.Now()
	p.Close()
	p.Close() // idempotent
	// Close must not wait for the hour of delay or the stalled writer's
	// 5 s deadline; 2 s leaves room for a loaded machine.
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, 0, p.Active())

	// The stalled writer is released by the close.
	require.Error(t, <-stallDone)
	// Mode changes after Close are harmless.
	p.Pass()
	p.Reset()
	p.CloseAll()

	// The echo server's handlers end once the proxy closed its side.
	goleak.VerifyNone(t, ignore)
}
