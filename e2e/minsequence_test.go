package e2e

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPromotionMinSequenceInFreshPod: the replay of
// TestPromotionReplayWithNewerRecordHidden seen from a fresh pod, whose
// state folder is empty, so the per-machine memory of accepted sequences
// cannot help. Without promoters.minSequence the replayed record 1 is
// honoured (the gap the deploy docs name); with minSequence 2 in the
// policy it is refused.
func TestPromotionMinSequenceInFreshPod(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		const rules = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]`
		pol := p.policy("policy.yaml", rules+"}\n")
		floor := p.policy("policy-floor.yaml", rules+", minSequence: 2}\n")
		v1, v2, decoy := p.push("one"), p.push("two"), p.push("decoy")
		for _, v := range []pushed{v1, v2, decoy} {
			p.sign(v.Digest)
		}
		p.promoteOK(p.byDigest(v1.Digest), "production", pol)
		p.promoteOK(p.byDigest(v2.Digest), "production", pol)
		fresh := func() *cli { return p.c.withEnv("MODELREG_STATE_DIR=" + filepath.Join(t.TempDir(), "state")) }
		if res := fresh().modelreg("pull", p.ref(":production"), filepath.Join(t.TempDir(), "m"), "--policy", floor); res.code != exitOK {
			t.Fatalf("pull production at record 2 with minSequence 2: want exit code 0:\n%s", res)
		}

		// Hide record 2 and move the tag back to v1, as an attacker with
		// push rights can.
		p.c.ok("attest", p.byDigest(decoy.Digest), "--key", p.key("eval"), "--metric", "accuracy=0.5")
		p.hideReferrers(v2.Digest)
		p.copyAttestations(p.repo, decoy.Digest, v2.Digest)
		p.moveTag(v1.Digest, "production")
		if got := sequences(p.aliasHistory("production", pol).Records); !slices.Equal(got, []int64{1}) {
			t.Fatalf("after hiding record 2, history shows sequences %v, want only 1 (the setup did not hide it)", got)
		}

		// A fresh pod remembers nothing: the replay passes without a floor…
		if res := fresh().modelreg("pull", p.ref(":production"), filepath.Join(t.TempDir(), "m"), "--policy", pol); res.code != exitOK {
			t.Fatalf("without minSequence a fresh pod has no defence against the replay; want exit code 0 to show it:\n%s", res)
		}
		// …and is refused with one.
		dir := filepath.Join(t.TempDir(), "m")
		res := fresh().modelreg("pull", p.ref(":production"), dir, "--policy", floor)
		p.denied(res, `sequence 1`, `minSequence of 2`, `replayed`)
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a refused pull created %s (stat: %v)", dir, err)
		}
	}, regOlareg)
}
