package rabbitmq

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
)

// SharedClusterSize is the number of nodes of the cluster [SharedCluster]
// starts.
const SharedClusterSize = 3

// sharedOptions are the options of the shared node and cluster: the
// default credentials and quorum queues for persistent sessions.
var sharedOptions = []Option{WithQuorumSessions()}

// sharedSlot holds a node or cluster shared by the tests of a test
// binary, started on first use. A start that failed is not tried again:
// every later test fails at once with the same error.
type sharedSlot[T interface{ Close() error }] struct {
	mu  sync.Mutex // held during the start: a second test waits for it
	v   T
	ok  bool
	err error
	dir string
}

var (
	sharedNode    sharedSlot[*Node]
	sharedCluster sharedSlot[*Cluster]
)

// get returns the slot's value, starting it with start in a new temporary
// directory (named after prefix) on first use.
func (s *sharedSlot[T]) get(tb testing.TB, what, prefix string, start func(dir string) (T, error)) T {
	tb.Helper()
	var zero T
	if _, ok := requireInstall(tb); !ok {
		return zero
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ok && s.err == nil {
		s.dir, s.err = os.MkdirTemp("", prefix)
		if s.err == nil {
			s.v, s.err = start(s.dir)
			s.ok = s.err == nil
		}
	}
	if s.err != nil {
		tb.Fatalf("rabbitmq: the shared %s did not start: %v", what, s.err)
		return zero
	}
	return s.v
}

// stop closes the value, removes its directory and empties the slot.
func (s *sharedSlot[T]) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.ok {
		errs = append(errs, s.v.Close())
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	var zero T
	s.v, s.ok, s.err, s.dir = zero, false, nil, ""
	return errors.Join(errs...)
}

// Shared returns the node shared by every test of the test binary,
// starting it on first use (about 14 s on 2 cores), with the default
// credentials and [WithQuorumSessions]. Tests that use it must keep apart
// by client identifiers and topics of their own ([UniqueName]: client
// identifiers must differ even between virtual hosts, see
// [Node.AddVhost]), and must not stop, kill or restart it while other
// tests may be using it. It lives in a directory
// of its own under the system's temporary directory, removed by
// [StopShared]; a test binary's TestMain must stop it:
//
//	func TestMain(m *testing.M) {
//		goleak.VerifyTestMain(rabbitmq.StopSharedAfter(m))
//	}
//
// (Should it not, the kernel kills the node when the test binary exits,
// and its directory stays behind.) The node holds no goroutine between
// calls, so goleak sees nothing of it either way. A missing RabbitMQ
// skips the test (fails it when MQTTKEEP_REQUIRE_RABBITMQ=1).
func Shared(tb testing.TB) *Node {
	tb.Helper()
	n := sharedNode.get(tb, "node", "mqttkeep-rabbitmq-",
		func(dir string) (*Node, error) { return NewNode(dir, sharedOptions...) })
	if n != nil {
		tb.Cleanup(func() { showSharedLog(tb, n) })
	}
	return n
}

// sharedLogLines is how much of a shared node's log a failed test shows.
const sharedLogLines = 150

// showSharedLog logs the end of a shared node's log on tb if the test
// failed (other tests' lines among it).
func showSharedLog(tb testing.TB, n *Node) {
	if tb.Failed() {
		tb.Logf("shared rabbitmq node %s, last %d lines of %s (of every test using it):\n%s",
			n.name, sharedLogLines, n.log.Path(), n.LogTail(sharedLogLines))
	}
}

// SharedCluster returns the cluster of three nodes shared by every test
// of the test binary, formed on first use (about 35 s on 2 cores), with
// the default credentials and [WithQuorumSessions]. What [Shared] says
// holds here too; a test may kill and restart one node of it only if no
// other test runs meanwhile, and must leave every node running.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c := sharedCluster.get(tb, "cluster", "mqttkeep-rabbitmq-cluster-",
		func(dir string) (*Cluster, error) { return NewCluster(dir, SharedClusterSize, sharedOptions...) })
	if c != nil {
		tb.Cleanup(func() {
			for _, n := range c.nodes {
				showSharedLog(tb, n)
			}
		})
	}
	return c
}

// StopShared stops the shared node and cluster, if started, and removes
// their directories. Later calls of Shared and SharedCluster start new
// ones.
func StopShared() error {
	return errors.Join(sharedNode.stop(), sharedCluster.stop())
}

// Runner is what [StopSharedAfter] wraps: *testing.M, and what
// goleak.VerifyTestMain takes.
type Runner interface{ Run() int }

// StopSharedAfter returns a Runner whose Run runs m, then [StopShared]
// (a failure to stop makes the exit code 1). Give it to
// goleak.VerifyTestMain, which checks for leaks after Run.
func StopSharedAfter(m Runner) Runner { return stopAfter{m} }

type stopAfter struct{ m Runner }

func (s stopAfter) Run() int {
	code := s.m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "rabbitmq: stopping the shared nodes: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

var uniqueSeq atomic.Int64

var notName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// UniqueName returns a name for a client identifier, topic level or
// virtual host that no other test of the test binary gets: the test's
// name (characters other than letters, digits, '-' and '_' replaced,
// cut to 40), what, and a sequence number, e.g.
// "TestResume-sub-7". It stays well within what RabbitMQ accepts in
// client identifiers (the MQTT plugin puts them in queue names).
func UniqueName(tb testing.TB, what string) string {
	name := notName.ReplaceAllString(tb.Name(), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s-%s-%d", name, notName.ReplaceAllString(what, "_"), uniqueSeq.Add(1))
}
