package childproc

import "syscall"

// SysProcAttr returns the attributes of every child: a process group of
// its own, and SIGKILL from the kernel if the test process dies without
// stopping it, so that no broker is left behind. Harnesses give it to
// os/exec commands too (rabbitmqctl).
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
