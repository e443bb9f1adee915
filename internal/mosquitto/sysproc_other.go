//go:build !linux

package mosquitto

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
