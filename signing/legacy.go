package signing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
)

// legacyWriteTries bounds the attempts of one legacy tag write.
const legacyWriteTries = 5

// legacySettle is how long after its last write a legacy writer keeps
// checking that its layer is still in the tag. Another writer that read the
// tag before this one wrote, and writes after, drops the layer; that
// writer's own read-modify-write (with its retries) takes up to a few
// seconds on a loaded registry, so the window must outlast it. Three
// confirming reads alone (about half a second) lost one signature in ten
// concurrent signers on distribution. It makes a --legacy-tags sign or
// attest take at least this long.
const legacySettle = 3 * time.Second

// writeLegacyChecked runs write, a read-modify-write of a cosign v2 tag
// (sha256-<hex>.sig or .att, named by tagOf) that a concurrent writer can
// undo, then reads the tag back until a layer for which mine is true is
// present in confirmReads consecutive reads and legacySettle has passed
// since its last write, writing again whenever it is missing. A writer that lost its layer thus puts it back while the
// writer that overwrote it is still running.
func writeLegacyChecked(ctx context.Context, t target, tagOf func(name.Reference, ...ociremote.Option) (name.Tag, error),
	write func() error, mine func(oci.Signature) bool, opts RegistryOptions) error {
	ropts := opts.ociOptions(ctx)
	tag, err := tagOf(t.ref, ropts...)
	if err != nil {
		return fmt.Errorf("cosign tag of %s: %w", t.ref, err)
	}
	// Concurrent rewrites of one tag also make registries refuse a
	// manifest whose blobs another writer's manifest replaced
	// (MANIFEST_BLOB_UNKNOWN on distribution 2.8): try again a few times.
	retrying := func() error {
		for i := 0; ; i++ {
			err := write()
			if err == nil || i >= legacyWriteTries-1 || ctx.Err() != nil {
				return err
			}
			sleep(ctx, 100+rand.IntN(400))
		}
	}
	if err := retrying(); err != nil {
		return err
	}
	lastWrite := time.Now()
	confirmed := 0
	for round := 0; round < maxIndexRounds; round++ {
		layers, err := fetchLayers(tag, ropts)
		if err != nil {
			return err
		}
		present := false
		for _, l := range layers {
			if mine(l) {
				present = true
				break
			}
		}
		if present {
			if confirmed++; confirmed >= confirmReads && time.Since(lastWrite) >= legacySettle {
				return nil
			}
			sleep(ctx, 100+rand.IntN(200))
			continue
		}
		confirmed = 0
		if err := retrying(); err != nil {
			return err
		}
		lastWrite = time.Now()
		sleep(ctx, 20+rand.IntN(80))
	}
	return fmt.Errorf("the tag %s kept losing this layer to other writers after %d rounds; run the command again", tag, maxIndexRounds)
}
