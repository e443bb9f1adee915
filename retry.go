package mqttkeep

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Backoff is exponential backoff with full jitter: the wait before retry n ≥
// 1 is uniform in [0, min(Max, Initial × Multiplier^(n−1))].
type Backoff struct {
	// Initial bounds the first wait; > 0.
	Initial time.Duration
	// Max caps every wait; ≥ Initial.
	Max time.Duration
	// Multiplier grows the bound per failure; ≥ 1.
	Multiplier float64
}

// DefaultBackoff is [ReconnectPolicy]'s default: 500 ms doubling up to 60 s.
var DefaultBackoff = Backoff{Initial: 500 * time.Millisecond, Max: 60 * time.Second, Multiplier: 2}

// DefaultDialRetry is [ReconnectPolicy]'s default DialRetry.
const DefaultDialRetry = 900 * time.Millisecond

func (b Backoff) validate() error {
	switch {
	case b.Initial <= 0:
		return fmt.Errorf("initial must be positive, got %v", b.Initial)
	case b.Max < b.Initial:
		return fmt.Errorf("max %v is below initial %v", b.Max, b.Initial)
	case !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0):
		return fmt.Errorf("multiplier must be a finite number >= 1, got %v", b.Multiplier)
	}
	return nil
}

// Delay returns the wait before retry n (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	bound := float64(b.Initial) * math.Pow(b.Multiplier, float64(max(n, 1)-1))
	if bound > float64(b.Max) || math.IsInf(bound, 0) || math.IsNaN(bound) {
		bound = float64(b.Max)
	}
	return time.Duration(rand.Int64N(int64(bound) + 1))
}

// The reconnect policy. A failure is one of two kinds, and each has its
// own schedule:
//
//   - Below MQTT: the dial failed (the port refuses, no route, DNS, the
//     dial timed out), or a connection that had carried an exchange was
//     lost. Retrying costs the broker nothing (no CONNECT reaches it), so
//     the client tries on a grid of DialRetry: attempt k happens at
//     epoch + (k + phase) × DialRetry. After the broker comes back, a
//     client is connected within one grid interval (the recovery bound
//     D + DialRetry for an outage of D). The phase is taken, per client,
//     from a low-discrepancy sequence (golden ratio) with a random start
//     per process: N clients of one process that lose the same broker
//     come back evenly spread over one interval, N × 0.1 s / DialRetry per
//     100 ms; clients of different processes have independent phases.
//   - At MQTT: the broker answered and refused (a retryable CONNACK code,
//     a connect timeout after the socket was up) or the connection dropped
//     before any exchange (a crash-looping broker, a flap, a session
//     taken over without DISCONNECT 0x8E). These wait [Backoff] (full
//     jitter, growing), so a broker that cannot serve gets at most a
//     handful of CONNECTs a minute.
//
// The MQTT backoff starts over once a connection carried an exchange
// (any packet from the broker after CONNACK but DISCONNECT).

// phaseSeq hands out grid phases: frac(start + k × golden ratio).
var phaseSeq atomic.Uint64

func init() { phaseSeq.Store(rand.Uint64()) }

// newPhase returns a fraction of the grid interval in [0, 1).
func newPhase() float64 {
	const golden = 0x9E3779B97F4A7C15 // 2^64 / φ
	v := phaseSeq.Add(golden)
	return float64(v>>11) / (1 << 53)
}

// gridEpoch anchors every client's grid in this process.
var gridEpoch = time.Now()

// gridWait returns the wait until the next grid point of interval at the
// given phase, at least min from now.
func gridWait(now time.Time, interval time.Duration, phase float64, min time.Duration) time.Duration {
	offset := time.Duration(phase * float64(interval))
	since := now.Sub(gridEpoch) - offset
	k := since / interval
	if since < 0 && since%interval != 0 {
		k-- // floor, not truncation
	}
	wait := (k+1)*interval - since
	for wait < min {
		wait += interval
	}
	return wait
}

// belowMQTT reports whether err is a failure that never reached MQTT: the
// dial (TCP, TLS or WebSocket) failed.
func belowMQTT(err error) bool {
	var de *dialError
	return errors.As(err, &de)
}

// dialError marks a failed dial.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// refused reports a dial the host answered with a refusal (nothing
// listens), as opposed to one that timed out.
func refused(err error) bool {
	var oe *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &oe) && errors.Is(oe.Err, syscall.ECONNRESET))
}

// retryState is the supervisor's reconnect bookkeeping.
type retryState struct {
	due      bool    // the next attempt waits
	below    bool    // the last failure was below MQTT (or a working connection was lost)
	failures int     // failures at MQTT since the last connection that carried an exchange
	retries  int     // attempts since then, of any kind (ReconnectPolicy.Delay's n)
	hops     int     // redirects followed since then
	phase    float64 // this client's place on the retry grid
	poison   int     // resumed sessions in a row that died of a protocol failure before any exchange

	dialTimeouts int       // attempts in a row whose dials timed out (a partition)
	attemptAt    time.Time // when the last attempt began
	failover     bool      // the next attempt goes to another server after a loss
}

// minAttemptSpacing is the least time between the starts of attempts
// whose dials all timed out, and the most jitter added to the wait after
// one: in a long partition a client makes one dial per attempt (overlap.go
// for the first seconds), an attempt every connect timeout + 0 to 5 s
// (every 5 to 10 s with a connect timeout under 5 s), and a fleet cut off
// at once does not dial in step.
const minAttemptSpacing = 5 * time.Second

// partitioned reports whether the last attempts' dials timed out: the
// network drops SYNs, and trying every server at once would only add
// SYNs.
func (rs *retryState) partitioned() bool { return rs.dialTimeouts > 0 }

// failed records a failed attempt.
func (rs *retryState) failed(below bool) {
	rs.due, rs.below = true, below
	rs.retries++
	if !below {
		rs.failures++
	}
}

// lost records a lost connection: one that carried an exchange resets the
// backoff (and the redirect budget); one that did not counts as a failed
// attempt at MQTT, and so does a redirect it ended with, so that a server
// that accepts and then drops or redirects (to itself, or to another
// such server) cannot make the client loop without backing off.
func (rs *retryState) lost(healthy bool) {
	rs.due = true
	if healthy {
		rs.below, rs.failures, rs.retries, rs.hops = true, 0, 0, 0
		return
	}
	rs.below = false
	rs.failures++
	rs.retries++
}

// poisoned reports whether l's loss makes limit resumed sessions in a row
// that ended with a protocol failure before any exchange.
func (rs *retryState) poisoned(l *link, healthy bool, limit int) bool {
	bad := l.sessionPresent && !healthy &&
		(errors.Is(l.cause, ErrMalformedPacket) || errors.Is(l.cause, ErrProtocolViolation) || errors.Is(l.cause, ErrPacketTooLarge))
	if !bad {
		rs.poison = 0
		return false
	}
	rs.poison++
	if limit > 0 && rs.poison >= limit {
		rs.poison = 0
		return true
	}
	return false
}

// retryDelay is the wait before the next attempt.
func (c *Client) retryDelay(rs *retryState) time.Duration {
	switch {
	case c.cfg.backoffFunc != nil:
		return max(c.cfg.backoffFunc(rs.retries), 0)
	case rs.below:
		now := time.Now()
		interval := c.cfg.dialRetry
		if rs.failover {
			// Another server after a loss: it is likely up, and a client
			// on a cluster should be back within a second; half the grid
			// still spreads a fleet that lost the same node.
			interval /= 2
		}
		wait := gridWait(now, interval, rs.phase, 10*time.Millisecond)
		if rs.partitioned() {
			// At least minAttemptSpacing between attempt starts, and a
			// random wait of up to as much again: clients cut off at
			// the same moment (one dead link) drift apart.
			wait = max(wait, rs.attemptAt.Add(minAttemptSpacing).Sub(now)) + rand.N(minAttemptSpacing)
		}
		return wait
	}
	return c.cfg.backoff.Delay(rs.failures)
}
