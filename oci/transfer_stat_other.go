//go:build !linux

package oci

import "os"

// statChange returns 0: the inode change time is only read on Linux.
func statChange(fi os.FileInfo) int64 { return 0 }
