package mosquitto

import "syscall"

// sysProcAttr makes the kernel kill mosquitto if the test process dies
// without stopping it, so that no broker is left behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
