package oci

import (
	"bytes"
	"encoding/binary"
	"path"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry"
)

// Native fuzz targets (go test -fuzz; `make fuzz` runs each for FUZZTIME)
// for what modelreg parses from users and registries. Crashers go into
// testdata/fuzz/<FuzzName>/ and run with every go test.

// A reference that parses prints as a reference that parses to the same.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"localhost:5000/team/model", "localhost:5000/team/model:v1", "registry.example.com/a/b/c:latest",
		"127.0.0.1:5000/m@sha256:" + digest.FromString("x").Encoded(), "localhost:5000/m:staging@sha256:" + digest.FromString("y").Encoded(),
		"[::1]:5000/m:v2", "Localhost/UPPER", "", "/", "a/b:", "a/b@", "a/b@sha256:zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			return
		}
		if r.Registry == "" || r.Repository == "" {
			t.Fatalf("ParseReference(%q) = %+v without registry or repository", s, r)
		}
		if r.Tag != "" {
			if err := (registry.Reference{Reference: r.Tag}).ValidateReferenceAsTag(); err != nil {
				t.Fatalf("ParseReference(%q) kept tag %q, which is not a tag: %v", s, r.Tag, err)
			}
		}
		again, err := ParseReference(r.String())
		if err != nil {
			t.Fatalf("ParseReference(%q) = %q, which does not parse: %v", s, r.String(), err)
		}
		if again.Registry != r.Registry || again.Repository != r.Repository || again.Digest != r.Digest ||
			(r.Digest == "" && again.Tag != r.Tag) {
			t.Fatalf("ParseReference(%q) = %+v, but its String %q parses to %+v", s, r, r.String(), again)
		}
		if _, err := ParseRepository(r.Name()); err != nil {
			t.Fatalf("Name %q of %q does not parse as a repository: %v", r.Name(), s, err)
		}
	})
}

// A manifest (and config) a registry serves decodes, or is refused; what
// decodes holds only safe, distinct file paths.
func FuzzDecodeModel(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.cncf.model.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.cncf.model.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},`+
		`"layers":[{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"org.cncf.model.filepath":"model.safetensors"}},`+
		`{"mediaType":"application/vnd.cncf.model.doc.v1.raw","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"annotations":{"org.opencontainers.image.title":"docs/README.md"}}]}`),
		[]byte(`{"descriptor":{"name":"m"},"config":{"paramSize":"1B","format":"safetensors"},"modelfs":{"type":"layers","diffIds":[]}}`))
	f.Add([]byte(`{"layers":[{"annotations":{"org.opencontainers.image.title":"../etc/passwd"}}]}`), []byte(`[]`))
	f.Add([]byte(`{"layers":[{"annotations":{"org.opencontainers.image.title":"a"}},{"annotations":{"org.opencontainers.image.title":"a/b"}}]}`), []byte(`{`))
	f.Fuzz(func(t *testing.T, manifest, config []byte) {
		ref := Reference{Registry: "localhost:5000", Repository: "m", Tag: "v1"}
		d := digest.FromBytes(manifest)
		mv, err := decodeModel(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest}, manifest, ref, d)
		_ = decodeConfig(config)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, f := range mv.Files {
			if err := ValidatePath(f.Path); err != nil {
				t.Fatalf("decoded a file path that ValidatePath refuses: %q: %v", f.Path, err)
			}
			if seen[f.Path] {
				t.Fatalf("decoded %q twice", f.Path)
			}
			seen[f.Path] = true
			for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
				if seen[dir] {
					t.Fatalf("decoded %q as a file and the folder of %q", dir, f.Path)
				}
			}
		}
	})
}

// A safetensors header is accepted only when its tensors tile the data
// section, and reading it never allocates more than the file holds.
func FuzzParseSafetensors(f *testing.F) {
	f.Add(safetensorsFile(`{"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"__metadata__":{"format":"pt"}}`, 12))
	f.Add(safetensorsFile(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, 4))
	f.Add(safetensorsFile(`{"q":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, 2))
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<62))
	f.Fuzz(func(t *testing.T, file []byte) {
		s, err := parseSafetensors(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			return
		}
		if s.params < 0 {
			t.Fatalf("%d parameters", s.params)
		}
		var total int64
		for _, n := range s.bytesBy {
			total += n
		}
		n := binary.LittleEndian.Uint64(file)
		if want := int64(len(file)) - 8 - int64(n); total != want {
			t.Fatalf("tensors hold %d bytes, the data section %d", total, want)
		}
	})
}
