package e2e

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	modelspec "github.com/modelpack/model-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
)

// The refusal tests: each bad input fails with its own exit code (1 for
// damaged or hostile content, 3 for a failed signature or policy check)
// and a precise message, and the target folder (pre-existing, with a sentinel file)
// is left exactly as it was, with nothing written beside it.

// TestRefuseTamperedBlob corrupts one stored blob on the registry's disk
// (same size, one byte flipped) and pulls.
func TestRefuseTamperedBlob(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		repo := repoName(t)
		src := copyModel(t, modelSilero)
		// Unique content, so the blob is not shared with other tests in
		// distribution's global blob store.
		calib := filepath.Join(src, "calibration.bin")
		writeFile(t, calib, randomBytes(t, 64<<10))
		var p pushJSON
		c.okJSON(&p, "push", r.ref(repo, ""), src)

		tamperBlob(t, r, repo, fileSHA256(t, calib))
		target, parent := targetWithSentinel(t)
		// Damaged content is an integrity error (exit 1), not a denial:
		// no signature or policy was asked for.
		res := c.fails([]int{exitError}, "pull", r.ref(repo, ":"+p.Version), target)
		wantStderr(t, res, `blob `+regexp.QuoteMeta(fileSHA256(t, calib))+`: integrity check failed: content does not match its descriptor \(its bytes hash to sha256:[0-9a-f]{64}\); the registry holds damaged or tampered data`)
		parent.assertUnchanged(t, res)
	})
}

// TestRefusePathEscape pulls hand-made ModelPack manifests whose second
// file's title and filepath leave the target folder.
func TestRefusePathEscape(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		cases := []struct {
			name string
			// path is the file path carried by the manifest; setup may
			// prepare the pre-existing target folder.
			path  func(t *testing.T) string
			setup func(t *testing.T, target string) (mustStayEmpty string)
		}{
			{name: "dotdot", path: func(*testing.T) string { return "../escape.txt" }},
			{name: "nested-dotdot", path: func(*testing.T) string { return "sub/../../escape.txt" }},
			{name: "absolute", path: func(t *testing.T) string { return filepath.Join(t.TempDir(), "abs-escape.txt") }},
			{
				name: "symlink",
				path: func(*testing.T) string { return "data/escape.txt" },
				// The target already holds data -> a folder elsewhere.
				setup: func(t *testing.T, target string) string {
					outside := t.TempDir()
					if err := os.Symlink(outside, filepath.Join(target, "data")); err != nil {
						t.Fatal(err)
					}
					return outside
				},
			},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				c := newCLI(t)
				repo := repoName(t)
				evil := tc.path(t)
				pushEscapingModel(t, r, repo, evil)

				target, _ := targetWithSentinel(t)
				var outside string
				if tc.setup != nil {
					outside = tc.setup(t, target)
				}
				parent := takeSnapshot(t, filepath.Dir(target))
				res := c.fails([]int{exitError}, "pull", r.ref(repo, ":v1"), target)
				wantStderr(t, res, `integrity check failed: .*file path "`+regexp.QuoteMeta(evil)+`" [^\n]*; refusing to write outside the target folder`)
				parent.assertUnchanged(t, res)
				if filepath.IsAbs(evil) {
					if _, err := os.Lstat(evil); !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("the refused pull wrote %s (%v)", evil, err)
					}
				}
				if outside != "" {
					if entries, err := os.ReadDir(outside); err != nil || len(entries) > 0 {
						t.Fatalf("the refused pull wrote through the symlink into %s: %v %v", outside, entries, err)
					}
				}
			})
		}
	})
}

// pushEscapingModel pushes, with oras-go, a ModelPack model tagged v1 with
// a harmless ok.txt first and then a file at evilPath.
func pushEscapingModel(t *testing.T, r *registry, repo, evilPath string) {
	t.Helper()
	rc := repoClient(t, r, repo)
	okData := []byte("a harmless file\n")
	evilData := []byte("written outside the target folder " + hex.EncodeToString(randomBytes(t, 8)) + "\n")
	okLayer := pushBlob(t, rc, modelspec.MediaTypeModelDocRaw, okData)
	okLayer.Annotations = fileAnnotations(t, "ok.txt", len(okData))
	evilLayer := pushBlob(t, rc, modelspec.MediaTypeModelDocRaw, evilData)
	evilLayer.Annotations = fileAnnotations(t, evilPath, len(evilData))
	cfg, err := json.Marshal(modelspec.Model{
		Descriptor: modelspec.ModelDescriptor{Name: "escape"},
		ModelFS:    modelspec.ModelFS{Type: "layers", DiffIDs: []digest.Digest{okLayer.Digest, evilLayer.Digest}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pushManifest(t, rc, ocispec.Manifest{
		ArtifactType: modelspec.ArtifactTypeModelManifest,
		Config:       pushBlob(t, rc, modelspec.MediaTypeModelConfig, cfg),
		Layers:       []ocispec.Descriptor{okLayer, evilLayer},
	}, "v1")
}

// fileAnnotations are the layer annotations modelreg writes for a file:
// title (for oras), ModelPack filepath and file metadata.
func fileAnnotations(t *testing.T, path string, size int) map[string]string {
	t.Helper()
	meta, err := json.Marshal(modelspec.FileMetadata{
		Name: path, Mode: 0o644, Size: int64(size), Typeflag: '0',
		ModTime: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		ocispec.AnnotationTitle:          path,
		modelspec.AnnotationFilepath:     path,
		modelspec.AnnotationFileMetadata: string(meta),
	}
}

// TestRefuseUnsignedProduction points production at an unsigned version
// (alias set, bypassing promote) and pulls it with deploy-time checks.
func TestRefuseUnsignedProduction(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		repo := repoName(t)
		src := copyModel(t, modelSilero)
		writeFile(t, filepath.Join(src, "README.md"), []byte("# unsigned\n"))
		var p pushJSON
		c.okJSON(&p, "push", r.ref(repo, ""), src, "--source", lineageSource)
		c.ok("alias", "set", r.ref(repo, ":"+p.Version), "production")

		c.ok("keygen", "--prefix", "release")
		pub := filepath.Join(c.dir, "release.pub")
		policyPath := filepath.Join(c.dir, "policy.yaml")
		// Only a signature rule (and who may promote): the version is
		// neither signed nor promoted.
		writeFile(t, policyPath, []byte(`apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [release.pub], minSigners: 1}
    promoters: {keys: [release.pub]}
`))

		target, parent := targetWithSentinel(t)
		res := c.fails([]int{exitDenied}, "pull", r.ref(repo, ":production"), target, "--policy", policyPath)
		wantStderr(t, res, `signature|signed|promot`)
		parent.assertUnchanged(t, res)

		res = c.fails([]int{exitDenied}, "pull", r.ref(repo, ":production"), target, "--key", pub)
		wantStderr(t, res, `signature|signed`)
		parent.assertUnchanged(t, res)
	})
}

// TestRefuseSignatureForAnotherDigest copies the cosign signature manifest
// of version A to the signature tag of version B: the signed payload names
// A, so B must not verify.
func TestRefuseSignatureForAnotherDigest(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		repo := repoName(t)
		srcA := copyModel(t, modelSilero)
		srcB := copyModel(t, modelSilero)
		writeFile(t, filepath.Join(srcB, "README.md"), []byte("# B\n"))
		var a, b pushJSON
		c.okJSON(&a, "push", r.ref(repo, ""), srcA)
		c.okJSON(&b, "push", r.ref(repo, ""), srcB)
		if a.Digest == b.Digest {
			t.Fatalf("A and B have the same digest %s", a.Digest)
		}

		c.ok("keygen", "--prefix", "release")
		key, pub := filepath.Join(c.dir, "release.key"), filepath.Join(c.dir, "release.pub")
		c.ok("sign", r.ref(repo, "@"+a.Digest), "--key", key)
		c.ok("verify", r.ref(repo, "@"+a.Digest), "--key", pub)

		// A's signature, in both formats, made to look like B's: the
		// bundle referrer re-pushed with subject B, the .sig tag copied.
		rc := repoClient(t, r, repo)
		copyReferrers(t, rc, rc, a.Digest, b.Digest)
		c.ok("--legacy-tags", "sign", r.ref(repo, "@"+a.Digest), "--key", key)
		sigDesc, sig, err := oras.FetchBytes(opCtx(t), rc, cosignSigTag(t, a.Digest), oras.DefaultFetchBytesOptions)
		if err != nil {
			t.Fatalf("fetch the signature manifest of A (%s): %v", cosignSigTag(t, a.Digest), err)
		}
		if _, err := oras.TagBytes(opCtx(t), rc, sigDesc.MediaType, sig, cosignSigTag(t, b.Digest)); err != nil {
			t.Fatalf("copy the signature of A to %s: %v", cosignSigTag(t, b.Digest), err)
		}

		res := c.fails([]int{exitDenied}, "verify", r.ref(repo, "@"+b.Digest), "--key", pub)
		wantStderr(t, res, `signature`)

		target, parent := targetWithSentinel(t)
		res = c.fails([]int{exitDenied}, "pull", r.ref(repo, "@"+b.Digest), target, "--key", pub)
		wantStderr(t, res, `signature`)
		parent.assertUnchanged(t, res)

		// Oracle: the cosign CLI refuses it too, so the setup is sound.
		if cv := c.tool("cosign3", "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry",
			r.ref(repo, "@"+b.Digest)); cv.code == exitOK {
			t.Errorf("cosign verify accepted A's signature for B; the test setup is wrong:\n%s", cv)
		}
	})
}
