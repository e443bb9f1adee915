//go:build !unix

package childproc

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// The harnesses run brokers from Debian's packages: they need Unix
// process groups and wait4.

// ErrUnsupported is the error of Start outside Unix.
var ErrUnsupported = errors.New("childproc: brokers run only on Unix")

// PollInterval is how often Wait polls a process's exit.
const PollInterval = 20 * time.Millisecond

// Process is a child process started by Start.
type Process struct{}

// Start fails with ErrUnsupported.
func Start(string, []string, []string, string, *os.File) (*Process, error) {
	return nil, ErrUnsupported
}

// Pid returns 0.
func (p *Process) Pid() int { return 0 }

// Poll reports true.
func (p *Process) Poll() bool { return true }

// Wait reports true.
func (p *Process) Wait(time.Duration) bool { return true }

// Signal does nothing.
func (p *Process) Signal(syscall.Signal) {}

// KillGroup does nothing.
func (p *Process) KillGroup() {}

// Describe returns "unsupported".
func (p *Process) Describe() string { return "unsupported" }

// SysProcAttr returns nil.
func SysProcAttr() *syscall.SysProcAttr { return nil }
