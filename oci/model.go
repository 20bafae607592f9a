package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	orasErrdef "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
)

const dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

// MaxManifestBytes caps manifests and config blobs read into memory (4 MiB,
// the limit distribution-spec recommends and oras-go uses).
const MaxManifestBytes = 4 << 20

// ModelVersion is one model version as stored: its manifest, config and
// files.
type ModelVersion struct {
	// Descriptor is the manifest's descriptor; Digest identifies the
	// version.
	Descriptor ocispec.Descriptor
	// Manifest is the parsed manifest; Raw its exact bytes.
	Manifest ocispec.Manifest
	Raw      []byte
	// Config is the decoded config blob (ModelPack JSON), nil if the
	// config is not JSON.
	Config map[string]any
	// Files are the layers that carry a file path, in manifest order.
	Files []ModelFile
}

// ModelFile is a layer that is a file of the model.
type ModelFile struct {
	// Path is the relative path, already checked by ValidatePath.
	Path string
	// Descriptor is the layer descriptor.
	Descriptor ocispec.Descriptor
}

// Resolve returns the manifest descriptor that ref names now. A tag is
// resolved once; callers work on the digest from then on.
func Resolve(ctx context.Context, repo *remote.Repository, ref Reference) (ocispec.Descriptor, error) {
	desc, err := repo.Resolve(ctx, ref.Ref())
	if err != nil {
		if errors.Is(err, orasErrdef.ErrNotFound) {
			return desc, fmt.Errorf("%s: %w", ref, errdef.ErrNotFound)
		}
		return desc, fmt.Errorf("resolving %s: %w", ref, withAdvice(err))
	}
	return desc, nil
}

// FetchModel fetches and checks the manifest with digest d and its config.
// Both are verified against their digests; every file path is checked with
// ValidatePath. Manifests of other formats are accepted when their layers
// carry file paths (ModelPack cnai names, oras' title annotation).
func FetchModel(ctx context.Context, repo *remote.Repository, ref Reference, d digest.Digest) (*ModelVersion, error) {
	var (
		desc ocispec.Descriptor
		raw  []byte
	)
	err := retrySmall(ctx, func() error {
		var rc io.ReadCloser
		var err error
		desc, rc, err = repo.Manifests().FetchReference(ctx, d.String())
		if err != nil {
			if errors.Is(err, orasErrdef.ErrNotFound) {
				return stop(fmt.Errorf("%s: %w", ref.WithDigest(d), errdef.ErrNotFound))
			}
			return fmt.Errorf("fetching manifest %s: %w", ref.WithDigest(d), err)
		}
		defer rc.Close()
		raw, err = readVerified(rc, d)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", ref.WithDigest(d), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	mv, err := decodeModel(desc, raw, ref, d)
	if err != nil {
		return nil, err
	}
	if cd := mv.Manifest.Config; cd.Size > 0 && cd.Size <= MaxManifestBytes && strings.HasSuffix(cd.MediaType, "json") {
		var b []byte
		err := retrySmall(ctx, func() error {
			var err error
			b, err = content.FetchAll(ctx, repo.Blobs(), cd)
			if err != nil {
				return fmt.Errorf("config blob %s: %w", cd.Digest, asIntegrity(err))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		mv.Config = decodeConfig(b)
	}
	return mv, nil
}

// decodeModel decodes and checks manifest raw (digest d, fetched with
// descriptor desc) as FetchModel does, all but the config.
func decodeModel(desc ocispec.Descriptor, raw []byte, ref Reference, d digest.Digest) (*ModelVersion, error) {
	desc.Digest, desc.Size = d, int64(len(raw))
	mv := &ModelVersion{Descriptor: desc, Raw: raw}
	if err := json.Unmarshal(raw, &mv.Manifest); err != nil {
		return nil, fmt.Errorf("%w: manifest %s is not JSON: %v", errdef.ErrIntegrity, d, err)
	}
	// Both the registry's Content-Type and the document's own mediaType
	// must say image manifest: an index without a mediaType field parses
	// as a manifest with no layers.
	for _, mt := range []string{desc.MediaType, mv.Manifest.MediaType} {
		if mt != "" && mt != ocispec.MediaTypeImageManifest && mt != dockerManifest {
			return nil, fmt.Errorf("%w: %s is a %s, not a model manifest", errdef.ErrInvalidInput, ref.WithDigest(d), mt)
		}
	}
	desc.MediaType = ocispec.MediaTypeImageManifest
	desc.ArtifactType = mv.Manifest.ArtifactType
	mv.Descriptor = desc
	seen := map[string]bool{}
	for _, l := range mv.Manifest.Layers {
		p := layerPath(l)
		if p == "" {
			continue
		}
		if err := ValidatePath(p); err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", ref.WithDigest(d), l.Digest, err)
		}
		if seen[p] {
			return nil, fmt.Errorf("%w: %s: two layers have the path %q", errdef.ErrIntegrity, ref.WithDigest(d), p)
		}
		seen[p] = true
		mv.Files = append(mv.Files, ModelFile{Path: p, Descriptor: l})
	}
	if len(mv.Files) == 0 {
		return nil, fmt.Errorf("%w: %s is not a model: no layer carries a file path (org.cncf.model.filepath or org.opencontainers.image.title)", errdef.ErrInvalidInput, ref.WithDigest(d))
	}
	// A file may not also be a folder of another file ("a" and "a/b").
	for p := range seen {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return nil, fmt.Errorf("%w: %s: %q is both a file and the folder of %q", errdef.ErrIntegrity, ref.WithDigest(d), dir, p)
			}
		}
	}
	return mv, nil
}

// decodeConfig decodes a JSON config blob; nil if it is not a JSON object.
func decodeConfig(b []byte) map[string]any {
	var cfg map[string]any
	if json.Unmarshal(b, &cfg) != nil {
		return nil
	}
	return cfg
}

func asIntegrity(err error) error {
	if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) {
		return fmt.Errorf("%w: %v", errdef.ErrIntegrity, err)
	}
	return err
}

func readVerified(r io.Reader, d digest.Digest) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", errdef.ErrIntegrity, MaxManifestBytes)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("%w: content has digest %s, want %s", errdef.ErrIntegrity, got, d)
	}
	return b, nil
}

// layerPath returns a layer's file path: ModelPack's filepath annotation
// (cncf, then cnai), else the title oras uses.
func layerPath(l ocispec.Descriptor) string {
	for _, k := range []string{mediatypes.AnnotationFilepath, mediatypes.LegacyAnnotationFilepath, mediatypes.AnnotationTitle} {
		if p := l.Annotations[k]; p != "" {
			return p
		}
	}
	return ""
}

// ValidatePath refuses a file path from a manifest that could write outside
// the target folder: absolute paths, ".." elements, backslashes, NUL, and
// paths that are not in clean form. Errors wrap errdef.ErrIntegrity.
func ValidatePath(p string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: file path %q %s; refusing to write outside the target folder", errdef.ErrIntegrity, p, why)
	}
	switch {
	case p == "" || p == ".":
		return bad("is empty")
	case strings.ContainsRune(p, 0):
		return bad("contains NUL")
	case strings.Contains(p, `\`):
		return bad(`contains a backslash`)
	case strings.HasPrefix(p, "/"):
		return bad("is absolute")
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return bad("contains ..")
		}
	}
	if strings.HasPrefix(p, ".modelreg-") || strings.Contains(p, stagingMark) {
		return bad("uses a name reserved for modelreg's temporary folders")
	}
	if path.Clean(p) != p {
		return bad("is not a clean relative path")
	}
	return nil
}

// smallFetchAttempts bounds retries of manifest and config fetches, whose
// bodies the transport's retry cannot resend: a body cut or truncated in
// transit would otherwise fail a pull whose blobs would all resume.
const smallFetchAttempts = 3

type stopError struct{ error }

func (s stopError) Unwrap() error { return s.error }

// stop marks an error retrySmall must not retry (not found).
func stop(err error) error { return stopError{err} }

// retrySmall runs fetch up to smallFetchAttempts times, 200 ms apart,
// returning the last error.
func retrySmall(ctx context.Context, fetch func() error) error {
	var err error
	for i := 0; i < smallFetchAttempts; i++ {
		if err = fetch(); err == nil {
			return nil
		}
		var s stopError
		if errors.As(err, &s) {
			return s.error
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
	return err
}
