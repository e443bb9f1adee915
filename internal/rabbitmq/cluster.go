package rabbitmq

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a RabbitMQ cluster of nodes on this machine: distinct node
// names, directories and ports, one Erlang cookie, one epmd of its own.
// Its methods are safe for concurrent use.
type Cluster struct {
	dir   string
	epmd  *epmd
	nodes []*Node

	mu     sync.Mutex // guards the fields below
	closed bool
	boot   time.Duration // the parallel first start of every node
	join   time.Duration // the joins
}

// StartCluster starts a cluster of size nodes in the test's temporary
// directory (see [NewCluster]) and stops it when the test ends, showing
// the end of each node's log if the test failed. A missing RabbitMQ skips
// the test (fails it when MQTTKEEP_REQUIRE_RABBITMQ=1).
func StartCluster(tb testing.TB, size int, opts ...Option) *Cluster {
	tb.Helper()
	if _, ok := requireInstall(tb); !ok {
		return nil
	}
	c, err := NewCluster(tb.TempDir(), size, opts...)
	if err != nil {
		tb.Fatal(err)
		return nil
	}
	tb.Cleanup(func() {
		_ = c.Close()
		for _, n := range c.nodes {
			showLog(tb, n)
		}
	})
	return c
}

// NewCluster forms a cluster of size nodes in dir, which must exist and
// stay until Close: it starts every node at once (each a standalone node
// with the MQTT plugin and the same options), then joins each node but
// the first to the first, one after the other (rabbitmqctl stop_app,
// join_cluster, start_app), and returns once the first node's
// cluster_status lists every node as running and each node's MQTT
// listener accepts a CONNECT. The whole is bounded by [WithStartTimeout].
// The caller must call Close.
func NewCluster(dir string, size int, opts ...Option) (*Cluster, error) {
	if size < 1 {
		return nil, fmt.Errorf("rabbitmq: a cluster of %d nodes", size)
	}
	in, err := findInstall()
	if err != nil {
		return nil, err
	}
	cfg := newConfig(opts)
	deadline := time.Now().Add(cfg.startTimeout)
	cookie, err := newCookie()
	if err != nil {
		return nil, err
	}
	e, err := startEpmd(in.epmd, dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, epmd: e}
	for i := range size {
		n, err := newNode(in, cfg, filepath.Join(dir, fmt.Sprintf("node%d", i+1)), nodeName("c"), cookie, e)
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		n.cluster = c
		c.nodes = append(c.nodes, n)
	}

	began := time.Now()
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.startFresh(deadline) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = c.Close()
		return nil, err
	}
	booted := time.Now()
	for _, n := range c.nodes[1:] {
		if err := n.joinTo(c.nodes[0], deadline); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	if err := c.waitRunning(c.nodes[0], deadline); err != nil {
		_ = c.Close()
		return nil, err
	}
	c.mu.Lock()
	c.boot, c.join = booted.Sub(began), time.Since(booted)
	c.mu.Unlock()
	return c, nil
}

// joinTo makes n a member of first's cluster and waits until its MQTT
// listener is back. It runs rabbitmqctl once, with eval, for what
// "rabbitmqctl stop_app", "join_cluster FIRST" and "start_app" do (the
// same three calls on the node: rabbit:stop(), rabbit_mnesia:join_cluster
// and rabbit:start()): each rabbitmqctl run starts an Erlang VM and the
// CLI's code, about 0.7 s on 2 cores and several seconds when loaded.
func (n *Node) joinTo(first *Node, deadline time.Time) error {
	n.life.Lock()
	defer n.life.Unlock()
	began := time.Now()
	n.note("joining " + first.name)
	expr := fmt.Sprintf(`ok = rabbit:stop(),
case rabbit_mnesia:join_cluster('%s', disc) of
    ok -> ok;
    {ok, already_member} -> ok;
    JoinError -> erlang:error({join_cluster, JoinError})
end,
ok = rabbit:start().`, first.name)
	if _, err := n.Ctl("eval", expr); err != nil {
		return n.withLog(err)
	}
	if err := n.waitReady(deadline); err != nil {
		return err
	}
	n.note(fmt.Sprintf("joined %s in %v", first.name, time.Since(began).Round(time.Millisecond)))
	return nil
}

// waitRunning waits until n's cluster_status lists as running every node
// of the cluster whose process runs (n included).
func (c *Cluster) waitRunning(n *Node, deadline time.Time) error {
	var want []string
	for _, m := range c.nodes {
		if m == n || m.Running() {
			want = append(want, m.name)
		}
	}
	slices.Sort(want)
	var got []string
	var err error
	for {
		got, err = n.RunningNodes()
		if err == nil && contains(got, want) {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return n.withLog(fmt.Errorf("rabbitmq: node %s has not rejoined its cluster in time: %w", n.name, err))
			}
			return n.withLog(fmt.Errorf("rabbitmq: node %s has not rejoined its cluster in time: its cluster_status lists as running [%s], want [%s]",
				n.name, strings.Join(got, " "), strings.Join(want, " ")))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// contains reports whether every name of want is in got.
func contains(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// Size returns the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

// Node returns the i-th node (from 0; node 0 is the one the others
// joined).
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// Nodes returns the nodes.
func (c *Cluster) Nodes() []*Node { return slices.Clone(c.nodes) }

// MQTTAddrs returns every node's MQTT address, in node order.
func (c *Cluster) MQTTAddrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.MQTTAddr()
	}
	return out
}

// NodeNamed returns the node whose Erlang name is name, or nil.
func (c *Cluster) NodeNamed(name string) *Node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// Running returns the nodes whose process runs.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// Durations returns how long the formation took: the parallel first start
// of every node, and the joins that followed.
func (c *Cluster) Durations() (boot, join time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.boot, c.join
}

// QueueLeader returns the node that holds the leader of the quorum queue
// name in vhost ("" for "/"), asking the first running node.
func (c *Cluster) QueueLeader(vhost, name string) (*Node, error) {
	running := c.Running()
	if len(running) == 0 {
		return nil, errors.New("rabbitmq: no node of the cluster is running")
	}
	q, err := running[0].Queue(vhost, name)
	if err != nil {
		return nil, err
	}
	n := c.NodeNamed(q.Leader)
	if n == nil {
		return nil, fmt.Errorf("rabbitmq: queue %q has leader %q, not a node of the cluster", name, q.Leader)
	}
	return n, nil
}

// Close stops every node (cleanly, at once) and the cluster's epmd. It is
// idempotent.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.Close() })
	}
	wg.Wait()
	c.epmd.stop()
	return errors.Join(errs...)
}
