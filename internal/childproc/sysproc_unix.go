//go:build unix && !linux

package childproc

import "syscall"

// SysProcAttr returns the attributes of every child: a process group of
// its own (there is no parent-death signal outside Linux).
func SysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
