package rabbitmq

import "syscall"

// sysProcAttr puts a child in a process group of its own and makes the
// kernel kill it if the test process dies without stopping it, so that no
// node or epmd is left behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
