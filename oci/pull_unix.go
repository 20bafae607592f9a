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

// freeSpace returns the bytes an unprivileged writer may still use on the
// filesystem of p; ok is false when it cannot tell.
func freeSpace(p string) (n int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
