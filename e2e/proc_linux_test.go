//go:build linux

package e2e

import "syscall"

// childAttr makes the kernel kill a child process when the test process
// dies (a test timeout or a crash), so no registry outlives its test run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
