//go:build !unix

package rabbitmq

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// The harness runs RabbitMQ from Debian's packages: it needs Unix process
// groups and wait4.

var errUnsupported = errors.New("rabbitmq: the harness runs only on Unix")

type process struct{}

func startProcess(string, []string, []string, string, *os.File) (*process, error) {
	return nil, errUnsupported
}

func (p *process) poll() bool              { return true }
func (p *process) wait(time.Duration) bool { return true }
func (p *process) signal(syscall.Signal)   {}
func (p *process) killGroup()              {}
func (p *process) describe() string        { return "unsupported" }

func sysProcAttr() *syscall.SysProcAttr { return nil }
