//go:build unix

// Package childproc starts the brokers of the test harnesses (RabbitMQ's
// Erlang VM, epmd, ActiveMQ's JVM) as child processes that a harness owns
// without any goroutine, and picks free loopback ports for them.
//
// A child's output goes straight to a file, and the child is reaped by
// polling wait4 with WNOHANG: a broker shared by a whole test binary can
// so outlive every test without goleak seeing anything of it. Each child
// runs in a process group of its own, so that a signal to the group
// reaches the helpers it started too, and, on Linux, gets SIGKILL if the
// thread that started it dies, so that a crashed or killed test binary
// leaves no broker behind.
package childproc

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// PollInterval is how often Wait polls a process's exit.
const PollInterval = 20 * time.Millisecond

// Process is a child process started by Start. Its methods are not safe
// for concurrent use: a harness calls them under its own lock.
type Process struct {
	pid    int
	osProc *os.Process
	exited bool
	status syscall.WaitStatus
}

// Start starts path with args (args[0] included) in dir with env, its
// standard output and error appended to out and its standard input
// /dev/null.
func Start(path string, args, env []string, dir string, out *os.File) (*Process, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	attr := &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []*os.File{devnull, out, out},
		Sys:   SysProcAttr(),
	}
	p, err := os.StartProcess(path, args, attr)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	return &Process{pid: p.Pid, osProc: p}, nil
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.pid }

// Poll reaps the process if it has exited and reports whether it has.
func (p *Process) Poll() bool {
	if p.exited {
		return true
	}
	for {
		pid, err := syscall.Wait4(p.pid, &p.status, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid == p.pid {
			// ECHILD: reaped already (cannot happen while the harness is
			// the only one waiting); count it as exited.
			p.exited = true
			_ = p.osProc.Release()
		}
		return p.exited
	}
}

// Wait polls until the process has exited or timeout passed, and reports
// whether it exited.
func (p *Process) Wait(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !p.Poll() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}

// Signal sends sig to the process; it does nothing once it has exited.
func (p *Process) Signal(sig syscall.Signal) {
	if p.Poll() {
		return
	}
	_ = syscall.Kill(p.pid, sig)
}

// KillGroup sends SIGKILL to the process's whole process group (the
// process and every helper it started that stayed in the group).
func (p *Process) KillGroup() {
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
}

// Describe tells how the process ended, e.g. "exit status 1" or "killed
// by signal killed", or "running".
func (p *Process) Describe() string {
	switch {
	case !p.exited:
		return "running"
	case p.status.Exited():
		return fmt.Sprintf("exit status %d", p.status.ExitStatus())
	case p.status.Signaled():
		return fmt.Sprintf("killed by signal %v", p.status.Signal())
	}
	return fmt.Sprintf("ended (wait status %#x)", uint32(p.status))
}
