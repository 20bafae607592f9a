package oci

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func packDir(t *testing.T, dir string, meta Metadata) Package {
	t.Helper()
	files, err := ScanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if files[i].Digest, err = (DigestCache{}).HashFile(files[i].Abs); err != nil {
			t.Fatal(err)
		}
	}
	pkg, err := Pack(files, meta)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

func TestPackIsDeterministic(t *testing.T) {
	content := map[string]string{"config.json": `{"model_type":"x"}`, "model.onnx": "weights", "sub/README.md": "card", ".git/HEAD": "ignored"}
	a := packDir(t, writeFiles(t, content), Metadata{Name: "m", Annotations: map[string]string{"k": "v"}})
	b := packDir(t, writeFiles(t, content), Metadata{Name: "m", Annotations: map[string]string{"k": "v"}})
	if a.ManifestDesc.Digest != b.ManifestDesc.Digest {
		t.Fatalf("same files and metadata gave %s and %s", a.ManifestDesc.Digest, b.ManifestDesc.Digest)
	}
	c := packDir(t, writeFiles(t, content), Metadata{Name: "m", Annotations: map[string]string{"k": "other"}})
	if c.ManifestDesc.Digest == a.ManifestDesc.Digest {
		t.Fatal("different metadata gave the same digest")
	}

	var m ocispec.Manifest
	if err := json.Unmarshal(a.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != mediatypes.ArtifactTypeModel || m.Config.MediaType != mediatypes.ModelConfig {
		t.Errorf("artifactType %q config %q", m.ArtifactType, m.Config.MediaType)
	}
	want := map[string]string{"config.json": mediatypes.WeightConfigRaw, "model.onnx": mediatypes.WeightRaw, "sub/README.md": mediatypes.DocRaw}
	if len(m.Layers) != len(want) {
		t.Fatalf("%d layers, want %d (dot folders skipped)", len(m.Layers), len(want))
	}
	for _, l := range m.Layers {
		p := l.Annotations[mediatypes.AnnotationFilepath]
		if want[p] != l.MediaType || l.Annotations[mediatypes.AnnotationTitle] != p || l.Annotations[mediatypes.AnnotationFileMetadata] == "" {
			t.Errorf("layer %s: media type %s, annotations %v", p, l.MediaType, l.Annotations)
		}
	}
	if _, ok := m.Annotations[mediatypes.AnnotationCreated]; ok {
		t.Error("the manifest carries a creation time nobody asked for")
	}
}

func TestScanDirErrors(t *testing.T) {
	empty := t.TempDir()
	if _, err := ScanDir(empty); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := ScanDir(filepath.Join(empty, "missing")); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("missing folder: %v", err)
	}
	dir := writeFiles(t, map[string]string{"a.bin": "x"})
	if _, err := ScanDir(filepath.Join(dir, "a.bin")); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("a file instead of a folder: %v", err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	// A symlink to a folder is walked as a link (not followed) and refused.
	if _, err := ScanDir(dir); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("symlink to a folder: %v", err)
	}
}

func TestInspectFilesSafetensors(t *testing.T) {
	dir := t.TempDir()
	header := `{"w":{"dtype":"BF16","shape":[1000,1000],"data_offsets":[0,2000000]},"b":{"dtype":"F32","shape":[1000],"data_offsets":[2000000,2004000]},"__metadata__":{"format":"pt"}}`
	buf := make([]byte, 8)
	buf[0] = byte(len(header))
	buf[1] = byte(len(header) >> 8)
	f := append(append(buf, header...), make([]byte, 2004000)...)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), f, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"llama","transformers_version":"4.46.0","torch_dtype":"float16"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("---\nlicense: apache-2.0\n---\n# m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := ScanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	info := InspectFiles(files)
	if info.Format != "safetensors" || info.ParamSize != "1M" || info.Precision != "bfloat16" ||
		info.Family != "llama" || info.Architecture != "transformer" || len(info.Licenses) != 1 || info.Licenses[0] != "apache-2.0" {
		t.Errorf("InspectFiles = %+v", info)
	}
}
