package oci

import (
	"os"
	"syscall"
)

// statChange returns the inode change time of fi in nanoseconds (0 if
// unknown). Unlike the modification time it cannot be set back by a user,
// so an edit that restores the mtime still misses the digest cache.
func statChange(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano()
	}
	return 0
}
