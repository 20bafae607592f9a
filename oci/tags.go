package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasErrdef "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// ListTags returns every tag of the repository (all pages), or an empty
// list for a repository that does not exist yet.
func ListTags(ctx context.Context, repo *remote.Repository) ([]string, error) {
	tags, _, err := ListTagsFound(ctx, repo)
	return tags, err
}

// ListTagsFound is ListTags that also says whether the repository exists:
// found is false when the registry answers the tag list with 404 (the
// distribution spec's NAME_UNKNOWN), true when it answers a list, even an
// empty one (a repository that holds blobs or untagged manifests only).
func ListTagsFound(ctx context.Context, repo *remote.Repository) (tags []string, found bool, err error) {
	err = repo.Tags(ctx, "", func(page []string) error {
		tags = append(tags, page...)
		return nil
	})
	if err != nil {
		var er *errcode.ErrorResponse
		if errors.Is(err, orasErrdef.ErrNotFound) || (errors.As(err, &er) && er.StatusCode == http.StatusNotFound) {
			return nil, false, nil // a repository that does not exist yet has no tags
		}
		return nil, false, fmt.Errorf("listing tags of %s: %w", repo.Reference.Registry+"/"+repo.Reference.Repository, err)
	}
	return tags, true, nil
}

// VersionTags returns the version tags (vN) among tags, sorted by N.
func VersionTags(tags []string) []string {
	var vs []string
	for _, t := range tags {
		if IsVersionTag(t) {
			vs = append(vs, t)
		}
	}
	sort.Slice(vs, func(i, j int) bool {
		a, _ := VersionNumber(vs[i])
		b, _ := VersionNumber(vs[j])
		return a < b
	})
	return vs
}

// AliasTags returns the tags that are aliases: neither version tags nor the
// sha256-… tags of cosign signatures and referrers.
func AliasTags(tags []string) []string {
	var as []string
	for _, t := range tags {
		if ValidateAlias(t) == nil {
			as = append(as, t)
		}
	}
	sort.Strings(as)
	return as
}

// PutTag points tag at the manifest m (its exact bytes). The registry
// answers last-writer-wins: there is no conditional tag update in the
// distribution spec.
func PutTag(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, m []byte, tag string) error {
	if err := repo.PushReference(ctx, desc, bytes.NewReader(m), tag); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", desc.Digest, tag, err)
	}
	return nil
}

// DeleteTag removes tag itself (distribution-spec "content management":
// DELETE /v2/<name>/manifests/<tag>), never the manifest by digest, which
// would remove every tag of the version. Registries that cannot delete tags
// (distribution 2.8, or delete disabled) give an error wrapping
// errdef.ErrUnsupported.
func DeleteTag(ctx context.Context, repo *remote.Repository, tag string) error {
	return deleteTagRequest(ctx, repo, tag)
}

// VersionAllocation tunes AllocateVersion. The zero value is usable.
type VersionAllocation struct {
	// Settle is how long to wait after writing vN before checking that
	// it still names our manifest. If ≤ 0, three times the time from the
	// check that vN is free to reading our write back (at least
	// MinSettle) is used.
	Settle time.Duration
	// MaxAttempts bounds the retries. If ≤ 0, 50 is used.
	MaxAttempts int
}

// MinSettle is the shortest settle time of AllocateVersion. What the
// settle must cover is a concurrent pusher's window: from the registry
// answering its check that vN is free to the registry applying its write
// of vN. Measured on 2026-12-02 (`make bench`, "tag consistency", on a
// busy 2-core machine): olareg, distribution v3 and docker-registry 2.8
// are read-your-write consistent (a tag PUT was listed and resolvable at the
// first read after its answer, 50 of 50), and with 10 writers at once the
// time from the start of the free check to the PUT's answer, an upper
// bound of that window, was 10 ms median and 18 ms max on olareg, 18 and
// 41 ms on distribution, 38–52 and 86–113 ms on docker-registry. The settle is therefore
// three times our own check-to-read-back time, which grows with the same
// load and link delays as the other pushers' windows, and at least this
// floor for a fast, idle registry; the old fixed 250 ms was mostly idle.
const MinSettle = 50 * time.Millisecond // a floor; see above

// maxVisibility bounds how long AllocateVersion reads vN back after
// writing it, waiting for an eventually consistent registry to show it.
const maxVisibility = 30 * time.Second

// AllocateVersion gives the manifest desc (bytes m) the next free version
// tag vN and returns it. It never overwrites an existing version tag of
// another manifest on its own: it checks that vN is free, writes it, reads
// it back until the registry shows it (so a registry that shows writes
// late lengthens the wait), waits for concurrent pushers to settle, and
// checks again; if another pusher's write won, it moves on to the next
// number. The registry has no compare-and-swap, so this is safe as long as
// no other writer takes longer than the settle time between its check and
// its write.
func AllocateVersion(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, m []byte, opts VersionAllocation) (string, error) {
	attempts := opts.MaxAttempts
	if attempts <= 0 {
		attempts = 50
	}
	floor := 0
	for attempt := 0; attempt < attempts; attempt++ {
		tags, err := ListTags(ctx, repo)
		if err != nil {
			return "", err
		}
		n := floor
		for _, t := range tags {
			if k, ok := VersionNumber(t); ok && k > n {
				n = k
			}
		}
		n++
		tag := VersionTag(n)
		start := time.Now()
		if _, err := repo.Resolve(ctx, tag); err == nil {
			floor = n // taken since we listed
			continue
		} else if !errors.Is(err, orasErrdef.ErrNotFound) {
			return "", err
		}
		if err := PutTag(ctx, repo, desc, m, tag); err != nil {
			return "", err
		}
		got, err := readBack(ctx, repo, tag)
		if err != nil {
			return "", err
		}
		if got.Digest == desc.Digest {
			settle := opts.Settle
			if settle <= 0 {
				settle = max(MinSettle, 3*time.Since(start))
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(settle):
			}
			if got, err = repo.Resolve(ctx, tag); err != nil {
				return "", fmt.Errorf("checking %s after writing it: %w", tag, err)
			}
			if got.Digest == desc.Digest {
				return tag, nil
			}
		}
		// Another pusher wrote vN after us: it keeps vN, we take the next.
		floor = n
		jitter := time.Duration(rand.Int64N(int64(50 * time.Millisecond)))
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(jitter):
		}
	}
	return "", fmt.Errorf("could not allocate a version tag after %d attempts: too many concurrent pushes to %s/%s", attempts, repo.Reference.Registry, repo.Reference.Repository)
}

// readBack resolves tag, which we just wrote, until the registry shows it
// (a registry may answer a PUT before its reads see it), for at most
// maxVisibility; it returns what the tag names then, ours or a
// concurrent pusher's.
func readBack(ctx context.Context, repo *remote.Repository, tag string) (ocispec.Descriptor, error) {
	deadline := time.Now().Add(maxVisibility)
	wait := 5 * time.Millisecond
	for {
		got, err := repo.Resolve(ctx, tag)
		if err == nil {
			return got, nil
		}
		if !errors.Is(err, orasErrdef.ErrNotFound) {
			return ocispec.Descriptor{}, fmt.Errorf("checking %s after writing it: %w", tag, err)
		}
		if time.Now().After(deadline) {
			return ocispec.Descriptor{}, fmt.Errorf("checking %s after writing it: the registry answered the write but still does not show the tag after %v", tag, maxVisibility)
		}
		select {
		case <-ctx.Done():
			return ocispec.Descriptor{}, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// FindVersion returns the version tag that names digest d, scanning version
// tags newest first, or "" if none does.
func FindVersion(ctx context.Context, repo *remote.Repository, tags []string, d digest.Digest) (string, error) {
	vs := VersionTags(tags)
	for i := len(vs) - 1; i >= 0; i-- {
		desc, err := repo.Resolve(ctx, vs[i])
		if err != nil {
			if errors.Is(err, orasErrdef.ErrNotFound) {
				continue
			}
			return "", err
		}
		if desc.Digest == d {
			return vs[i], nil
		}
	}
	return "", nil
}
