package modelreg

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	orasErrdef "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
	"github.com/modelreg/modelreg/oci"
)

// PushOptions describe a model version besides its files. The zero value
// pushes the files with no lineage.
type PushOptions struct {
	// Aliases are moved to the new version after it is pushed, besides
	// "latest".
	Aliases []string
	// Datasets are references (tag or digest) of datasets the model was
	// trained on; each is resolved to REPO@DIGEST.
	Datasets []string
	// Parent is the reference of the base model, resolved to REPO@DIGEST.
	Parent string
	// RunID and RunURL identify the training run.
	RunID, RunURL string
	// Source is the source repository URL and Revision its commit
	// (org.opencontainers.image.source, .revision).
	Source, Revision string
	// Annotations are extra manifest annotations.
	Annotations map[string]string
	// FollowExternalLinks pushes the files that symbolic links leaving the
	// model folder point at; if false they are refused (oci.ScanModelDir).
	FollowExternalLinks bool
	// AllowCredentials pushes files that look like credentials; if false
	// they are refused unless a .modelregignore leaves them out.
	AllowCredentials bool
	// ChunkSize is the body size in bytes of one PATCH of a chunked
	// upload, for a registry or proxy that limits body sizes. If ≤ 0, the
	// rest of a file goes in one PATCH (oci.DefaultChunkSize); a 413
	// answer halves it either way.
	ChunkSize int64
	// NoLinks writes no lineage link referrers into the repositories of
	// the datasets and parent (Backfill writes them later).
	NoLinks bool
	// LinkKeyPath is a cosign private key that signs each lineage link;
	// LinkKeyPassword decrypts it. Without it links are unsigned.
	LinkKeyPath     string
	LinkKeyPassword []byte
}

// FileInfo describes one file of a model version.
type FileInfo struct {
	Path      string `json:"path"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
}

// PushResult says what Push did.
type PushResult struct {
	// Reference is HOST/REPO@DIGEST of the version.
	Reference  string `json:"reference"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	// Version is the version tag (vN) that names the digest.
	Version string `json:"version"`
	// Tags are the tags written: the version, latest and the aliases.
	Tags []string `json:"tags"`
	// Created is false when the registry already held this exact version.
	Created bool       `json:"created"`
	Files   []FileInfo `json:"files"`
	// BlobsUploaded and BlobsSkipped count blobs sent and blobs the
	// registry already had; BytesUploaded the bytes sent.
	BlobsUploaded int   `json:"blobsUploaded"`
	BlobsSkipped  int   `json:"blobsSkipped"`
	BytesUploaded int64 `json:"bytesUploaded"`
	// BlobsDeduplicated counts files whose bytes another file of the same
	// push carried (identical content or a hard link): one blob, listed
	// once per file in the manifest, sent once.
	BlobsDeduplicated int `json:"blobsDeduplicated"`
	// Skipped are the paths of the folder left out on purpose (.git,
	// .cache/huggingface, .modelregignore patterns), SkippedCount their
	// number.
	Skipped      []oci.SkippedPath `json:"skipped"`
	SkippedCount int               `json:"skippedCount"`
	// Warnings name files pushed as they are whose metadata could not be
	// read (a safetensors header that breaks the format), and what was
	// left out of the config for it.
	Warnings []string `json:"warnings,omitempty"`
	// Links says, for each dataset and parent, whether its lineage link
	// referrer was written, already present or failed (then with the
	// backfill command that writes it later). Empty with NoLinks.
	Links []LinkWrite `json:"links"`
}

// Push packs the files of dir as a ModelPack v1 model version and pushes it
// to ref (HOST/REPO[:TAG]).
//
// Without a version tag in ref, the next free vN is allocated (never
// overwriting a version tag, also under concurrent pushes) and "latest"
// moves to the new version. A TAG in ref that is not a version tag is an
// alias to move as well. Identical files and metadata give the identical
// digest: pushing them again reports the existing version and creates none.
// Lineage references (datasets, parent) are resolved to digests first, so a
// moved tag cannot change what the lineage says.
func (c *Client) Push(ctx context.Context, refStr, dir string, opts PushOptions) (*PushResult, error) {
	ref, repo, err := c.open(refStr)
	if err != nil {
		return nil, err
	}
	if ref.Digest != "" {
		return nil, fmt.Errorf("%w: push to %s: give a tag or a bare repository, not a digest", errdef.ErrInvalidInput, refStr)
	}
	wantVersion := ""
	aliases := append([]string(nil), opts.Aliases...)
	switch {
	case oci.IsVersionTag(ref.Tag):
		wantVersion = ref.Tag
	case ref.Tag != oci.DefaultTag:
		aliases = append(aliases, ref.Tag)
	}
	for _, a := range aliases {
		if err := oci.ValidateAlias(a); err != nil {
			return nil, err
		}
	}

	annotations, err := c.lineage(ctx, opts)
	if err != nil {
		return nil, err
	}
	var key *linkKey
	if !opts.NoLinks {
		if key, err = loadLinkKey(opts.LinkKeyPath, opts.LinkKeyPassword); err != nil {
			return nil, err
		}
	}
	scan, err := oci.ScanModelDir(dir, oci.ScanOptions{FollowExternalLinks: opts.FollowExternalLinks, AllowCredentials: opts.AllowCredentials})
	if err != nil {
		return nil, err
	}
	files := scan.Files
	info := oci.InspectFiles(files)
	meta := oci.Metadata{Name: path.Base(ref.Repository), Annotations: annotations, Info: info}
	// The manifest's size is known before any digest: refuse an oversized
	// one before the first blob moves, not after the last.
	if err := oci.CheckPackable(files, meta); err != nil {
		return nil, fmt.Errorf("push %s: %w", ref.Name(), err)
	}

	topts := c.transfer()
	topts.MountFrom = mountSources(ref, opts)
	topts.ChunkSize = opts.ChunkSize
	stats, err := oci.UploadFiles(ctx, repo, files, topts)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref.Name(), err)
	}
	pkg, err := oci.Pack(files, meta)
	if err != nil {
		return nil, err
	}
	res := &PushResult{
		Reference:     ref.WithDigest(pkg.ManifestDesc.Digest).String(),
		Repository:    ref.Name(),
		Digest:        pkg.ManifestDesc.Digest.String(),
		BlobsUploaded: stats.Uploaded,
		BlobsSkipped:  stats.Skipped,
		BytesUploaded: stats.BytesUploaded,

		BlobsDeduplicated: stats.Deduplicated,
		Skipped:           scan.Skipped,
		SkippedCount:      len(scan.Skipped),
		Warnings:          info.Warnings,
	}
	if res.Skipped == nil {
		res.Skipped = []oci.SkippedPath{}
	}
	for _, f := range files {
		res.Files = append(res.Files, FileInfo{Path: f.Path, Digest: f.Digest.String(), Size: f.Size, MediaType: f.Role.MediaType()})
	}

	existed, err := repo.Manifests().Exists(ctx, pkg.ManifestDesc)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref.Name(), err)
	}
	if err := repo.Blobs().Push(ctx, pkg.ConfigDesc, strings.NewReader(string(pkg.Config))); err != nil && !errors.Is(err, orasErrdef.ErrAlreadyExists) {
		return nil, fmt.Errorf("push %s: config: %w", ref.Name(), err)
	}
	if !existed {
		if err := repo.Manifests().Push(ctx, pkg.ManifestDesc, strings.NewReader(string(pkg.Manifest))); err != nil && !errors.Is(err, orasErrdef.ErrAlreadyExists) {
			return nil, fmt.Errorf("push %s: manifest: %w", ref.Name(), oci.ExplainManifestRefusal(err))
		}
	}

	tags, err := oci.ListTags(ctx, repo)
	if err != nil {
		return nil, err
	}
	if existed {
		v, err := oci.FindVersion(ctx, repo, tags, pkg.ManifestDesc.Digest)
		if err != nil {
			return nil, err
		}
		res.Version = v
	}
	switch {
	case res.Version != "" && (wantVersion == "" || wantVersion == res.Version):
		// The same files and metadata were pushed before: no new version.
	case wantVersion != "":
		if err := c.putVersionTag(ctx, repo, ref, pkg, wantVersion); err != nil {
			return nil, err
		}
		res.Version, res.Created = wantVersion, true
	default:
		v, err := oci.AllocateVersion(ctx, repo, pkg.ManifestDesc, pkg.Manifest, oci.VersionAllocation{})
		if err != nil {
			return nil, err
		}
		res.Version, res.Created = v, true
	}
	res.Tags = append(res.Tags, res.Version)
	if res.Created {
		aliases = append([]string{oci.DefaultTag}, aliases...)
	}
	for _, a := range dedupe(aliases) {
		if err := oci.PutTag(ctx, repo, pkg.ManifestDesc, pkg.Manifest, a); err != nil {
			return nil, err
		}
		res.Tags = append(res.Tags, a)
	}
	res.Links = []LinkWrite{}
	if !opts.NoLinks {
		// After the tags: a failed link never fails the push.
		res.Links = c.writeLinks(ctx, ref.WithDigest(pkg.ManifestDesc.Digest), res.Version, annotations, key)
	}
	return res, nil
}

// putVersionTag writes an explicitly requested version tag, refusing to
// move it if it names another manifest.
func (c *Client) putVersionTag(ctx context.Context, repo *remote.Repository, ref oci.Reference, pkg oci.Package, v string) error {
	desc, err := repo.Resolve(ctx, v)
	if err == nil {
		if desc.Digest == pkg.ManifestDesc.Digest {
			return nil
		}
		return fmt.Errorf("%w: %s already names %s; version tags never move: push without a tag to get the next version", errdef.ErrInvalidInput, ref.WithTag(v), desc.Digest)
	}
	if !errors.Is(err, orasErrdef.ErrNotFound) {
		return err
	}
	return oci.PutTag(ctx, repo, pkg.ManifestDesc, pkg.Manifest, v)
}

// lineage builds the manifest annotations from the options, resolving
// dataset and parent references to digests.
func (c *Client) lineage(ctx context.Context, opts PushOptions) (map[string]string, error) {
	a := map[string]string{}
	for k, v := range opts.Annotations {
		if k == "" {
			return nil, fmt.Errorf("%w: --annotation with an empty key", errdef.ErrInvalidInput)
		}
		if reservedAnnotation(k) {
			return nil, fmt.Errorf("%w: --annotation %s: lineage is set by --dataset, --parent, --run-id and --run-url, which resolve references to digests", errdef.ErrInvalidInput, k)
		}
		a[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set(mediatypes.AnnotationSource, opts.Source)
	set(mediatypes.AnnotationRevision, opts.Revision)
	set(mediatypes.AnnotationRunID, opts.RunID)
	set(mediatypes.AnnotationRunURL, opts.RunURL)
	var datasets []string
	for _, d := range opts.Datasets {
		r, err := c.resolveLineage(ctx, "--dataset", d)
		if err != nil {
			return nil, err
		}
		datasets = append(datasets, r.String())
	}
	sort.Strings(datasets)
	set(mediatypes.AnnotationDatasets, strings.Join(dedupe(datasets), ","))
	if opts.Parent != "" {
		r, err := c.resolveLineage(ctx, "--parent", opts.Parent)
		if err != nil {
			return nil, err
		}
		a[mediatypes.AnnotationParent] = r.String()
		a[mediatypes.AnnotationBaseName] = r.Name()
		a[mediatypes.AnnotationBaseDigest] = r.Digest.String()
	}
	if len(a) == 0 {
		return nil, nil
	}
	return a, nil
}

func (c *Client) resolveLineage(ctx context.Context, flag, s string) (oci.Reference, error) {
	ref, repo, err := c.open(s)
	if err != nil {
		return ref, fmt.Errorf("%s: %w", flag, err)
	}
	desc, err := oci.Resolve(ctx, repo, ref)
	if err != nil {
		return ref, fmt.Errorf("%s %s: %w (lineage must name an artifact in a registry; push it first or give REPO@sha256:...)", flag, s, err)
	}
	return ref.WithDigest(desc.Digest), nil
}

// mountSources returns the repositories of ref's registry named by the
// lineage (parent, datasets): blobs shared with them are mounted, not sent.
func mountSources(ref oci.Reference, opts PushOptions) []string {
	var out []string
	for _, s := range append([]string{opts.Parent}, opts.Datasets...) {
		if r, err := oci.ParseReference(s); err == nil && s != "" && r.Registry == ref.Registry && r.Repository != ref.Repository {
			out = append(out, r.Repository)
		}
	}
	return dedupe(out)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// reservedAnnotation reports whether key is lineage that only the lineage
// flags may set, so a policy that requires it can trust its form.
func reservedAnnotation(key string) bool {
	return strings.HasPrefix(key, "dev.modelreg.") ||
		key == mediatypes.AnnotationBaseDigest || key == mediatypes.AnnotationBaseName
}
