//go:build unix

package automation

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockState takes an exclusive flock on DIR/lock for the life of the
// process: two watchers on one state would deliver everything twice. The
// kernel drops the lock when the process dies, kill -9 included.
func lockState(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("the watch state %s is in use by another modelreg watch: give each watcher its own --state", dir)
		}
		return fmt.Errorf("locking the watch state %s: %w", dir, err)
	}
	heldLocks = append(heldLocks, f) // kept open: closing would release it
	return nil
}

var heldLocks []*os.File
