//go:build linux

package mqttkeep_test

import (
	"flag"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqttkeep/mqttkeep"
	"github.com/mqttkeep/mqttkeep/mqttkeeptest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// partitionRuns and partitionLength set the long form of
// TestDialOverlapsAfterPartition: go test -run TestDialOverlapsAfterPartition
// -partition-runs 5 -partition 8s -v .
var (
	partitionRuns   = flag.Int("partition-runs", 1, "TestDialOverlapsAfterPartition: how many partitions")
	partitionLength = flag.Duration("partition", 4*time.Second, "TestDialOverlapsAfterPartition: how long each partition lasts")
)

// synDropper is a TCP front for a broker on 127.0.0.1 that can drop SYNs,
// as a partitioned network does: its listen backlog is 1, and while
// partitioned it stops accepting and fills the backlog with connections of
// its own, so the kernel drops every new SYN (net.ipv4.tcp_abort_on_overflow
// is 0 by default) and a client's dial waits on its SYN retransmissions.
// Bytes on connections already up are dropped both ways meanwhile.
type synDropper struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	parted   bool
	fillers  []net.Conn
	accepted int
	active   map[net.Conn]struct{}
	resume   chan struct{}
	wg       sync.WaitGroup
}

func newSynDropper(t *testing.T, target string) *synDropper {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 1))
	f := os.NewFile(uintptr(fd), "syndropper")
	ln, err := net.FileListener(f)
	require.NoError(t, err)
	_ = f.Close()
	d := &synDropper{ln: ln, target: target, active: map[net.Conn]struct{}{}, resume: make(chan struct{})}
	close(d.resume)
	d.wg.Add(1)
	go d.acceptLoop()
	t.Cleanup(func() {
		_ = ln.Close()
		d.heal()
		d.mu.Lock()
		for c := range d.active {
			_ = c.Close()
		}
		d.mu.Unlock()
		d.wg.Wait()
	})
	return d
}

func (d *synDropper) addr() string { return d.ln.Addr().String() }

func (d *synDropper) acceptLoop() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		resume := d.resume
		d.mu.Unlock()
		<-resume
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		if d.parted { // a filler, or a SYN that beat the partition: keep it in the queue's stead
			d.fillers = append(d.fillers, c)
			d.mu.Unlock()
			continue
		}
		d.accepted++
		d.active[c] = struct{}{}
		d.mu.Unlock()
		up, err := net.Dial("tcp", d.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		d.mu.Lock()
		d.active[up] = struct{}{}
		d.mu.Unlock()
		d.wg.Add(2)
		go d.pipe(c, up)
		go d.pipe(up, c)
	}
}

// pipe copies src to dst, dropping bytes while partitioned.
func (d *synDropper) pipe(dst, src net.Conn) {
	defer d.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		d.mu.Lock()
		parted := d.parted
		d.mu.Unlock()
		if n > 0 && !parted {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			_ = src.Close()
			_ = dst.Close()
			d.mu.Lock()
			delete(d.active, src)
			delete(d.active, dst)
			d.mu.Unlock()
			return
		}
	}
}

// partition stops accepting and fills the backlog.
func (d *synDropper) partition(t *testing.T) {
	d.mu.Lock()
	d.parted = true
	d.resume = make(chan struct{})
	d.mu.Unlock()
	// The accept loop may be inside Accept: give it one connection to
	// take, then fill the queue (backlog 1 holds 2) until a dial times out.
	for range 4 {
		c, err := net.DialTimeout("tcp", d.addr(), 200*time.Millisecond)
		if err != nil {
			break // the queue is full: SYNs are dropped from here on
		}
		d.mu.Lock()
		d.fillers = append(d.fillers, c)
		d.mu.Unlock()
	}
}

// heal lets SYNs through again: the queue is emptied and accepting resumes.
func (d *synDropper) heal() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.parted {
		return
	}
	d.parted = false
	for _, c := range d.fillers {
		_ = c.Close()
	}
	d.fillers = nil
	close(d.resume)
}

// open returns the connections carrying traffic now.
func (d *synDropper) open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.active) / 2 // both ends of each connection are tracked
}

// After a partition that drops SYNs, a client reconnects within about
// one overlap interval of the heal, not at the kernel's next SYN
// retransmission (+1, +3, +7 s...): a dial that has not completed is
// overlapped by a fresh one every 200 ms to 1 s. Real sockets are needed
// (the kernel's SYN handling is the point). Slack: the bound is
// 0.5 s + 0.5 s for a loaded machine; the kernel alone would need up to
// several seconds. One socket stays open.
func TestDialOverlapsAfterPartition(t *testing.T) {
	t.Parallel()
	b := mqttkeeptest.NewBroker(t)
	d := newSynDropper(t, b.Addr())
	connected := make(chan time.Time, 16)
	lost := make(chan struct{}, 16)
	c := newClient(t, mqttkeep.WithServer("mqtt://"+d.addr()), mqttkeep.WithKeepAlive(2*time.Second),
		mqttkeep.WithPingTimeout(time.Second),
		mqttkeep.HooksForTest(func(mqttkeep.ConnectEvent) { connected <- time.Now() }, nil, nil, nil),
		mqttkeep.HooksForTest(nil, func(mqttkeep.DisconnectEvent) { lost <- struct{}{} }, nil, nil))
	connect(t, c)
	<-connected
	var waits []time.Duration
	var dials []uint64
	for range *partitionRuns {
		before := c.Stats().Dials
		d.partition(t)
		select {
		case <-lost:
		case <-time.After(10 * time.Second):
			t.Fatal("the partition was never detected")
		}
		time.Sleep(*partitionLength) // the partition is the scenario
		d.heal()
		healAt := time.Now()
		dials = append(dials, c.Stats().Dials-before)
		select {
		case at := <-connected:
			waits = append(waits, at.Sub(healAt))
		case <-time.After(15 * time.Second):
			t.Fatal("never reconnected after the heal")
		}
	}
	assert.Eventually(t, func() bool { return d.open() == 1 }, 5*time.Second, time.Millisecond, "one connection left open")
	t.Logf("heal -> connected after %v partitions: %v (median %v); dials during each: %v (budget %d)",
		*partitionLength, waits, percentile(waits, 0.5), dials, dialBudget(*partitionLength))
	if *partitionLength < 10*time.Second {
		assert.LessOrEqual(t, slices.Max(waits), time.Second)
	} else {
		assert.LessOrEqual(t, slices.Max(waits), 8*time.Second, "the next dial or a SYN retransmission")
	}
	for _, n := range dials {
		assert.LessOrEqual(t, n, dialBudget(*partitionLength), "dials during a %v partition", *partitionLength)
	}
}

// dialBudget is the most dials a partition of length p may cost (from its
// detection, which the client makes after K/2 + T): two per 2 s in its
// first 10 s, then one per attempt, attempts at least 10 s apart with the
// default connect timeout — and one dial of slack for the timer's edge.
func dialBudget(p time.Duration) uint64 {
	n := uint64(0)
	for at := time.Duration(0); at < min(p, 10*time.Second); at += 2 * time.Second {
		n++
		if at+500*time.Millisecond < p {
			n++
		}
	}
	if p > 10*time.Second {
		n += uint64((p-10*time.Second)/(10*time.Second)) + 1
	}
	return n + 1
}
