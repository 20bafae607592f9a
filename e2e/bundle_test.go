package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Names cosign v3 gives a Sigstore bundle referrer.
const (
	bundleArtifactType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	bundlePredicateAnn = "dev.sigstore.bundle.predicateType"
	cosignSignType     = "https://sigstore.dev/cosign/sign/v1"
	evaluationType     = "https://modelreg.dev/evaluation/v1"
	approvalType       = "https://modelreg.dev/approval/v1"
	promotionType      = "https://modelreg.dev/promotion/v1"
)

// cosign3Offline writes a cosign v3 signing config with no transparency
// log, TSA or Fulcio (`cosign signing-config create` with no services):
// cosign v3 refuses --tlog-upload=false with its default signing config,
// and this is how it signs with a key offline.
func cosign3Offline(c *cli) string {
	p := filepath.Join(c.t.TempDir(), "signing-config.json")
	c.toolOK("cosign3", "signing-config", "create", "--out", p)
	return p
}

// evalPolicy needs a signature by signer and an evaluation with accuracy
// ≥ 0.9 by evaluator for production, and promotion records by promoter.
func evalPolicy(signer, evaluator, promoter string) string {
	return `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [` + signer + `], minSigners: 1}
    attestations:
      - predicateType: ` + evaluationType + `
        keys: [` + evaluator + `]
        condition: "predicate.metrics.accuracy >= 0.9"
    promoters: {keys: [` + promoter + `]}
`
}

// TestCosign3Interop uses cosign v3.1.3 with its defaults (bundles as OCI
// 1.1 referrers; the tag schema on distribution 2.8) as the oracle both
// ways, and cosign v2.6.5 for --legacy-tags and for versions signed the
// old way.
func TestCosign3Interop(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		repo := repoName(t)
		repository := r.ref(repo, "")
		push := func(note string) pushJSON {
			src := copyModel(t, modelSilero)
			writeFile(t, filepath.Join(src, "README.md"), []byte("# "+note+"\n"))
			var p pushJSON
			c.okJSON(&p, "push", repository, src)
			return p
		}
		keys := filepath.Join(c.dir, "keys")
		mkdirAll(t, keys)
		c.in(keys).ok("keygen", "--prefix", "ours")
		c.in(keys).ok("keygen", "--prefix", "promoter")
		c.in(keys).toolOK("cosign3", "generate-key-pair")
		ourKey, ourPub := filepath.Join(keys, "ours.key"), filepath.Join(keys, "ours.pub")
		promoterKey := filepath.Join(keys, "promoter.key")
		c3Key, c3Pub := filepath.Join(keys, "cosign.key"), filepath.Join(keys, "cosign.pub")
		sc := cosign3Offline(c)
		pred := filepath.Join(c.dir, "eval.json")
		writeFile(t, pred, []byte(`{"metrics":{"accuracy":0.95},"evaluatedAt":"2026-12-01T00:00:00Z"}`))

		t.Run("we accept cosign v3 signatures and attestations", func(t *testing.T) {
			c := c.with(t)
			p := push("signed by cosign v3")
			byDigest := r.ref(repo, "@"+p.Digest)
			c.toolOK("cosign3", "sign", "--key", c3Key, "--signing-config", sc, "--yes", "--allow-insecure-registry", byDigest)
			c.ok("verify", byDigest, "--key", c3Pub)
			c.ok("verify", r.ref(repo, ":"+p.Version), "--key", c3Pub)
			c.ok("pull", byDigest, filepath.Join(t.TempDir(), "out"), "--key", c3Pub)
			wrong := c.fails([]int{exitDenied}, "verify", byDigest, "--key", ourPub)
			wantStderr(t, wrong, `signature`)

			policy := filepath.Join(keys, "policy-c3.yaml")
			writeFile(t, policy, []byte(evalPolicy("cosign.pub", "cosign.pub", "promoter.pub")))
			// Without the evaluation the policy refuses.
			deny := c.fails([]int{exitDenied}, "promote", byDigest, "--to", "production", "--policy", policy, "--key", promoterKey)
			wantStderr(t, deny, `evaluation`)
			c.toolOK("cosign3", "attest", "--key", c3Key, "--signing-config", sc, "--type", evaluationType, "--predicate", pred,
				"--yes", "--allow-insecure-registry", byDigest)
			c.ok("promote", byDigest, "--to", "production", "--policy", policy, "--key", promoterKey)
			c.ok("pull", r.ref(repo, ":production"), filepath.Join(t.TempDir(), "deploy"), "--key", c3Pub, "--policy", policy)
		})

		t.Run("cosign v3 accepts our signatures and attestations", func(t *testing.T) {
			c := c.with(t)
			p := push("signed by modelreg")
			byDigest := r.ref(repo, "@"+p.Digest)
			c.ok("sign", byDigest, "--key", ourKey)
			res := c.toolOK("cosign3", "verify", "--key", ourPub, "--insecure-ignore-tlog", "--allow-insecure-registry", byDigest)
			if !strings.Contains(res.stdout, p.Digest) {
				t.Errorf("cosign v3 verify does not name %s:\n%s", p.Digest, res)
			}
			c.ok("attest", byDigest, "--key", ourKey, "--metric", "accuracy=0.93")
			c.toolOK("cosign3", "verify-attestation", "--key", ourPub, "--type", evaluationType, "--insecure-ignore-tlog",
				"--allow-insecure-registry", byDigest)
			// By default nothing goes to the cosign v2 tags.
			v2 := c.tool("cosign", "verify", "--key", ourPub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", byDigest)
			if v2.code == 0 {
				t.Errorf("cosign v2 found a .sig tag that the default format must not write:\n%s", v2)
			}
		})

		t.Run("with --legacy-tags cosign v2 accepts them too", func(t *testing.T) {
			c := c.with(t)
			p := push("legacy tags")
			byDigest := r.ref(repo, "@"+p.Digest)
			c.ok("--legacy-tags", "sign", byDigest, "--key", ourKey)
			c.ok("--legacy-tags", "attest", byDigest, "--key", ourKey, "--metric", "accuracy=0.93")
			c.toolOK("cosign", "verify", "--key", ourPub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", byDigest)
			c.toolOK("cosign", "verify-attestation", "--key", ourPub, "--type", evaluationType, "--insecure-ignore-tlog=true",
				"--allow-insecure-registry", byDigest)
			c.toolOK("cosign3", "verify", "--key", ourPub, "--insecure-ignore-tlog", "--allow-insecure-registry", byDigest)
		})

		t.Run("versions signed the old way still verify and pass pull --policy", func(t *testing.T) {
			c := c.with(t)
			p := push("cosign v2 tags only")
			byDigest := r.ref(repo, "@"+p.Digest)
			// cosign v2.6.5 writes only sha256-<hex>.sig and .att, as
			// modelreg did before bundles.
			c.toolOK("cosign", "sign", "--key", ourKey, "--tlog-upload=false", "--yes", "--allow-insecure-registry", byDigest)
			c.toolOK("cosign", "attest", "--key", ourKey, "--tlog-upload=false", "--type", evaluationType, "--predicate", pred,
				"--yes", "--allow-insecure-registry", byDigest)
			c.ok("verify", byDigest, "--key", ourPub)
			policy := filepath.Join(keys, "policy-v2.yaml")
			writeFile(t, policy, []byte(evalPolicy("ours.pub", "ours.pub", "promoter.pub")))
			c.ok("--legacy-tags", "promote", byDigest, "--to", "production", "--policy", policy, "--key", promoterKey)
			c.ok("pull", r.ref(repo, ":production"), filepath.Join(t.TempDir(), "deploy"), "--key", ourPub, "--policy", policy)
		})

		t.Run("oras discover lists what we wrote with its artifactType", func(t *testing.T) {
			c := c.with(t)
			p := push("discover")
			byDigest := r.ref(repo, "@"+p.Digest)
			c.ok("sign", byDigest, "--key", ourKey)
			c.ok("attest", byDigest, "--key", ourKey, "--metric", "accuracy=0.93")
			c.ok("approve", byDigest, "--key", ourKey, "--for", "staging")
			policy := filepath.Join(keys, "policy-staging.yaml")
			writeFile(t, policy, []byte("apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  staging:\n    promoters: {keys: [promoter.pub]}\n"))
			c.ok("promote", byDigest, "--to", "staging", "--policy", policy, "--key", promoterKey)
			got := discover(c, byDigest)
			for _, want := range []string{cosignSignType, evaluationType, approvalType, promotionType} {
				if got[want] != 1 {
					t.Errorf("oras discover: %d referrers of predicate type %s, want 1 (all: %v)", got[want], want, got)
				}
			}

			// verify and inspect show each: kind, format, key, time and
			// whether the given key verified it.
			type shown struct {
				Referrers []struct {
					Kind, Format, KeyID, Created string
					Verified                     bool
				} `json:"referrers"`
			}
			var v, in shown
			c.okJSON(&v, "verify", byDigest, "--key", ourPub)
			c.okJSON(&in, "inspect", byDigest, "--key", filepath.Join(keys, "promoter.pub"))
			for name, tc := range map[string]struct {
				s        shown
				verified string
			}{"verify": {v, "signature evaluation approval"}, "inspect": {in, "promotion"}} {
				kinds := map[string]bool{}
				for _, r := range tc.s.Referrers {
					kinds[r.Kind] = true
					if r.Format != "bundle" || !strings.HasPrefix(r.KeyID, "sha256:") || r.Created == "" {
						t.Errorf("%s lists %+v", name, r)
					}
					if r.Verified != strings.Contains(tc.verified, r.Kind) {
						t.Errorf("%s: %s verified=%v", name, r.Kind, r.Verified)
					}
				}
				if len(kinds) != 4 {
					t.Errorf("%s lists kinds %v, want signature, evaluation, approval and promotion", name, kinds)
				}
			}
		})
	})
}

// discover runs `oras discover` on ref and counts its bundle referrers by
// the predicate type annotation; other artifact types count under their
// artifactType.
func discover(c *cli, ref string) map[string]int {
	c.t.Helper()
	res := c.toolOK("oras", "discover", "--plain-http", "--format", "json", ref)
	var out struct {
		Referrers []struct {
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
		} `json:"referrers"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		c.t.Fatalf("oras discover --format json: %v\n%s", err, res)
	}
	n := map[string]int{}
	for _, r := range out.Referrers {
		if r.ArtifactType == bundleArtifactType {
			n[r.Annotations[bundlePredicateAnn]]++
		} else {
			n[r.ArtifactType]++
		}
	}
	return n
}

// Concurrent writers of one digest: concurrentSigners keys each sign and
// attest at the same moment, concurrentRounds times.
const (
	concurrentSigners = 10
	concurrentRounds  = 5
)

// TestConcurrentSignAttest starts 20 commands at once on one digest, 10
// `sign` and 10 `attest` by 10 keys, in 5 rounds (a fresh version each):
// every signature and attestation survives, on registries with the
// referrers API and on distribution 2.8, where all writers share the tag
// schema index.
func TestConcurrentSignAttest(t *testing.T) {
	t.Parallel()
	needModelreg(t)
	base := newCLI(t)
	keys := filepath.Join(base.dir, "keys")
	mkdirAll(t, keys)
	var keyFiles, pubFiles []string
	for i := range concurrentSigners {
		prefix := fmt.Sprintf("k%02d", i)
		base.in(keys).ok("keygen", "--prefix", prefix)
		keyFiles = append(keyFiles, filepath.Join(keys, prefix+".key"))
		pubFiles = append(pubFiles, filepath.Join(keys, prefix+".pub"))
	}
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := base.with(t)
		repo := repoName(t)
		for round := range concurrentRounds {
			src := copyModel(t, modelSilero)
			writeFile(t, filepath.Join(src, "README.md"), []byte(fmt.Sprintf("# round %d\n", round)))
			var p pushJSON
			c.okJSON(&p, "push", r.ref(repo, ""), src)
			byDigest := r.ref(repo, "@"+p.Digest)

			var cmds [][]string
			for i := range concurrentSigners {
				cmds = append(cmds, []string{"sign", byDigest, "--key", keyFiles[i]},
					[]string{"attest", byDigest, "--key", keyFiles[i], "--metric", fmt.Sprintf("accuracy=0.%02d", 50+i)})
			}
			results := make([]result, len(cmds))
			errs := make([]error, len(cmds))
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range cmds {
				wg.Go(func() {
					<-start
					results[i], errs[i] = runCommand(c.dir, c.env, modelregBin, cmds[i]...)
				})
			}
			close(start)
			wg.Wait()
			for i, res := range results {
				if errs[i] != nil || res.code != exitOK {
					t.Fatalf("round %d, command %d: %v\n%s", round+1, i+1, errs[i], res)
				}
			}

			got := discover(c, byDigest)
			if got[cosignSignType] != concurrentSigners || got[evaluationType] != concurrentSigners {
				t.Errorf("round %d: %d signatures and %d attestations listed, want %d each", round+1,
					got[cosignSignType], got[evaluationType], concurrentSigners)
			}
			var v struct {
				KeyIDs []string `json:"keyIds"`
			}
			args := []string{byDigest}
			for _, pub := range pubFiles {
				args = append(args, "--key", pub)
			}
			c.okJSON(&v, "verify", args...)
			if len(v.KeyIDs) != concurrentSigners {
				t.Errorf("round %d: verify found %d of %d signers", round+1, len(v.KeyIDs), concurrentSigners)
			}
		}
	})
}

// TestConcurrentLegacySign starts 10 `--legacy-tags sign` at once on one
// digest, twice: all 10 layers survive in the shared cosign v2 .sig tag
// (each writer reads the tag back and writes again when its layer is gone).
func TestConcurrentLegacySign(t *testing.T) {
	t.Parallel()
	needModelreg(t)
	base := newCLI(t)
	keys := filepath.Join(base.dir, "keys")
	mkdirAll(t, keys)
	verifyArgs := []string{}
	var keyFiles []string
	for i := range concurrentSigners {
		prefix := fmt.Sprintf("k%02d", i)
		base.in(keys).ok("keygen", "--prefix", prefix)
		keyFiles = append(keyFiles, filepath.Join(keys, prefix+".key"))
		verifyArgs = append(verifyArgs, "--key", filepath.Join(keys, prefix+".pub"))
	}
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := base.with(t)
		repo := repoName(t)
		for round := range 2 {
			src := copyModel(t, modelSilero)
			writeFile(t, filepath.Join(src, "README.md"), []byte(fmt.Sprintf("# legacy round %d\n", round)))
			var p pushJSON
			c.okJSON(&p, "push", r.ref(repo, ""), src)
			byDigest := r.ref(repo, "@"+p.Digest)
			results := make([]result, concurrentSigners)
			errs := make([]error, concurrentSigners)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range concurrentSigners {
				wg.Go(func() {
					<-start
					results[i], errs[i] = runCommand(c.dir, c.env, modelregBin, "--legacy-tags", "sign", byDigest, "--key", keyFiles[i])
				})
			}
			close(start)
			wg.Wait()
			for i, res := range results {
				if errs[i] != nil || res.code != exitOK {
					t.Fatalf("round %d, signer %d: %v\n%s", round+1, i+1, errs[i], res)
				}
			}
			var v struct {
				KeyIDs    []string `json:"keyIds"`
				Referrers []struct {
					Format string `json:"format"`
				} `json:"referrers"`
			}
			c.okJSON(&v, "verify", append([]string{byDigest}, verifyArgs...)...)
			legacy := 0
			for _, ref := range v.Referrers {
				if ref.Format == "legacy" {
					legacy++
				}
			}
			if len(v.KeyIDs) != concurrentSigners || legacy != concurrentSigners {
				t.Errorf("round %d: %d signers, %d legacy layers, want %d each", round+1, len(v.KeyIDs), legacy, concurrentSigners)
			}
		}
	})
}
