package oci

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"time"

	modelspec "github.com/modelpack/model-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
)

// File is one regular file of a model folder, which becomes one raw layer.
type File struct {
	// Path is the path relative to the model folder, with forward slashes.
	Path string
	// Abs is the path on disk (symlinks are followed).
	Abs string
	// Size is the file size in bytes.
	Size int64
	// Mode holds the permission bits.
	Mode fs.FileMode
	// Role is the file's ModelPack role, from mediatypes.RoleOf.
	Role mediatypes.Role
	// Digest is the sha256 of the content, filled in by the transfer engine.
	Digest digest.Digest
}

// ScanDir lists the files below dir that a push takes, sorted by relative
// path, with the safe defaults of ScanModelDir (whose rules and errors it
// follows).
func ScanDir(dir string) ([]File, error) {
	s, err := ScanModelDir(dir, ScanOptions{})
	return s.Files, err
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "link to a folder"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// Metadata is what a push says about a model version besides its files.
type Metadata struct {
	// Name goes into the config's descriptor.name (the repository's last
	// path element by default).
	Name string
	// Annotations are the manifest annotations: lineage, source, revision
	// and the user's own. Keys are sorted by encoding/json, so the manifest
	// is deterministic.
	Annotations map[string]string
	// Info is what the files say (format, parameters, precision, ...).
	Info ModelInfo
}

// Package is a packed model version: the bytes of its manifest and config.
type Package struct {
	Manifest     []byte
	ManifestDesc ocispec.Descriptor
	Config       []byte
	ConfigDesc   ocispec.Descriptor
}

// Pack builds the ModelPack v1 manifest and config for files, whose Digest
// must be set. The result depends only on the files (path, bytes, mode) and
// on meta: no wall-clock time goes in unless meta carries
// org.opencontainers.image.created, so the same input gives the same digest.
func Pack(files []File, meta Metadata) (Package, error) {
	cfg := modelspec.Model{
		Descriptor: modelspec.ModelDescriptor{
			Name:      meta.Name,
			Family:    meta.Info.Family,
			SourceURL: meta.Annotations[mediatypes.AnnotationSource],
			Revision:  meta.Annotations[mediatypes.AnnotationRevision],
			Licenses:  meta.Info.Licenses,
		},
		Config: modelspec.ModelConfig{
			Architecture: meta.Info.Architecture,
			Format:       meta.Info.Format,
			ParamSize:    meta.Info.ParamSize,
			Precision:    meta.Info.Precision,
			Quantization: meta.Info.Quantization,
		},
		ModelFS: modelspec.ModelFS{Type: "layers"},
	}
	if desc := meta.Annotations[mediatypes.AnnotationDescription]; desc != "" {
		cfg.Descriptor.Description = desc
	}
	if created := meta.Annotations[mediatypes.AnnotationCreated]; created != "" {
		t, err := time.Parse(time.RFC3339, created)
		if err != nil {
			return Package{}, fmt.Errorf("%w: annotation %s=%q is not an RFC 3339 time", errdef.ErrInvalidInput, mediatypes.AnnotationCreated, created)
		}
		cfg.Descriptor.CreatedAt = &t
	}
	layers := make([]ocispec.Descriptor, 0, len(files))
	for _, f := range files {
		if f.Digest == "" {
			return Package{}, fmt.Errorf("internal error: %s has no digest", f.Path)
		}
		md, err := json.Marshal(modelspec.FileMetadata{
			Name: f.Path, Mode: uint32(f.Mode.Perm()), Size: f.Size,
			ModTime: time.Unix(0, 0).UTC(), Typeflag: '0',
		})
		if err != nil {
			return Package{}, err
		}
		layers = append(layers, ocispec.Descriptor{
			MediaType: f.Role.MediaType(),
			Digest:    f.Digest,
			Size:      f.Size,
			Annotations: map[string]string{
				mediatypes.AnnotationFilepath:     f.Path,
				mediatypes.AnnotationTitle:        f.Path,
				mediatypes.AnnotationFileMetadata: string(md),
			},
		})
		cfg.ModelFS.DiffIDs = append(cfg.ModelFS.DiffIDs, f.Digest)
	}
	cfgBytes, err := json.Marshal(cfg)
	if err != nil {
		return Package{}, err
	}
	cfgDesc := ocispec.Descriptor{
		MediaType: mediatypes.ModelConfig,
		Digest:    digest.FromBytes(cfgBytes),
		Size:      int64(len(cfgBytes)),
	}
	annotations := map[string]string{}
	for k, v := range meta.Annotations {
		annotations[k] = v
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: mediatypes.ArtifactTypeModel,
		Config:       cfgDesc,
		Layers:       layers,
		Annotations:  annotations,
	}
	mBytes, err := json.Marshal(m)
	if err != nil {
		return Package{}, err
	}
	pkg := Package{
		Manifest: mBytes,
		ManifestDesc: ocispec.Descriptor{
			MediaType:    ocispec.MediaTypeImageManifest,
			ArtifactType: mediatypes.ArtifactTypeModel,
			Digest:       digest.FromBytes(mBytes),
			Size:         int64(len(mBytes)),
		},
		Config:     cfgBytes,
		ConfigDesc: cfgDesc,
	}
	if err := checkPackageSize(pkg, len(files)); err != nil {
		return Package{}, err
	}
	return pkg, nil
}

// CheckPackable packs files and meta with placeholder digests, before any
// digest is known, and refuses a manifest or config larger than
// MaxManifestBytes with an error wrapping errdef.ErrInvalidInput. Every
// sha256 digest has the same length, so the size is the one Pack will give
// once the files are hashed: a push can refuse an oversized model version
// before its first blob upload. 4 MiB is the size the distribution spec
// asks registries to accept at least (distribution-spec#293) and what
// pulls read.
func CheckPackable(files []File, meta Metadata) error {
	placeholder := make([]File, len(files))
	copy(placeholder, files)
	for i := range placeholder {
		placeholder[i].Digest = digest.NewDigestFromEncoded(digest.SHA256, strings.Repeat("0", 64))
	}
	pkg, err := Pack(placeholder, meta)
	if err != nil {
		return err
	}
	return checkPackageSize(pkg, len(files))
}

func checkPackageSize(pkg Package, n int) error {
	for _, b := range []struct {
		what string
		size int
	}{{"manifest", len(pkg.Manifest)}, {"config", len(pkg.Config)}} {
		if b.size > MaxManifestBytes {
			// Layers cost about the same each, so the count that fits is
			// proportional.
			fit := int(int64(n) * MaxManifestBytes / int64(b.size))
			return fmt.Errorf("%w: the %s of these %d files would be %s, over the %s registries must accept (distribution-spec#293), so nothing is uploaded: push at most about %d files (leave some out with %s, or pack small files into an archive)",
				errdef.ErrInvalidInput, b.what, n, formatBytes(int64(b.size)), formatBytes(MaxManifestBytes), fit, IgnoreFile)
		}
	}
	return nil
}
