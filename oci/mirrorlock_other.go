//go:build !unix

package oci

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
)

// mirrorLock coordinates nothing where flock(2) is missing: every puller
// fetches through the mirror on its own.
type mirrorLock struct{}

func lockMirrorBlob(context.Context, string, digest.Digest, time.Duration) (*mirrorLock, bool) {
	return nil, false
}

func (l *mirrorLock) done()    {}
func (l *mirrorLock) release() {}
