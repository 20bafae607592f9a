package modelreg

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/modelreg/modelreg/oci"
)

// Deploy-time rules of Pull --policy, against the embedded registry
// in-process: each test fails when its rule in promote.go (recordRule,
// checkProtectedAlias) or pull.go is switched off.

const deployPolicy = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]}
`

// TestDeployRefusesHandMovedAlias: production moved by hand (a tag put,
// as `oras tag` does) to a signed version that no promotion record names
// is refused, and nothing is written; the promoted version deploys.
func TestDeployRefusesHandMovedAlias(t *testing.T) {
	g := newGate(t)
	pol := g.policy("policy.yaml", deployPolicy)
	repo := g.repo("team/sentiment")
	promoted, other := g.push(repo, g.model("one")), g.push(repo, g.model("two"))
	g.sign(repo+"@"+promoted, "release")
	g.sign(repo+"@"+other, "release")
	g.promoteOK(g.c, repo+"@"+promoted, "production", pol, "promoter")

	if _, err := g.deploy(g.c, repo+":production", filepath.Join(t.TempDir(), "ok"), pol); err != nil {
		t.Fatalf("deploy of the promoted version: %v", err)
	}
	if _, err := g.c.SetAlias(g.ctx, repo+"@"+other, "production", SetAliasOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "deploy")
	_, err := g.deploy(g.c, repo+":production", out, pol)
	wantDenied(t, "deploy of a hand-moved alias", err, `promotionRecord`, `names `+promoted, `moved outside .modelreg promote.`)
	wantAbsent(t, out)
}

// TestDeployRefusesReplayedRecord: after a deploy accepted record 2, the
// attestation tag holding it is overwritten with another version's
// attestation (hiding it) and production moved back to the version of
// record 1. The registry now shows record 1 as the newest, so a machine
// with no memory deploys it (the premise); the machine that accepted
// record 2 refuses.
func TestDeployRefusesReplayedRecord(t *testing.T) {
	g := newGate(t)
	pol := g.policy("policy.yaml", deployPolicy)
	repo := g.repo("team/sentiment")
	v1, v2 := g.push(repo, g.model("one")), g.push(repo, g.model("two"))
	for _, d := range []string{v1, v2} {
		g.sign(repo+"@"+d, "release")
	}
	g.promoteOK(g.c, repo+"@"+v1, "production", pol, "promoter")
	g.promoteOK(g.c, repo+"@"+v2, "production", pol, "promoter")
	if _, err := g.deploy(g.c, repo+":production", filepath.Join(t.TempDir(), "first"), pol); err != nil {
		t.Fatalf("deploy of record 2: %v", err)
	}

	// Hide record 2 and replay record 1.
	g.hideRecords(repo, v2)
	if _, err := g.c.SetAlias(g.ctx, repo+"@"+v1, "production", SetAliasOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	fresh := g.client(filepath.Join(t.TempDir(), "fresh-state"), nil)
	if _, err := g.deploy(fresh, repo+":production", filepath.Join(t.TempDir(), "fresh"), pol); err != nil {
		t.Fatalf("premise: with record 2 hidden, a machine with no memory should accept record 1: %v", err)
	}

	node := g.client(g.state, nil) // the machine that accepted record 2, as a new process
	out := filepath.Join(t.TempDir(), "replayed")
	_, err := g.deploy(node, repo+":production", out, pol)
	wantDenied(t, "deploy of a replayed record", err, `has sequence 1`, `already accepted sequence 2`)
	wantAbsent(t, out)
}

// TestDeployRefusesExpiredRecord: with promoters.maxAge 1h, a record
// signed 2h ago (by a promoter whose clock says so) is refused at deploy
// time; promoting the same version again renews it.
func TestDeployRefusesExpiredRecord(t *testing.T) {
	g := newGate(t)
	pol := g.policy("policy.yaml", `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub], maxAge: 1h}
`)
	repo := g.repo("team/sentiment")
	d := g.push(repo, g.model("one"))
	g.sign(repo+"@"+d, "release")

	past := g.client(filepath.Join(t.TempDir(), "promoter-state"), func() time.Time { return time.Now().Add(-2 * time.Hour) })
	g.promoteOK(past, repo+"@"+d, "production", pol, "promoter")
	out := filepath.Join(t.TempDir(), "deploy")
	_, err := g.deploy(g.c, repo+":production", out, pol)
	wantDenied(t, "deploy of a 2h-old record", err, `sequence 1`, `older than the policy's promoters.maxAge of 1h0m0s`)
	wantAbsent(t, out)

	// The same record is fresh for a deployer whose clock is 2h behind:
	// the age, not the record, is what is refused.
	behind := g.client(filepath.Join(t.TempDir(), "behind-state"), func() time.Time { return time.Now().Add(-2 * time.Hour) })
	if _, err := g.deploy(behind, repo+":production", filepath.Join(t.TempDir(), "behind"), pol); err != nil {
		t.Fatalf("deploy of a record signed just now by its clock: %v", err)
	}

	g.promoteOK(g.c, repo+"@"+d, "production", pol, "promoter")
	if _, err := g.deploy(g.c, repo+":production", out, pol); err != nil {
		t.Fatalf("deploy after promoting again: %v", err)
	}
}

// TestVerifiedPullRehashesPoisonedCache: a plain pull trusts the digest
// cache for files the folder already holds, so a file tampered after the
// cache named it (same size, mtime restored, and the cache entry made to
// match its new state) is kept; a verified pull hashes what it keeps and
// replaces the file with the signed bytes.
func TestVerifiedPullRehashesPoisonedCache(t *testing.T) {
	g := newGate(t)
	repo := g.repo("team/sentiment")
	src := g.model("one")
	// Weights of at least oci.DefaultCacheMinSize, so the cache names
	// them (smaller files are hashed every time, never trusted from it).
	big := make([]byte, oci.DefaultCacheMinSize+1)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(src, "model.onnx"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	d := g.push(repo, src)
	g.sign(repo+"@"+d, "release")
	keys := []string{g.pub("release")}

	out := filepath.Join(t.TempDir(), "deploy")
	if _, err := g.c.Pull(g.ctx, repo+"@"+d, out, PullOptions{Keys: keys}); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(out, "model.onnx")
	tamper := func() {
		t.Helper()
		fi, err := os.Stat(weights)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(weights)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] ^= 0xff
		}
		if err := os.WriteFile(weights, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(weights, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
		// The cache entry now matches the tampered file (its inode change
		// time moved, which alone would miss): a poisoned cache.
		want, err := digest.Parse(fileDigest(t, filepath.Join(src, "model.onnx")))
		if err != nil {
			t.Fatal(err)
		}
		oci.DefaultDigestCache().Store(weights, want)
	}

	// Premise: the poisoned entry is trusted by a plain pull.
	tamper()
	res, err := g.c.Pull(g.ctx, repo+"@"+d, out, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesDownloaded != 0 || fileDigest(t, weights) == fileDigest(t, filepath.Join(src, "model.onnx")) {
		t.Fatalf("premise: a plain pull should trust the poisoned cache entry and keep the file (downloaded %d bytes)", res.BytesDownloaded)
	}

	res, err = g.c.Pull(g.ctx, repo+"@"+d, out, PullOptions{Keys: keys})
	if err != nil {
		t.Fatalf("verified pull over a tampered file: %v", err)
	}
	wantSameFile(t, filepath.Join(src, "model.onnx"), weights)
	if res.BytesDownloaded == 0 {
		t.Errorf("the verified pull downloaded nothing, yet the file changed")
	}
}

func fileDigest(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := digest.SHA256.FromReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
