package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestFleet checks the harness itself: every registry answers /v2/, takes
// an OCI artifact with artifactType, resolves its tag, deletes tags exactly
// when it should, and keeps blobs where the tamper tests look for them.
func TestFleet(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		resp, err := http.Get("http://" + r.host + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v2/: %s", resp.Status)
		}

		repo := repoName(t)
		rc := repoClient(t, r, repo)
		payload := randomBytes(t, 4096)
		layer := pushBlob(t, rc, "application/vnd.modelreg.e2e.test.v1", payload)
		cfg := pushBlob(t, rc, ocispec.MediaTypeEmptyJSON, []byte("{}"))
		desc := pushManifest(t, rc, ocispec.Manifest{
			ArtifactType: "application/vnd.modelreg.e2e.fleet.v1",
			Config:       cfg,
			Layers:       []ocispec.Descriptor{layer},
		}, "v1")
		if got := resolve(t, rc, "v1"); got != desc.Digest.String() {
			t.Fatalf("v1 resolves to %s, pushed %s", got, desc.Digest)
		}

		// Tag delete: the alias rm test expects success on olareg and
		// distribution v3 and a refusal on docker-registry 2.8.
		pushManifest(t, rc, ocispec.Manifest{
			ArtifactType: "application/vnd.modelreg.e2e.fleet.v1",
			Config:       cfg,
			Layers:       []ocispec.Descriptor{layer},
		}, "doomed")
		req, err := http.NewRequest(http.MethodDelete, "http://"+r.host+"/v2/"+repo+"/manifests/doomed", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		deleted := resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK
		if deleted != r.tagDelete {
			t.Fatalf("DELETE of a tag answered %s; this registry is expected to support tag delete: %v", resp.Status, r.tagDelete)
		}

		// Stored blob location, and the registry serves stored bytes
		// without checking them (so a tamper test really tests modelreg).
		path := r.blobPath(repo, layer.Digest)
		stored, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("blob %s not stored at %s: %v", layer.Digest, path, err)
		}
		if !bytes.Equal(stored, payload) {
			t.Fatalf("%s does not hold the pushed bytes", path)
		}
		tamperBlob(t, r, repo, layer.Digest.String())
		resp, err = http.Get("http://" + r.host + "/v2/" + repo + "/blobs/" + layer.Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		served, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET tampered blob: %s %v", resp.Status, err)
		}
		if bytes.Equal(served, payload) || len(served) != len(payload) {
			t.Fatalf("%s served the original bytes after tampering (len %d); the tamper tests would not test anything", r.name, len(served))
		}
	})
}

// TestPeerTools checks the pinned peer tools run and are the versions the
// interop tests are about.
func TestPeerTools(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, bin string
		args      []string
		want      string
	}{
		{"oras", "oras", []string{"version"}, "1.3.6"},
		{"cosign", "cosign", []string{"version"}, "v2.6.5"},
		{"distribution", "registry", []string{"--version"}, "v3.1.2"},
		{"docker-registry", dockerRegistryBin, []string{"--version"}, "2.8.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCLI(t)
			bin := tc.bin
			if !filepath.IsAbs(bin) {
				bin = toolPath(t, bin)
			} else if _, err := os.Stat(bin); err != nil {
				t.Fatalf("%s not found: install Debian's docker-registry 2.8 package (apt-get install -y docker-registry): %v", bin, err)
			}
			r := c.exec(bin, tc.args...)
			if r.code != exitOK {
				t.Fatalf("want exit code 0:\n%s", r)
			}
			if !strings.Contains(r.stdout+r.stderr, tc.want) {
				t.Fatalf("version output does not name %s:\n%s", tc.want, r)
			}
		})
	}
}
