//go:build !unix

package oci

// lockDir cannot lock on this platform: no folder counts as stale, and
// pulls hold no lock.
func lockDir(string) (func(), bool) { return nil, false }
