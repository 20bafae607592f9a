package e2e

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	modelspec "github.com/modelpack/model-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/modelreg/modelreg/mediatypes"
)

// Lineage given to the second version of every flow.
const (
	lineageRunID    = "run-42"
	lineageRunURL   = "https://ci.example.com/ml/runs/42"
	lineageSource   = "https://git.example.com/ml/vision.git"
	lineageRevision = "3f2a9c4e8b1d7f6a5c0e9d8b7a6f5e4d3c2b1a09"
	teamAnnotation  = "org.example.team"
	teamValue       = "vision"
)

// TestFlow runs the whole flow of issue 2 with both real models on every
// registry: push with lineage, versions, inspect, aliases, keygen, sign,
// verify, a promotion the policy refuses and one it allows, and a pull by
// `production` with deploy-time verification that restores identical files.
func TestFlow(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		for _, model := range models {
			t.Run(model, func(t *testing.T) {
				t.Parallel()
				testFlow(t, r, model)
			})
		}
	})
}

func testFlow(t *testing.T, r *registry, model string) {
	c := newCLI(t)
	repo := repoName(t)
	repository := r.ref(repo, "")
	ref := func(suffix string) string { return r.ref(repo, suffix) }

	// v1: the model as its authors publish it; no model card, no lineage.
	v1Dir := copyModel(t, model)
	var p1 pushJSON
	c.okJSON(&p1, "push", repository, v1Dir)
	checkPush(t, p1, repository, "v1", true, "latest")
	checkFiles(t, "push v1", v1Dir, p1.Files, true)

	// The same content again reports the existing version.
	var again pushJSON
	c.okJSON(&again, "push", repository, v1Dir)
	if again.Created || again.Version != "v1" || again.Digest != p1.Digest {
		t.Fatalf("second push of identical content: got version %q digest %s created %v, want v1 %s created false",
			again.Version, again.Digest, again.Created, p1.Digest)
	}

	// A dataset to cite as lineage: any artifact; pushed with oras-go.
	dsRepo := repo + "-data"
	dsRC := repoClient(t, r, dsRepo)
	dsLayer := pushBlob(t, dsRC, modelspec.MediaTypeModelDatasetRaw, randomBytes(t, 1024))
	dsConfig := pushBlob(t, dsRC, ocispec.MediaTypeEmptyJSON, []byte("{}"))
	dsDesc := pushManifest(t, dsRC, ocispec.Manifest{
		ArtifactType: "application/vnd.modelreg.e2e.dataset.v1",
		Config:       dsConfig,
		Layers:       []ocispec.Descriptor{dsLayer},
	}, "2026-11")

	// v2: model card, a nested folder, and every lineage flag.
	v2Dir := copyModel(t, model)
	writeFile(t, filepath.Join(v2Dir, "README.md"), []byte("# "+model+"\n\nModel card written by the e2e tests.\n"))
	writeFile(t, filepath.Join(v2Dir, "extra", "labels", "classes.txt"), []byte("speech\nface\n"))
	var p2 pushJSON
	c.okJSON(&p2, "push", repository, v2Dir,
		"--alias", "candidate",
		"--dataset", r.ref(dsRepo, ":2026-11"),
		"--parent", ref(":v1"),
		"--run-id", lineageRunID,
		"--run-url", lineageRunURL,
		"--source", lineageSource,
		"--revision", lineageRevision,
		"--annotation", teamAnnotation+"="+teamValue)
	checkPush(t, p2, repository, "v2", true, "latest", "candidate")
	checkFiles(t, "push v2", v2Dir, p2.Files, true)
	if p2.Digest == p1.Digest {
		t.Fatalf("v2 has the digest of v1 (%s)", p1.Digest)
	}

	// versions, with the short output flag.
	var vs versionsJSON
	decodeJSON(t, c.ok("versions", "-o", "json", repository), &vs)
	if got, want := vs.versionMap(), map[string]string{"v1": p1.Digest, "v2": p2.Digest}; !maps.Equal(got, want) {
		t.Fatalf("versions: got %v, want %v", got, want)
	}
	for _, v := range vs.Versions {
		if v.Version == "v2" && (!slices.Contains(v.Aliases, "latest") || !slices.Contains(v.Aliases, "candidate")) {
			t.Errorf("versions: v2 aliases %v, want latest and candidate", v.Aliases)
		}
	}

	// inspect: the CLI's view, then the manifest as stored (oras-go).
	var in inspectJSON
	c.okJSON(&in, "inspect", ref(":v2"))
	checkInspect(t, in, p1, p2, dsRepo, dsDesc.Digest.String(), r.host)
	checkFiles(t, "inspect v2", v2Dir, in.Files, true)
	checkStoredManifest(t, r, repo, "v2", p2.Digest, v2Dir, model)

	// Aliases.
	c.ok("alias", "set", ref(":v1"), "staging")
	aliases := aliasLs(c, repository)
	for alias, want := range map[string]string{"staging": p1.Digest, "latest": p2.Digest, "candidate": p2.Digest} {
		if aliases[alias] != want {
			t.Errorf("alias ls: %s → %q, want %s (all: %v)", alias, aliases[alias], want, aliases)
		}
	}
	for _, v := range []string{"v1", "v2"} {
		if _, ok := aliases[v]; ok {
			t.Errorf("alias ls lists version tag %s as an alias", v)
		}
	}
	rm := c.modelreg("alias", "rm", repository, "staging")
	if r.tagDelete {
		if rm.code != exitOK {
			t.Fatalf("alias rm: want exit code 0:\n%s", rm)
		}
		if _, ok := aliasLs(c, repository)["staging"]; ok {
			t.Errorf("alias rm: staging is still listed")
		}
	} else {
		if rm.code != exitError {
			t.Fatalf("alias rm on a registry without tag delete: want exit code 1:\n%s", rm)
		}
		wantStderr(t, rm, `delet`, `support`)
		if aliasLs(c, repository)["staging"] != p1.Digest {
			t.Errorf("alias rm failed but staging moved or vanished")
		}
	}

	// Keys and the promotion policy, keys relative to the policy file
	// (the commands run from another folder).
	releaseDir := filepath.Join(c.dir, "release")
	keysDir := filepath.Join(releaseDir, "keys")
	mkdirAll(t, keysDir)
	// release signs models; promoter signs promotion records (moving
	// production is a different permission from signing a model).
	var kg map[string]any
	c.in(keysDir).okJSON(&kg, "keygen", "--prefix", "release")
	priv, pub := filepath.Join(keysDir, "release.key"), filepath.Join(keysDir, "release.pub")
	checkKeyPair(t, priv, pub)
	c.in(keysDir).ok("keygen", "--prefix", "promoter")
	promoterKey := filepath.Join(keysDir, "promoter.key")
	checkKeyPair(t, promoterKey, filepath.Join(keysDir, "promoter.pub"))
	policyPath := filepath.Join(releaseDir, "policy.yaml")
	writeFile(t, policyPath, []byte(productionPolicy("keys/release.pub", "keys/promoter.pub")))

	// v1 breaks every rule: unsigned, no source or dataset annotation, no
	// README.md. The denial lists them all and moves nothing.
	deny := c.fails([]int{exitDenied}, "promote", ref(":v1"), "--to", "production", "--policy", policyPath, "--key", promoterKey)
	wantStderr(t, deny, `signature`, `org\.opencontainers\.image\.source`, `dev\.modelreg\.lineage\.datasets`, `README\.md`)
	if d, ok := aliasLs(c, repository)["production"]; ok {
		t.Fatalf("refused promotion moved production to %s", d)
	}

	// Sign and verify v2; v1 stays unsigned.
	c.ok("sign", ref(":v2"), "--key", priv)
	var ver map[string]any
	out := c.okJSON(&ver, "verify", ref(":v2"), "--key", pub)
	if !strings.Contains(out.stdout, p2.Digest) {
		t.Errorf("verify output does not name the verified digest %s:\n%s", p2.Digest, out)
	}
	unsigned := c.fails([]int{exitDenied}, "verify", ref(":v1"), "--key", pub)
	wantStderr(t, unsigned, `signature`)

	// v2 passes the policy.
	c.ok("promote", ref(":v2"), "--to", "production", "--policy", policyPath, "--key", promoterKey)
	aliases = aliasLs(c, repository)
	if aliases["production"] != p2.Digest {
		t.Fatalf("after promote: production → %q, want %s", aliases["production"], p2.Digest)
	}
	for alias := range aliases {
		if strings.HasPrefix(alias, "sha256-") {
			t.Errorf("alias ls lists the signature tag %s as an alias", alias)
		}
	}

	// Deploy time: pull by production with key and policy.
	deploy := filepath.Join(t.TempDir(), "deploy", "model")
	var pl pullJSON
	c.okJSON(&pl, "pull", ref(":production"), deploy, "--key", pub, "--policy", policyPath)
	if pl.Digest != p2.Digest {
		t.Fatalf("pull production: digest %s, want %s", pl.Digest, p2.Digest)
	}
	assertSameFiles(t, v2Dir, deploy)
	checkFiles(t, "pull production", v2Dir, pl.Files, false)
	if pl.BytesDownloaded <= 0 {
		t.Errorf("pull into an empty folder reports bytesDownloaded %d", pl.BytesDownloaded)
	}

	// Pulling what the folder already holds downloads nothing.
	var again2 pullJSON
	c.okJSON(&again2, "pull", ref(":production"), deploy, "--key", pub, "--policy", policyPath)
	if again2.BytesDownloaded != 0 {
		t.Errorf("second pull of the same version downloaded %d bytes, want 0", again2.BytesDownloaded)
	}
	assertSameFiles(t, v2Dir, deploy)

	// By digest and by version.
	byDigest := filepath.Join(t.TempDir(), "by-digest")
	c.ok("pull", ref("@"+p1.Digest), byDigest)
	assertSameFiles(t, v1Dir, byDigest)
	byVersion := filepath.Join(t.TempDir(), "by-version")
	c.ok("pull", ref(":v2"), byVersion)
	assertSameFiles(t, v2Dir, byVersion)

	// --include keeps only the matching files.
	only := filepath.Join(t.TempDir(), "only-readme")
	c.ok("pull", ref(":v2"), only, "--include", "README.md")
	got, _ := readTree(t, only)
	if len(got) != 1 || got["README.md"] == "" {
		t.Errorf("pull --include README.md wrote %v", got)
	}
}

// productionPolicy is a policy whose production alias needs a signature by
// signerKey, the source and dataset annotations and a README.md, and is
// honoured at deploy time only with a promotion record by promoterKey. Key
// paths are relative to the policy file.
func productionPolicy(signerKey, promoterKey string) string {
	return `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures:
      keys: [` + signerKey + `]
      minSigners: 1
    annotations:
      - org.opencontainers.image.source
      - dev.modelreg.lineage.datasets
    files: ["README.md"]
    promoters:
      keys: [` + promoterKey + `]
`
}

// checkPush checks the JSON of a push.
func checkPush(t *testing.T, p pushJSON, repository, version string, created bool, aliases ...string) {
	t.Helper()
	if !strings.HasPrefix(p.Digest, "sha256:") {
		t.Fatalf("push: digest %q", p.Digest)
	}
	if p.Version != version || p.Created != created {
		t.Fatalf("push: version %q created %v, want %q %v", p.Version, p.Created, version, created)
	}
	if p.Repository != repository || p.Reference != repository+"@"+p.Digest {
		t.Errorf("push: repository %q reference %q, want %q and %q", p.Repository, p.Reference, repository, repository+"@"+p.Digest)
	}
	for _, tag := range append([]string{version}, aliases...) {
		if !slices.Contains(p.Tags, tag) {
			t.Errorf("push: tags %v lack %s", p.Tags, tag)
		}
	}
}

// checkFiles requires files to describe exactly the regular files of dir:
// same relative paths (forward slashes), digests and sizes; withMediaType
// also requires a ModelPack layer media type on each.
func checkFiles(t *testing.T, what, dir string, files []fileJSON, withMediaType bool) {
	t.Helper()
	want := localFiles(t, dir)
	got := map[string]fileJSON{}
	for _, f := range files {
		got[f.Path] = f
	}
	if len(got) != len(files) {
		t.Errorf("%s: duplicate paths in %v", what, files)
	}
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s: file %s missing from the output", what, p)
		case g.Digest != w.Digest || g.Size != w.Size:
			t.Errorf("%s: %s is %s (%d bytes), want %s (%d bytes)", what, p, g.Digest, g.Size, w.Digest, w.Size)
		case withMediaType && g.MediaType != mediatypes.RoleOf(p).MediaType():
			t.Errorf("%s: %s has media type %q, want %q", what, p, g.MediaType, mediatypes.RoleOf(p).MediaType())
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: output lists %s, which is not in %s", what, p, dir)
		}
	}
}

// localFiles lists the regular files under dir by relative path.
func localFiles(t *testing.T, dir string) map[string]fileJSON {
	t.Helper()
	files := map[string]fileJSON{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		files[rel] = fileJSON{Path: rel, Digest: fileSHA256(t, p), Size: fi.Size()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkInspect checks the inspect JSON of v2 against what was pushed.
func checkInspect(t *testing.T, in inspectJSON, p1, p2 pushJSON, dsRepo, dsDigest, host string) {
	t.Helper()
	if in.Digest != p2.Digest {
		t.Fatalf("inspect v2: digest %s, want %s", in.Digest, p2.Digest)
	}
	if in.MediaType != ocispec.MediaTypeImageManifest || in.ArtifactType != modelspec.ArtifactTypeModelManifest {
		t.Errorf("inspect: mediaType %q artifactType %q, want %q %q", in.MediaType, in.ArtifactType,
			ocispec.MediaTypeImageManifest, modelspec.ArtifactTypeModelManifest)
	}
	want := map[string]string{
		ocispec.AnnotationSource:    lineageSource,
		ocispec.AnnotationRevision:  lineageRevision,
		mediatypes.AnnotationRunID:  lineageRunID,
		mediatypes.AnnotationRunURL: lineageRunURL,
		teamAnnotation:              teamValue,
	}
	for k, v := range want {
		if in.Annotations[k] != v {
			t.Errorf("inspect: annotation %s = %q, want %q", k, in.Annotations[k], v)
		}
	}
	// Lineage names digests, never tags.
	if ds := in.Annotations[mediatypes.AnnotationDatasets]; !strings.Contains(ds, host+"/"+dsRepo+"@"+dsDigest) {
		t.Errorf("inspect: %s = %q, want it to name %s", mediatypes.AnnotationDatasets, ds, host+"/"+dsRepo+"@"+dsDigest)
	}
	if parent := in.Annotations[mediatypes.AnnotationParent]; !strings.Contains(parent, p1.Digest) {
		t.Errorf("inspect: %s = %q, want it to name v1's digest %s", mediatypes.AnnotationParent, parent, p1.Digest)
	}
	if len(in.Config) == 0 {
		t.Errorf("inspect: empty config")
	}
}

// checkStoredManifest reads the manifest and config as stored and checks
// the ModelPack format: one raw layer per file with title and filepath
// annotations, and a config whose diffIds are the layer digests.
func checkStoredManifest(t *testing.T, r *registry, repo, tag, wantDigest, dir, model string) {
	t.Helper()
	rc := repoClient(t, r, repo)
	desc, m := fetchManifest(t, rc, tag)
	if desc.Digest.String() != wantDigest {
		t.Fatalf("%s resolves to %s, want %s", tag, desc.Digest, wantDigest)
	}
	if m.ArtifactType != modelspec.ArtifactTypeModelManifest || m.Config.MediaType != modelspec.MediaTypeModelConfig {
		t.Errorf("stored manifest: artifactType %q config %q", m.ArtifactType, m.Config.MediaType)
	}
	files := localFiles(t, dir)
	if len(m.Layers) != len(files) {
		t.Errorf("stored manifest has %d layers for %d files", len(m.Layers), len(files))
	}
	for _, l := range m.Layers {
		p := l.Annotations[modelspec.AnnotationFilepath]
		f, ok := files[p]
		switch {
		case !ok:
			t.Errorf("layer %s: filepath %q is not a file of the model", l.Digest, p)
		case l.Annotations[ocispec.AnnotationTitle] != p:
			t.Errorf("layer %s: title %q, filepath %q", l.Digest, l.Annotations[ocispec.AnnotationTitle], p)
		case l.Digest.String() != f.Digest || l.Size != f.Size:
			t.Errorf("layer %s (%d bytes) for %s, want %s (%d bytes)", l.Digest, l.Size, p, f.Digest, f.Size)
		case l.MediaType != mediatypes.RoleOf(p).MediaType():
			t.Errorf("layer %s: media type %q, want %q", p, l.MediaType, mediatypes.RoleOf(p).MediaType())
		}
		if _, ok := l.Annotations[modelspec.AnnotationFileMetadata]; !ok {
			t.Errorf("layer %s: no %s annotation", p, modelspec.AnnotationFileMetadata)
		}
	}
	cfgData, err := fetchBlob(t, rc, m.Config)
	if err != nil {
		t.Fatalf("config blob: %v", err)
	}
	var cfg modelspec.Model
	if err := json.Unmarshal(cfgData, &cfg); err != nil {
		t.Fatalf("config blob is not a ModelPack config: %v", err)
	}
	if len(cfg.ModelFS.DiffIDs) != len(m.Layers) {
		t.Errorf("config modelfs.diffIds has %d entries for %d layers", len(cfg.ModelFS.DiffIDs), len(m.Layers))
	}
	for i, l := range m.Layers {
		if i < len(cfg.ModelFS.DiffIDs) && cfg.ModelFS.DiffIDs[i] != l.Digest {
			t.Errorf("config diffIds[%d] = %s, layer digest %s", i, cfg.ModelFS.DiffIDs[i], l.Digest)
		}
	}
	if model == modelSilero && cfg.Config.Format != "onnx" {
		t.Errorf("config format %q for an ONNX model, want onnx", cfg.Config.Format)
	}
}

// aliasLs returns alias → digest from `alias ls --output json`.
func aliasLs(c *cli, repository string) map[string]string {
	c.t.Helper()
	var al aliasesJSON
	c.okJSON(&al, "alias ls", repository)
	return al.aliasMap()
}

// checkKeyPair requires a cosign key pair: an encrypted private key and a
// PEM public key.
func checkKeyPair(t *testing.T, priv, pub string) {
	t.Helper()
	k, err := os.ReadFile(priv)
	if err != nil {
		t.Fatalf("keygen wrote no private key: %v", err)
	}
	if !strings.Contains(string(k), "ENCRYPTED SIGSTORE PRIVATE KEY") && !strings.Contains(string(k), "ENCRYPTED COSIGN PRIVATE KEY") {
		t.Errorf("%s is not an encrypted cosign private key", priv)
	}
	p, err := os.ReadFile(pub)
	if err != nil {
		t.Fatalf("keygen wrote no public key: %v", err)
	}
	if !strings.Contains(string(p), "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("%s is not a PEM public key", pub)
	}
}

// fetchBlob reads a blob by descriptor, verified by oras-go.
func fetchBlob(t *testing.T, rc oras.ReadOnlyTarget, desc ocispec.Descriptor) ([]byte, error) {
	t.Helper()
	rd, err := rc.Fetch(opCtx(t), desc)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return content.ReadAll(rd, desc)
}

// TestUsage checks the usage exit code: 2 for a command line that cannot
// mean anything, before any registry is contacted.
func TestUsage(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("--help")
	for _, args := range [][]string{
		{"no-such-command"},
		{"push"},
		{"push", "127.0.0.1:1/e2e/usage"},
		{"pull", "127.0.0.1:1/e2e/usage:v1"},
		{"promote", "127.0.0.1:1/e2e/usage:v1"},
		{"alias", "set", "127.0.0.1:1/e2e/usage:v1"},
		{"pull", "--no-such-flag", "127.0.0.1:1/e2e/usage:v1", "out"},
		{"alias", "set", "--no-such-flag", "127.0.0.1:1/e2e/usage:v1", "staging"},
	} {
		res := c.modelreg(args...)
		if res.code != exitUsage {
			t.Errorf("want exit code %d:\n%s", exitUsage, res)
		}
		// A usage error is one line on stderr; stdout stays for results.
		if res.stdout != "" || !strings.Contains(res.stderr, "modelreg --help") {
			t.Errorf("want the error on stderr only, with a pointer to --help:\n%s", res)
		}
	}
}
