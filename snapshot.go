package modelreg

import (
	"context"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/oci"
)

// TagSnapshot is one listing of a repository's tags with every version and
// alias tag resolved to its digest: what Versions, Aliases and History each
// read first. A reader that shows all of them (the dashboard) reads it once
// with Snapshot and hands it to History (HistoryOptions.Tags) and to
// InspectWith and Evaluations (InspectOptions.Tags), which then neither list
// nor resolve tags again and skip the cosign v2 .sig and .att lookups of
// digests the listing shows without them.
type TagSnapshot struct {
	// Repository is HOST/REPO.
	Repository string `json:"repository"`
	// Tags are every tag as listed, the cosign .sig/.att and referrers
	// index (sha256-<hex>) tags included.
	Tags []string `json:"tags"`
	// Digests maps each version and alias tag to the digest it named
	// ("sha256:<hex>"); a tag deleted between listing and resolving is
	// absent.
	Digests map[string]string `json:"digests"`
}

// SnapshotOptions say what Snapshot may take as known. The zero value
// resolves every version and alias tag.
type SnapshotOptions struct {
	// KnownVersions maps version tags (vN) to the digest they were seen
	// at. Push never moves a version tag, so these are taken as they are
	// and not resolved again (as ObserveOptions.KnownVersions); a version
	// tag missing from the new listing is dropped. Aliases are always
	// resolved.
	KnownVersions map[string]string
}

// Snapshot lists the tags of repository repoStr (HOST/REPO) and resolves
// its version and alias tags, at most 8 at a time. A repository without
// any version or alias tag is an error wrapping errdef.ErrNotFound, as with
// Versions; registry errors are wrapped with the repository.
func (c *Client) Snapshot(ctx context.Context, repoStr string, opts SnapshotOptions) (*TagSnapshot, error) {
	ref, repo, err := c.openRepo(repoStr)
	if err != nil {
		return nil, err
	}
	tags, err := oci.ListTags(ctx, repo)
	if err != nil {
		return nil, err
	}
	vs, as := oci.VersionTags(tags), oci.AliasTags(tags)
	if len(vs) == 0 && len(as) == 0 {
		return nil, repositoryNotFound(ref)
	}
	s := &TagSnapshot{Repository: ref.Name(), Tags: tags, Digests: map[string]string{}}
	var resolve []string
	for _, v := range vs {
		if d, ok := opts.KnownVersions[v]; ok {
			s.Digests[v] = d
		} else {
			resolve = append(resolve, v)
		}
	}
	m, err := tagMap(ctx, repo, append(resolve, as...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref.Name(), err)
	}
	for t, d := range m {
		s.Digests[t] = d.String()
	}
	return s, nil
}

// state returns the snapshot as tagState does: version tags sorted by N,
// alias tags, and the digest of each.
func (s *TagSnapshot) state() (versions, aliases []string, m map[string]digest.Digest) {
	m = map[string]digest.Digest{}
	for t, d := range s.Digests {
		m[t] = digest.Digest(d)
	}
	return oci.VersionTags(s.Tags), oci.AliasTags(s.Tags), m
}

// Lists returns the snapshot as Versions and Aliases answer it.
func (s *TagSnapshot) Lists() (*VersionList, *AliasList) {
	vs, as, m := s.state()
	vl := &VersionList{Repository: s.Repository, Versions: []VersionInfo{}}
	al := &AliasList{Repository: s.Repository, Aliases: []AliasInfo{}}
	byDigest := map[digest.Digest]string{}
	for _, v := range vs {
		d, ok := m[v]
		if !ok {
			continue
		}
		byDigest[d] = v
		vi := VersionInfo{Version: v, Digest: d.String(), Aliases: []string{}}
		for _, a := range as {
			if m[a] == d {
				vi.Aliases = append(vi.Aliases, a)
			}
		}
		vl.Versions = append(vl.Versions, vi)
	}
	for _, a := range as {
		if d, ok := m[a]; ok {
			al.Aliases = append(al.Aliases, AliasInfo{Alias: a, Digest: d.String(), Version: byDigest[d]})
		}
	}
	return vl, al
}

// tagsOf says whether the listing holds cosign's sha256-<hex>.sig and
// .att tags of d, and its referrers tag schema index sha256-<hex>.
func (s *TagSnapshot) tagsOf(d digest.Digest) (sig, att, index bool) {
	base := strings.Replace(d.String(), ":", "-", 1)
	for _, t := range s.Tags {
		switch t {
		case base + ".sig":
			sig = true
		case base + ".att":
			att = true
		case base:
			index = true
		}
	}
	return sig, att, index
}

// checkRepository refuses a snapshot of another repository than ref's.
func (s *TagSnapshot) checkRepository(ref oci.Reference) error {
	if s.Repository != ref.Name() {
		return fmt.Errorf("%w: the tag snapshot is of %s, not %s", errdef.ErrInvalidInput, s.Repository, ref.Name())
	}
	return nil
}
