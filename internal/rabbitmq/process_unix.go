//go:build unix

package rabbitmq

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// process is a child process that this package owns without any
// goroutine: its output goes straight to a file, and it is reaped by
// polling wait4 with WNOHANG. A node shared by a whole test binary can so
// outlive every test without goleak seeing anything of it.
//
// The child runs in a process group of its own, so that a signal to the
// group reaches the Erlang VM's helpers too (erl_child_setup,
// inet_gethost, port programs), and, on Linux, gets SIGKILL if the
// thread that started it dies, so that a crashed or killed test binary
// leaves no node behind.
type process struct {
	pid    int
	osProc *os.Process
	exited bool
	status syscall.WaitStatus
}

// pollInterval is how often a process's exit is polled.
const pollInterval = 20 * time.Millisecond

// startProcess starts path with args (args[0] included) in dir with env,
// its standard output and error appended to out and its standard input
// /dev/null.
func startProcess(path string, args, env []string, dir string, out *os.File) (*process, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	attr := &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []*os.File{devnull, out, out},
		Sys:   sysProcAttr(),
	}
	p, err := os.StartProcess(path, args, attr)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	return &process{pid: p.Pid, osProc: p}, nil
}

// poll reaps the process if it has exited and reports whether it has.
func (p *process) poll() bool {
	if p.exited {
		return true
	}
	for {
		pid, err := syscall.Wait4(p.pid, &p.status, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid == p.pid {
			// ECHILD: reaped already (cannot happen while this package
			// is the only one waiting); count it as exited.
			p.exited = true
			_ = p.osProc.Release()
		}
		return p.exited
	}
}

// wait polls until the process has exited or timeout passed, and reports
// whether it exited.
func (p *process) wait(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !p.poll() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// signal sends sig to the process; it does nothing once it has exited.
func (p *process) signal(sig syscall.Signal) {
	if p.poll() {
		return
	}
	_ = syscall.Kill(p.pid, sig)
}

// killGroup sends SIGKILL to the process's whole process group (the
// process and every helper it started that stayed in the group).
func (p *process) killGroup() {
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
}

// describe tells how the process ended, e.g. "exit status 1" or "killed
// by signal killed".
func (p *process) describe() string {
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
