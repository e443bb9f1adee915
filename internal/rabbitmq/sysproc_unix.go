//go:build unix && !linux

package rabbitmq

import "syscall"

// sysProcAttr puts a child in a process group of its own (there is no
// parent-death signal outside Linux).
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
