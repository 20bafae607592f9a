package oci

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
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

// ScanDir lists the regular files below dir, sorted by relative path.
// Symlinks to regular files are followed and stored as regular files;
// entries whose name starts with "." (.git, .cache, ...) are skipped.
// Errors (wrapping errdef.ErrInvalidInput) name the folder: it is missing, not
// a folder, holds no files, or holds a symlink to a folder or a special file.
func ScanDir(dir string) ([]File, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: model folder %s: %v", errdef.ErrInvalidInput, dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%w: model folder %s is not a folder; give the folder that holds the model files", errdef.ErrInvalidInput, dir)
	}
	var files []File
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if err := ValidatePath(rel); err != nil {
			// Refuse at push what every pull would refuse (e.g. a backslash).
			return fmt.Errorf("%s: rename the file: %v", rel, err)
		}
		fi, err := os.Stat(p) // follows symlinks
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is a %s, not a regular file; remove it or point the link at a file", rel, describeMode(fi.Mode()))
		}
		files = append(files, File{
			Path: rel, Abs: p, Size: fi.Size(), Mode: fi.Mode().Perm(),
			Role: mediatypes.RoleOf(rel),
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: model folder %s: %v", errdef.ErrInvalidInput, dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: model folder %s holds no files (names starting with '.' are skipped)", errdef.ErrInvalidInput, dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
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
	return Package{
		Manifest: mBytes,
		ManifestDesc: ocispec.Descriptor{
			MediaType:    ocispec.MediaTypeImageManifest,
			ArtifactType: mediatypes.ArtifactTypeModel,
			Digest:       digest.FromBytes(mBytes),
			Size:         int64(len(mBytes)),
		},
		Config:     cfgBytes,
		ConfigDesc: cfgDesc,
	}, nil
}
