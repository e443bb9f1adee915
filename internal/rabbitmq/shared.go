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

// shared holds the node and the cluster shared by the tests of a test
// binary, each started on first use. A start that failed is not tried
// again: every later test fails at once with the same error.
var shared struct {
	mu         sync.Mutex
	node       *Node
	nodeErr    error
	cluster    *Cluster
	clusterErr error
	dirs       []string
}

// Shared returns the node shared by every test of the test binary,
// starting it on first use (about 14 s on 2 cores), with the default
// credentials and [WithQuorumSessions]. Tests that use it must keep apart
// by client identifiers and topics of their own ([UniqueName]) or a
// virtual host of their own ([Node.AddVhost]), and must not stop, kill or
// restart it while other tests may be using it. It lives in a directory
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
	if _, ok := requireInstall(tb); !ok {
		return nil
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.node == nil && shared.nodeErr == nil {
		dir, err := os.MkdirTemp("", "mqttkeep-rabbitmq-")
		if err == nil {
			shared.dirs = append(shared.dirs, dir)
			shared.node, err = NewNode(dir, sharedOptions...)
		}
		shared.nodeErr = err
	}
	if shared.nodeErr != nil {
		tb.Fatalf("rabbitmq: the shared node did not start: %v", shared.nodeErr)
		return nil
	}
	return shared.node
}

// SharedCluster returns the cluster of three nodes shared by every test
// of the test binary, formed on first use (about 35 s on 2 cores), with
// the default credentials and [WithQuorumSessions]. What [Shared] says
// holds here too; a test may kill and restart one node of it only if no
// other test runs meanwhile, and must leave every node running.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	if _, ok := requireInstall(tb); !ok {
		return nil
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster == nil && shared.clusterErr == nil {
		dir, err := os.MkdirTemp("", "mqttkeep-rabbitmq-cluster-")
		if err == nil {
			shared.dirs = append(shared.dirs, dir)
			shared.cluster, err = NewCluster(dir, SharedClusterSize, sharedOptions...)
		}
		shared.clusterErr = err
	}
	if shared.clusterErr != nil {
		tb.Fatalf("rabbitmq: the shared cluster did not form: %v", shared.clusterErr)
		return nil
	}
	return shared.cluster
}

// StopShared stops the shared node and cluster, if started, and removes
// their directories. Later calls of Shared and SharedCluster start new
// ones.
func StopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var errs []error
	if shared.node != nil {
		errs = append(errs, shared.node.Close())
	}
	if shared.cluster != nil {
		errs = append(errs, shared.cluster.Close())
	}
	for _, d := range shared.dirs {
		errs = append(errs, os.RemoveAll(d))
	}
	shared.node, shared.nodeErr, shared.cluster, shared.clusterErr, shared.dirs = nil, nil, nil, nil, nil
	return errors.Join(errs...)
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
// client identifiers (the MQTT plugin puts them in queue names of at
// most 255 bytes).
func UniqueName(tb testing.TB, what string) string {
	name := notName.ReplaceAllString(tb.Name(), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s-%s-%d", name, notName.ReplaceAllString(what, "_"), uniqueSeq.Add(1))
}
