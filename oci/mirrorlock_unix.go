//go:build unix

package oci

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
)

// mirrorLock is a per-blob advisory lock (flock(2)) in the shared cache
// folder that pullers on one machine take before fetching a blob through a
// mirror, so that one of them warms the mirror while the others wait:
// distribution's proxy sends a request for a blob it is still fetching
// straight to the origin, so N cold pullers would cost the origin N times
// the blob. The kernel drops a flock when its holder dies (SIGKILL
// included), so a failed puller never blocks the others; a waiter that
// waits longer than its wait falls back to fetching on its own.
type mirrorLock struct {
	f *os.File
}

// mirrorLockPoll is how often a waiter tries the lock again.
const mirrorLockPoll = 20 * time.Millisecond

// lockMirrorBlob takes the lock of blob d under dir (the digest cache's
// folder + "/mirror-locks"), waiting at most wait. It returns nil (no lock,
// fetch on your own) when dir is "" or unusable, or the wait ran out; warm
// reports that an earlier holder fetched the blob through the mirror
// successfully (its done mark exists), so the caller need not hold the
// lock while it fetches.
func lockMirrorBlob(ctx context.Context, dir string, d digest.Digest, wait time.Duration) (l *mirrorLock, warm bool) {
	if dir == "" || d.Validate() != nil {
		return nil, false
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false
	}
	name := filepath.Join(dir, d.Algorithm().String()+"-"+d.Encoded())
	f, err := os.OpenFile(name+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			return nil, false
		}
		select {
		case <-ctx.Done():
		case <-time.After(mirrorLockPoll):
		}
	}
	l = &mirrorLock{f: f}
	if fi, err := os.Stat(name + ".done"); err == nil {
		l.release()
		if age := time.Since(fi.ModTime()); age >= 0 && age < mirrorCommitWait {
			time.Sleep(mirrorCommitWait - age) // see mirrorCommitWait
		}
		return nil, true
	}
	return l, false
}

// mirrorCommitWait is how old a blob's done mark must be before a puller
// that finds it fetches through the mirror: distribution's proxy sends the
// last byte before it commits the blob to its storage and leaves its
// "in flight" state (registry/proxy/proxyblobstore.go), and a request in
// that window goes to the origin. The commit is a rename on the
// filesystem driver; without this wait 1 run in 3 of 8 cold pullers cost
// the origin one blob twice. Only pullers that come within this time of
// the first one's success pay it.
const mirrorCommitWait = 200 * time.Millisecond

// done marks the blob as fetched through the mirror (the mirror holds it
// now, or will within mirrorCommitWait) and releases the lock; waiters then
// fetch it from the mirror concurrently.
func (l *mirrorLock) done() {
	if l == nil || l.f == nil {
		return
	}
	name := strings.TrimSuffix(l.f.Name(), ".lock")
	os.WriteFile(name+".done", nil, 0o600)
	l.release()
}

// release drops the lock without marking the blob, so a failed fetch lets
// the next waiter try; a second release does nothing.
func (l *mirrorLock) release() {
	if l == nil || l.f == nil {
		return
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}
