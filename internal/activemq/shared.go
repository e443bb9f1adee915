package activemq

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// shared holds the broker shared by the tests of a test binary, started
// on first use; a start that failed is not tried again.
var shared struct {
	mu     sync.Mutex
	broker *Broker
	err    error
	dir    string
}

// Shared returns the broker shared by every test of the test binary,
// starting it on first use, with the default options (no
// authentication). Tests that use it keep apart by client identifiers
// and topics of their own, and must not stop, kill or restart it while
// other tests may be using it. It lives in a directory of its own under
// the system's temporary directory, removed by [StopShared]; a test
// binary's TestMain must stop it:
//
//	func TestMain(m *testing.M) {
//		goleak.VerifyTestMain(activemq.StopSharedAfter(m))
//	}
//
// The broker holds no goroutine between calls. A missing ActiveMQ skips
// the test (fails it when MQTTKEEP_REQUIRE_ACTIVEMQ=1).
func Shared(tb testing.TB) *Broker {
	tb.Helper()
	if !requireInstall(tb) {
		return nil
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.broker == nil && shared.err == nil {
		shared.dir, shared.err = os.MkdirTemp("", "mqttkeep-activemq-")
		if shared.err == nil {
			shared.broker, shared.err = NewBroker(shared.dir)
		}
	}
	if shared.err != nil {
		tb.Fatalf("activemq: the shared broker did not start: %v", shared.err)
		return nil
	}
	b := shared.broker
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("shared activemq broker %s, last 150 lines of %s (of every test using it):\n%s",
				b.name, b.log.Path(), b.LogTail(150))
		}
	})
	return b
}

// StopShared stops the shared broker, if started, and removes its
// directory; a later Shared starts a new one.
func StopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var errs []error
	if shared.broker != nil {
		errs = append(errs, shared.broker.Close())
	}
	if shared.dir != "" {
		errs = append(errs, os.RemoveAll(shared.dir))
	}
	shared.broker, shared.err, shared.dir = nil, nil, ""
	return errors.Join(errs...)
}

// Runner is what [StopSharedAfter] wraps: *testing.M, and what
// goleak.VerifyTestMain takes.
type Runner interface{ Run() int }

// StopSharedAfter returns a Runner whose Run runs m, then [StopShared]
// (a failure to stop makes the exit code 1).
func StopSharedAfter(m Runner) Runner { return stopAfter{m} }

type stopAfter struct{ m Runner }

func (s stopAfter) Run() int {
	code := s.m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "activemq: stopping the shared broker: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
