package signing

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"
)

// anon reaches the test registry without reading the docker config of
// whoever runs the tests.
var anon = RegistryOptions{Keychain: authn.NewMultiKeychain()}

// legacyAnon is anon writing cosign v2 tags only, for the tests of that
// format.
var legacyAnon = RegistryOptions{Keychain: anon.Keychain, Format: FormatLegacy}

// startRegistry serves an in-memory olareg on 127.0.0.1:<free port> for the
// duration of the test and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	reg := olareg.New(config.Config{Storage: config.ConfigStorage{StoreType: config.StoreMem}})
	srv := httptest.NewServer(reg)
	t.Cleanup(func() {
		srv.Close()
		_ = reg.Close()
	})
	return strings.TrimPrefix(srv.URL, "http://")
}

func orasRepo(t *testing.T, repo string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	return r
}

// pushModel pushes a one-layer OCI artifact manifest to repo and returns
// its digest; different content gives different digests.
func pushModel(t *testing.T, repo, content string) digest.Digest {
	t.Helper()
	ctx := t.Context()
	r := orasRepo(t, repo)
	layer, err := oras.PushBytes(ctx, r, "application/vnd.example.file.v1", []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	desc, err := oras.PackManifest(ctx, r, oras.PackManifestVersion1_1, "application/vnd.example.model.v1",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	return desc.Digest
}

// fetchManifest returns the manifest tagged tag in repo, and its raw bytes.
func fetchManifest(t *testing.T, repo, tag string) (ocispec.Manifest, ocispec.Descriptor, []byte) {
	t.Helper()
	desc, rc, err := orasRepo(t, repo).FetchReference(t.Context(), tag)
	if err != nil {
		t.Fatalf("fetching %s:%s: %v", repo, tag, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m, desc, raw
}

// copyTag puts the exact manifest bytes tagged from onto tag to, as an
// attacker with push rights could.
func copyTag(t *testing.T, repo, from, to string) {
	t.Helper()
	_, desc, raw := fetchManifest(t, repo, from)
	if err := orasRepo(t, repo).PushReference(t.Context(), desc, bytes.NewReader(raw), to); err != nil {
		t.Fatalf("tagging %s as %s: %v", from, to, err)
	}
}

// sigTag and attTag are cosign's legacy tags for d.
func sigTag(d digest.Digest) string { return "sha256-" + d.Encoded() + ".sig" }
func attTag(d digest.Digest) string { return "sha256-" + d.Encoded() + ".att" }

// newKey writes a key pair under t.TempDir() and loads both halves.
func newKey(t *testing.T, name string) (*PrivateKey, PublicKey) {
	t.Helper()
	pw := []byte("pw-" + name)
	keyPath, pubPath, err := WriteKeyPair(filepath.Join(t.TempDir(), name), pw)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := LoadPrivateKey(keyPath, pw)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func keyIDs[T any](items []T, id func(T) string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}
