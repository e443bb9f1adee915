package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of run's
// goroutines and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the complete lines written so far.
func (s *syncBuffer) lines() []string {
	text := s.String()
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	} else {
		return nil
	}
	return strings.Split(text, "\n")
}

// proc is one in-process run of the command.
type proc struct {
	args           []string
	cancel         context.CancelFunc
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int
}

// start runs the command with args in the background; the test's cleanup
// interrupts it (like Ctrl-C) and waits for it to end.
func start(t *testing.T, stdin io.Reader, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{args: args, cancel: cancel, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.code = run(ctx, args, stdin, p.stdout, p.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			t.Errorf("%v did not end after cancel", args)
		}
	})
	return p
}

// wait waits for the command to end and returns its exit status.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("%v still running after %v\nstdout:\n%s\nstderr:\n%s", p.args, timeout, p.stdout, p.stderr)
		return -1
	}
}

// interrupt cancels the command's context, as Ctrl-C does, and returns
// its exit status.
func (p *proc) interrupt(t *testing.T) int {
	t.Helper()
	p.cancel()
	return p.wait(t, 10*time.Second)
}

// runSync runs the command to its end and returns status, stdout, stderr.
func runSync(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	p := start(t, stdin, args...)
	code := p.wait(t, 30*time.Second)
	return code, p.stdout.String(), p.stderr.String()
}

// eventually waits until cond is true, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
