package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInterop uses the peer tools as oracles on every registry: the oras
// CLI restores our files, the cosign CLI accepts our signature, and we
// accept a signature made by the cosign CLI.
func TestInterop(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		repo := repoName(t)
		repository := r.ref(repo, "")

		// face-api-tiny has four files; a nested folder checks that
		// relative paths survive too.
		src := copyModel(t, modelFaceAPI)
		writeFile(t, filepath.Join(src, "README.md"), []byte("# face-api-tiny\n"))
		writeFile(t, filepath.Join(src, "docs", "usage", "notes.md"), []byte("Load both manifests.\n"))
		var p pushJSON
		c.okJSON(&p, "push", repository, src)
		byDigest := r.ref(repo, "@"+p.Digest)

		keysDir := filepath.Join(c.dir, "keys")
		mkdirAll(t, keysDir)
		c.in(keysDir).ok("keygen", "--prefix", "ours")
		ourKey, ourPub := filepath.Join(keysDir, "ours.key"), filepath.Join(keysDir, "ours.pub")

		t.Run("oras pull restores the files", func(t *testing.T) {
			c := c.with(t)
			out := filepath.Join(t.TempDir(), "oras")
			c.toolOK("oras", "pull", r.ref(repo, ":"+p.Version), "-o", out, "--plain-http")
			assertSameFiles(t, src, out)
		})

		t.Run("cosign verify accepts our signature", func(t *testing.T) {
			c := c.with(t)
			c.ok("sign", byDigest, "--key", ourKey)
			res := c.toolOK("cosign3", "verify", "--key", ourPub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", byDigest)
			if !strings.Contains(res.stdout, p.Digest) {
				t.Errorf("cosign verify output does not name %s:\n%s", p.Digest, res)
			}
		})

		t.Run("we verify a signature made by cosign", func(t *testing.T) {
			c := c.with(t)
			// A second version, signed only by the cosign CLI with a key
			// the cosign CLI made.
			src2 := copyModel(t, modelFaceAPI)
			writeFile(t, filepath.Join(src2, "README.md"), []byte("# face-api-tiny, signed by cosign\n"))
			var p2 pushJSON
			c.okJSON(&p2, "push", repository, src2)
			cosignDir := filepath.Join(t.TempDir(), "cosign-keys")
			mkdirAll(t, cosignDir)
			c.in(cosignDir).toolOK("cosign", "generate-key-pair")
			cosignKey, cosignPub := filepath.Join(cosignDir, "cosign.key"), filepath.Join(cosignDir, "cosign.pub")
			if _, err := os.Stat(cosignPub); err != nil {
				t.Fatalf("cosign generate-key-pair wrote no cosign.pub: %v", err)
			}
			c.toolOK("cosign", "sign", "--key", cosignKey, "--tlog-upload=false", "--yes", "--allow-insecure-registry",
				r.ref(repo, "@"+p2.Digest))

			c.ok("verify", r.ref(repo, "@"+p2.Digest), "--key", cosignPub)
			c.ok("verify", r.ref(repo, ":"+p2.Version), "--key", cosignPub)
			// The cosign signature does not stand in for another key.
			wrong := c.fails([]int{exitDenied}, "verify", r.ref(repo, "@"+p2.Digest), "--key", ourPub)
			wantStderr(t, wrong, `signature`)
		})
	})
}
