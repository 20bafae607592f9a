package modelreg

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
	orasErrdef "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/oci"
)

// VersionInfo is one model version of a repository.
type VersionInfo struct {
	Version string   `json:"version"`
	Digest  string   `json:"digest"`
	Aliases []string `json:"aliases"`
}

// VersionList is the answer of Versions.
type VersionList struct {
	Repository string        `json:"repository"`
	Versions   []VersionInfo `json:"versions"`
}

// AliasInfo is one alias of a repository.
type AliasInfo struct {
	Alias   string `json:"alias"`
	Digest  string `json:"digest"`
	Version string `json:"version"`
}

// AliasList is the answer of Aliases.
type AliasList struct {
	Repository string      `json:"repository"`
	Aliases    []AliasInfo `json:"aliases"`
}

// tagMap resolves tags to digests, in parallel.
func tagMap(ctx context.Context, repo *remote.Repository, tags []string) (map[string]digest.Digest, error) {
	out := make([]digest.Digest, len(tags))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, t := range tags {
		g.Go(func() error {
			desc, err := repo.Resolve(ctx, t)
			if errors.Is(err, orasErrdef.ErrNotFound) {
				return nil // deleted since listed
			}
			if err != nil {
				return fmt.Errorf("resolving %s: %w", t, err)
			}
			out[i] = desc.Digest
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	m := map[string]digest.Digest{}
	for i, t := range tags {
		if out[i] != "" {
			m[t] = out[i]
		}
	}
	return m, nil
}

// tagState returns the version tags (sorted by N) and alias tags of repo,
// and what each resolves to now; found is false when the registry says
// the repository does not exist (404 on its tag list).
func tagState(ctx context.Context, repo *remote.Repository) (versions, aliases []string, m map[string]digest.Digest, found bool, err error) {
	tags, found, err := oci.ListTagsFound(ctx, repo)
	if err != nil {
		return nil, nil, nil, false, err
	}
	versions, aliases = oci.VersionTags(tags), oci.AliasTags(tags)
	m, err = tagMap(ctx, repo, append(append([]string(nil), versions...), aliases...))
	return versions, aliases, m, found, err
}

// Versions lists the model versions (vN tags) of repository repoStr
// (HOST/REPO), oldest first, each with the aliases that point at it. A
// repository the registry does not know (404 NAME_UNKNOWN on its tag
// list) is an error wrapping errdef.ErrNotFound; one that exists with no
// version tag (blobs or untagged manifests only) lists no versions, as
// `oras repo tags` lists nothing and exits 0.
func (c *Client) Versions(ctx context.Context, repoStr string) (*VersionList, error) {
	ref, repo, err := c.openRepo(repoStr)
	if err != nil {
		return nil, err
	}
	vs, as, m, found, err := tagState(ctx, repo)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, repositoryNotFound(ref)
	}
	res := &VersionList{Repository: ref.Name(), Versions: []VersionInfo{}}
	for _, v := range vs {
		d, ok := m[v]
		if !ok {
			continue
		}
		vi := VersionInfo{Version: v, Digest: d.String(), Aliases: []string{}}
		for _, a := range as {
			if m[a] == d {
				vi.Aliases = append(vi.Aliases, a)
			}
		}
		res.Versions = append(res.Versions, vi)
	}
	return res, nil
}

// repositoryNotFound is the error of a repository the registry does not
// know, or (history, snapshot) one with no tags at all.
func repositoryNotFound(ref oci.Reference) error {
	return fmt.Errorf("repository %s: %w: the registry lists no tags for it; check the name (`modelreg push` creates it)", ref.Name(), errdef.ErrNotFound)
}

// Aliases lists the aliases of repository repoStr with the digest and
// version each points at (version "" when the digest has no version tag).
// A repository the registry does not know is an error wrapping
// errdef.ErrNotFound, an existing one without aliases lists none, as with
// Versions.
func (c *Client) Aliases(ctx context.Context, repoStr string) (*AliasList, error) {
	ref, repo, err := c.openRepo(repoStr)
	if err != nil {
		return nil, err
	}
	vs, as, m, found, err := tagState(ctx, repo)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, repositoryNotFound(ref)
	}
	byDigest := map[digest.Digest]string{}
	for _, v := range vs {
		if d, ok := m[v]; ok {
			byDigest[d] = v
		}
	}
	res := &AliasList{Repository: ref.Name(), Aliases: []AliasInfo{}}
	for _, a := range as {
		if d, ok := m[a]; ok {
			res.Aliases = append(res.Aliases, AliasInfo{Alias: a, Digest: d.String(), Version: byDigest[d]})
		}
	}
	return res, nil
}

// SetAliasOptions configure SetAlias.
type SetAliasOptions struct {
	// Force moves an alias that has promotion records to a digest its
	// newest record does not name. Zero value: refuse (see SetAlias).
	Force bool
}

// SetAliasResult says where SetAlias pointed the alias.
type SetAliasResult struct {
	Alias  string `json:"alias"`
	Digest string `json:"digest"`
	// Warning says that deploys will refuse the alias (set only with
	// Force, when the move bypassed its promotion records).
	Warning string `json:"warning,omitempty"`
}

// SetAlias points alias at the version refStr names (tag or digest),
// resolving a tag once. It does not consult a promotion policy: use Promote
// for protected aliases.
//
// An alias with promotion records in the repository is one deploys check
// (`pull --policy` requires the newest record to name the digest), so moving
// it by hand to another digest makes every such deploy refuse it until it is
// promoted again. SetAlias refuses that move with an error wrapping
// errdef.ErrInvalidInput, changing nothing, unless opts.Force is set; then
// it moves the tag and says so in the result's Warning. The records are read
// unverified (SetAlias has no policy): this is a guard against mistakes, not
// a security check, which stays with `pull --policy`.
func (c *Client) SetAlias(ctx context.Context, refStr, alias string, opts SetAliasOptions) (*SetAliasResult, error) {
	if err := oci.ValidateAlias(alias); err != nil {
		return nil, err
	}
	ref, pinned, repo, mv, err := c.version(ctx, refStr)
	if err != nil {
		return nil, err
	}
	res := &SetAliasResult{Alias: alias, Digest: pinned.Digest.String()}
	recs, err := c.promotionRecords(ctx, repo, ref, nil, alias)
	if err != nil {
		return nil, err
	}
	var newest *PromotionRecord
	for i := range recs {
		if sameRepository(recs[i].Repository, ref) {
			newest = &recs[i]
			break
		}
	}
	if newest != nil && newest.Digest != res.Digest {
		what := fmt.Sprintf("alias %s of %s has promotion records (newest: sequence %d, %s), so deploys with `pull --policy` will refuse it at %s until it is promoted there",
			alias, ref.Name(), newest.Sequence, newest.Digest, res.Digest)
		if !opts.Force {
			return nil, fmt.Errorf("%w: %s; nothing changed: use `modelreg promote %s --to %s`, or pass --force to move it by hand anyway",
				errdef.ErrInvalidInput, what, pinned, alias)
		}
		res.Warning = what
	}
	return res, oci.PutTag(ctx, repo, mv.Descriptor, mv.Raw, alias)
}

// RemoveAlias deletes the alias tag of repository repoStr. It refuses
// version tags, and fails with errdef.ErrUnsupported on registries that
// cannot delete tags.
func (c *Client) RemoveAlias(ctx context.Context, repoStr, alias string) error {
	if err := oci.ValidateAlias(alias); err != nil {
		return err
	}
	ref, repo, err := c.openRepo(repoStr)
	if err != nil {
		return err
	}
	if err := oci.DeleteTag(ctx, repo, alias); err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			return fmt.Errorf("alias %s of %s: %w", alias, ref.Name(), errdef.ErrNotFound)
		}
		return fmt.Errorf("removing alias %s of %s: %w", alias, ref.Name(), err)
	}
	return nil
}

// Inspection is the answer of Inspect.
type Inspection struct {
	Reference    string            `json:"reference"`
	Digest       string            `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations"`
	Config       map[string]any    `json:"config"`
	Files        []FileInfo        `json:"files"`
	// Referrers are the signatures and attestations stored for the
	// digest, in both formats; filled by InspectWith (verified against
	// InspectOptions.Keys), empty from Inspect.
	Referrers []TrustReferrer `json:"referrers,omitempty"`
}

// Inspect describes the version refStr names: manifest, config, lineage
// annotations and files.
func (c *Client) Inspect(ctx context.Context, refStr string) (*Inspection, error) {
	ref, pinned, _, mv, err := c.version(ctx, refStr)
	if err != nil {
		return nil, err
	}
	in := &Inspection{
		Reference:    ref.String(),
		Digest:       pinned.Digest.String(),
		MediaType:    mv.Manifest.MediaType,
		ArtifactType: mv.Manifest.ArtifactType,
		Size:         mv.Descriptor.Size,
		Annotations:  mv.Manifest.Annotations,
		Config:       mv.Config,
		Files:        filesOf(mv),
	}
	if in.Annotations == nil {
		in.Annotations = map[string]string{}
	}
	return in, nil
}

func filesOf(mv *oci.ModelVersion) []FileInfo {
	fs := []FileInfo{}
	for _, f := range mv.Files {
		fs = append(fs, FileInfo{Path: f.Path, Digest: f.Descriptor.Digest.String(), Size: f.Descriptor.Size, MediaType: f.Descriptor.MediaType})
	}
	return fs
}
