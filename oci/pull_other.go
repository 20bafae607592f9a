//go:build !unix

package oci

// lockDir cannot lock on this platform: no folder counts as stale, and
// pulls hold no lock.
func lockDir(string) (func(), bool) { return nil, false }

// freeSpace cannot tell on this platform.
func freeSpace(string) (int64, bool) { return 0, false }
