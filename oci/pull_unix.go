//go:build unix

package oci

import "syscall"

// lockDir takes an exclusive, non-blocking flock on the folder p and
// returns the function that releases it; ok is false when another process
// holds the lock or the folder cannot be opened.
func lockDir(p string) (unlock func(), ok bool) {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		syscall.Close(fd)
		return nil, false
	}
	return func() { syscall.Close(fd) }, true
}
