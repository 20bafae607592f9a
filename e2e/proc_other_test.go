//go:build !linux

package e2e

import "syscall"

// childAttr has no parent-death signal outside Linux; the fleet is still
// stopped by TestMain on a normal exit.
func childAttr() *syscall.SysProcAttr { return nil }
