package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The promotion tests of issue 3 on every registry: evaluations, approvals
// and the rules that use them refuse a promotion with exit code 3, a
// message naming the reason, no moved tag and no record; promotions write
// signed records that history lists and rollback follows; and at deploy
// time a protected alias is honoured only when the newest promotion record
// names the digest its tag points at.

// evaluationPolicy asks production for a release signature and an
// evaluation by the eval key with accuracy of at least 0.9.
const evaluationPolicy = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub], minSigners: 1}
    attestations:
      - predicateType: https://modelreg.dev/evaluation/v1
        keys: [keys/eval.pub]
        condition: "predicate.metrics.accuracy >= 0.9"
    promoters: {keys: [keys/promoter.pub]}
`

// TestPromoteRefusesBadEvaluations: an evaluation below the threshold, one
// signed by a key the rule does not list, and one whose statement is about
// another digest each make promote refuse; a good one lets it pass.
func TestPromoteRefusesBadEvaluations(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		pol := p.policy("policy.yaml", evaluationPolicy)
		// production already names a version, set by hand: a refusal
		// must leave it there.
		old := p.push("old")
		p.c.ok("alias", "set", p.ref(":"+old.Version), "production")
		low, foreign, good, other := p.push("low"), p.push("foreign"), p.push("good"), p.push("other")
		for _, v := range []pushed{low, foreign, good, other} {
			p.sign(v.Digest)
		}

		// refused promotes v to production and requires a refusal that
		// changed nothing: the tag, and no promotion record.
		refused := func(p *promo, v pushed, patterns ...string) {
			p.t.Helper()
			res := p.promote(p.byDigest(v.Digest), "production", pol)
			p.denied(res, append([]string{`production`}, patterns...)...)
			if strings.Contains(res.stdout, "Promoted") {
				p.t.Errorf("a refused promotion prints Promoted:\n%s", res)
			}
			p.assertAlias("production", old.Digest)
			p.assertNoRecords("production", pol)
		}

		t.Run("metrics below the threshold", func(t *testing.T) {
			p := p.at(t)
			var a attestJSON
			p.c.okJSON(&a, "attest", p.ref(":"+low.Version), "--key", p.key("eval"),
				"--metric", "accuracy=0.8", "--metric", "f1=0.95", "--evaluator", "e2e")
			if a.Digest != low.Digest || a.PredicateType != predicateEvaluation || a.KeyID != p.keyID("eval") {
				t.Errorf("attest: digest %s type %q key %s, want %s %q %s", a.Digest, a.PredicateType, a.KeyID,
					low.Digest, predicateEvaluation, p.keyID("eval"))
			}
			refused(p, low, `accuracy >= 0\.9`, `0\.8\b`)
		})

		t.Run("evaluation signed by a key the rule does not list", func(t *testing.T) {
			p := p.at(t)
			// The release key is in the policy (it signs models) but not
			// in the evaluation rule; rogue is in no policy at all.
			for _, k := range []string{"release", "rogue"} {
				p.c.ok("attest", p.byDigest(foreign.Digest), "--key", p.key(k), "--metric", "accuracy=0.99")
			}
			refused(p, foreign, `no verified attestation`, `keys/eval\.pub`)
		})

		t.Run("attestation whose subject is another digest", func(t *testing.T) {
			p := p.at(t)
			p.c.ok("attest", p.byDigest(good.Digest), "--key", p.key("eval"), "--metric", "accuracy=0.95")
			// Control: the evaluation passes for its own digest.
			var chk policyCheckJSON
			p.c.okJSON(&chk, "policy check", p.byDigest(good.Digest), "--policy", pol, "--to", "production")
			if !chk.Decision.Allowed {
				t.Fatalf("policy check of the well evaluated version refuses it: %+v", chk.Decision)
			}
			// The evaluation manifest of good, copied onto other's
			// attestation tag: the signed statement still names good.
			p.copyAttestations(p.repo, good.Digest, other.Digest)
			refused(p, other, `no verified attestation`, `keys/eval\.pub`)

			// The copied statement is dropped from the evidence, not
			// counted and then failed for another reason.
			res := p.c.modelreg(jsonArgs("policy check", []string{p.byDigest(other.Digest), "--policy", pol, "--to", "production"})...)
			if res.code != exitDenied {
				t.Fatalf("policy check of the version with a copied attestation: want exit code 3:\n%s", res)
			}
			var copied policyCheckJSON
			decodeJSON(t, res, &copied)
			if len(copied.Evidence.Attestations) != 0 {
				t.Errorf("the evidence of %s lists attestations about another digest: %+v", other.Digest, copied.Evidence.Attestations)
			}
			// Oracle: cosign refuses it as well, so the setup is sound.
			if cv := p.c.tool("cosign3", "verify-attestation", "--key", p.pub("eval"), "--insecure-ignore-tlog=true",
				"--allow-insecure-registry", "--type", predicateEvaluation, p.byDigest(other.Digest)); cv.code == exitOK {
				t.Errorf("cosign verify-attestation accepted good's attestation for other; the test setup is wrong:\n%s", cv)
			}
		})

		t.Run("a passing evaluation promotes", func(t *testing.T) {
			p := p.at(t)
			res := p.promoteOK(p.byDigest(good.Digest), "production", pol)
			if res.Previous != old.Digest || res.Record.PreviousDigest != old.Digest || res.Record.Sequence != 1 {
				t.Errorf("promote: previous %s, record previousDigest %s sequence %d; want %s, %s, 1",
					res.Previous, res.Record.PreviousDigest, res.Record.Sequence, old.Digest, old.Digest)
			}
			if rule := res.Decision.rule(t, "attestations[0]"); !rule.Passed || !strings.Contains(rule.Reason, "0.95") {
				t.Errorf("attestation rule: %+v, want passed naming accuracy 0.95", rule)
			}
			p.assertAlias("production", good.Digest)
		})
	})
}

// approvalPolicy asks production for approvals by two distinct keys.
const approvalPolicy = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    approvals: {keys: [keys/alice.pub, keys/bob.pub], min: 2}
    promoters: {keys: [keys/promoter.pub]}
`

// TestPromoteApprovals: one approval where two are required, two by the
// same key, and one for another alias are refused; two distinct keys pass.
func TestPromoteApprovals(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		pol := p.policy("policy.yaml", approvalPolicy)
		old := p.push("old")
		p.c.ok("alias", "set", p.ref(":"+old.Version), "production")
		v := p.push("candidate")
		ref := p.ref(":" + v.Version)

		refused := func(p *promo, patterns ...string) {
			p.t.Helper()
			p.denied(p.promote(ref, "production", pol), append([]string{`production`, `approvals`}, patterns...)...)
			p.assertAlias("production", old.Digest)
			p.assertNoRecords("production", pol)
		}

		t.Run("one approval where two are required", func(t *testing.T) {
			p := p.at(t)
			var a attestJSON
			p.c.okJSON(&a, "approve", ref, "--key", p.key("alice"), "--approver", "alice", "--comment", "eval reviewed")
			var pred map[string]any
			if err := json.Unmarshal(a.Predicate, &pred); err != nil {
				t.Fatalf("approve: predicate %s: %v", a.Predicate, err)
			}
			if a.Digest != v.Digest || pred["digest"] != v.Digest || pred["approver"] != "alice" || a.KeyID != p.keyID("alice") {
				t.Errorf("approve: digest %s key %s predicate %v; want digest %s, approver alice, key %s",
					a.Digest, a.KeyID, pred, v.Digest, p.keyID("alice"))
			}
			// An approval by a key the rule does not list counts for nothing.
			p.c.ok("approve", ref, "--key", p.key("rogue"), "--approver", "mallory")
			refused(p, `1 of 2`, `keys/bob\.pub`)
		})

		t.Run("two approvals by the same key", func(t *testing.T) {
			p := p.at(t)
			p.c.ok("approve", ref, "--key", p.key("alice"), "--approver", "alice again")
			refused(p, `1 of 2`, `count once`)
		})

		t.Run("an approval for another alias", func(t *testing.T) {
			p := p.at(t)
			p.c.ok("approve", ref, "--key", p.key("bob"), "--approver", "bob", "--for", "staging")
			refused(p, `1 of 2`)
		})

		t.Run("two distinct keys", func(t *testing.T) {
			p := p.at(t)
			p.c.ok("approve", ref, "--key", p.key("bob"), "--approver", "bob", "--for", "production")
			res := p.promoteOK(ref, "production", pol)
			if rule := res.Decision.rule(t, "approvals"); !rule.Passed || !strings.Contains(rule.Reason, "alice") || !strings.Contains(rule.Reason, "bob") {
				t.Errorf("approvals rule: %+v, want passed naming alice and bob", rule)
			}
			p.assertAlias("production", v.Digest)
			h := p.aliasHistory("production", pol)
			if got := sequences(h.Records); !slices.Equal(got, []int64{1}) || h.Records[0].Digest != v.Digest || h.Records[0].PreviousDigest != old.Digest {
				t.Errorf("history of production: sequences %v %+v, want one record of %s after %s", got, h.Records, v.Digest, old.Digest)
			}
		})
	})
}

// stagedPolicy protects staging and production; production requires the
// version to have been promoted to staging first.
const stagedPolicy = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  staging:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]}
  production:
    signatures: {keys: [keys/release.pub]}
    requireAlias: staging
    promoters: {keys: [keys/promoter.pub]}
`

// TestPromotionHistoryAndRollback walks the life of production on every
// registry: staging before production, history, a tag moved by hand to a
// signed version and an older record replayed (both refused at deploy
// time, the folder untouched), rollback, and replay after the rollback.
func TestPromotionHistoryAndRollback(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		pol := p.policy("policy.yaml", stagedPolicy)
		v1, v2, v3 := p.push("one"), p.push("two"), p.push("three")
		if v1.Version != "v1" || v2.Version != "v2" || v3.Version != "v3" {
			t.Fatalf("versions %s %s %s, want v1 v2 v3", v1.Version, v2.Version, v3.Version)
		}
		for _, v := range []pushed{v1, v2, v3} {
			p.sign(v.Digest)
		}
		deployParent := filepath.Join(t.TempDir(), "deploy")
		deploy := filepath.Join(deployParent, "model")
		var prod2 promoteResultJSON // the second promotion to production

		// must runs a step the later ones build on.
		must := func(name string, f func(p *promo)) {
			if !t.Run(name, func(t *testing.T) { f(p.at(t)) }) {
				t.FailNow()
			}
		}
		// refusedPull pulls production and requires a refusal naming the
		// reasons that leaves the deploy folder as it was. It runs as a
		// fresh init container would, with no memory of records accepted
		// before, so the registry's records alone must refuse it.
		refusedPull := func(p *promo, patterns ...string) {
			p.t.Helper()
			before := takeSnapshot(p.t, deployParent)
			tag := p.tagDigest("production")
			fresh := p.c.withEnv("MODELREG_STATE_DIR=" + p.t.TempDir())
			res := fresh.modelreg("pull", p.ref(":production"), deploy, "--policy", pol)
			p.denied(res, patterns...)
			before.assertUnchanged(p.t, res)
			if got := p.tagDigest("production"); got != tag {
				p.t.Errorf("a refused pull moved production from %s to %s", tag, got)
			}
		}

		must("production needs staging first", func(p *promo) {
			p.denied(p.promote(p.ref(":v1"), "production", pol), `requireAlias`, `staging`)
			p.assertAlias("production", "")
			p.assertNoRecords("production", pol)
		})

		must("promote to staging, then to production", func(p *promo) {
			alice, bob := p.as("alice"), p.as("bob")
			check := func(what string, res promoteResultJSON, seq int64, d, prev string) {
				t := p.t
				t.Helper()
				rec := res.Record
				if res.Digest != d || res.Previous != prev || rec.Digest != d || rec.PreviousDigest != prev || rec.Sequence != seq {
					t.Errorf("%s: digest %s previous %q, record digest %s previousDigest %q sequence %d; want %s, %q, sequence %d",
						what, res.Digest, res.Previous, rec.Digest, rec.PreviousDigest, rec.Sequence, d, prev, seq)
				}
				if rec.Repository != p.repository || rec.Signer != p.keyID("promoter") || !rec.Policy.Allowed || rec.Policy.Digest != res.Decision.PolicyDigest {
					t.Errorf("%s: record %+v: want repository %s, signer %s and the allowed policy %s", what, rec, p.repository,
						p.keyID("promoter"), res.Decision.PolicyDigest)
				}
			}
			s1 := alice.promoteOK(p.ref(":v1"), "staging", pol)
			check("v1 to staging", s1, 1, v1.Digest, "")
			p1 := alice.promoteOK(p.ref(":v1"), "production", pol)
			check("v1 to production", p1, 1, v1.Digest, "")
			if rule := p1.Decision.rule(p.t, "requireAlias"); !rule.Passed {
				p.t.Errorf("requireAlias after staging: %+v", rule)
			}
			s2 := bob.promoteOK(p.ref(":v2"), "staging", pol)
			check("v2 to staging", s2, 2, v2.Digest, v1.Digest)
			prod2 = bob.promoteOK(p.ref(":v2"), "production", pol)
			check("v2 to production", prod2, 2, v2.Digest, v1.Digest)
			if prod2.Record.PreviousRecord != p1.Record.RecordDigest || p1.Record.PreviousRecord != "" {
				t.Errorf("record chain: production 2 names previous record %q, record 1 is %s (and names %q)",
					prod2.Record.PreviousRecord, p1.Record.RecordDigest, p1.Record.PreviousRecord)
			}
			p.assertAlias("staging", v2.Digest)
			p.assertAlias("production", v2.Digest)
		})

		must("pull production with the policy", func(p *promo) {
			var pl pullJSON
			p.c.okJSON(&pl, "pull", p.ref(":production"), deploy, "--policy", pol, "--key", p.pub("release"))
			if pl.Digest != v2.Digest {
				p.t.Fatalf("pull production: digest %s, want v2 %s", pl.Digest, v2.Digest)
			}
			assertSameFiles(p.t, v2.dir, deploy)
		})

		t.Run("history lists both aliases newest first", func(t *testing.T) {
			p := p.at(t)
			h := p.history("", "--policy", pol)
			if h.Repository != p.repository {
				t.Errorf("history: repository %q, want %q", h.Repository, p.repository)
			}
			for _, alias := range []string{"staging", "production"} {
				a, ok := h.alias(alias)
				if !ok {
					t.Errorf("history --policy does not list %s: %+v", alias, h)
					continue
				}
				checkAliasTimeline(t, a, v2.Digest, true, []int64{2, 1},
					[]string{v2.Digest, v1.Digest}, []string{v1.Digest, ""}, []string{"bob", "alice"})
				checkTimeline(t, p, alias, a.Records)
				for _, rec := range a.Records {
					if !rec.Verified || !strings.HasSuffix(rec.KeyPath, "promoter.pub") {
						t.Errorf("history --policy: %s record %d verified %v by %q, want verified by keys/promoter.pub", alias, rec.Sequence, rec.Verified, rec.KeyPath)
					}
				}
			}

			// One alias, without keys: the records listed unverified,
			// still newest first with who and when.
			only := p.history("production")
			if len(only.Aliases) != 1 {
				t.Fatalf("history REPO production lists %d aliases, want production only: %+v", len(only.Aliases), only)
			}
			a := only.Aliases[0]
			if a.Alias != "production" || !slices.Equal(sequences(a.Records), []int64{2, 1}) {
				t.Errorf("history REPO production: alias %q sequences %v, want production 2, 1", a.Alias, sequences(a.Records))
			}
			checkTimeline(t, p, "production", a.Records)

			// The text form: one block per alias, newest first.
			text := p.c.ok("history", p.repository, "--policy", pol).stdout
			for _, alias := range []string{"staging", "production"} {
				block := historyBlock(t, text, alias)
				if !regexp.MustCompile(`^` + alias + ` \(now v2\)`).MatchString(block) {
					t.Errorf("history text: the %s block does not start with %q:\n%s", alias, alias+" (now v2)", text)
				}
				seq2 := regexp.MustCompile(`(?m)^\s+2\s+v2\s+v1\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+bob\s`).FindStringIndex(block)
				seq1 := regexp.MustCompile(`(?m)^\s+1\s+v1\s+-\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+alice\s`).FindStringIndex(block)
				if seq2 == nil || seq1 == nil || seq2[0] > seq1[0] {
					t.Errorf("history text: the %s block does not list sequence 2 (v2 after v1, bob) above sequence 1 (v1, alice):\n%s", alias, block)
				}
				if strings.Contains(block, "explains") {
					t.Errorf("history text flags %s although its records explain it:\n%s", alias, block)
				}
			}
		})

		must("a tag moved by hand to a signed version is refused at deploy time", func(p *promo) {
			// v3 is signed and held staging, so it meets every rule of
			// production; it only lacks a promotion record for it.
			p.c.ok("verify", p.ref(":v3"), "--key", p.pub("release"))
			p.as("dave").promoteOK(p.ref(":v3"), "staging", pol)
			var chk policyCheckJSON
			p.c.okJSON(&chk, "policy check", p.ref(":v3"), "--policy", pol, "--to", "production")
			p.orasTag("v3", "production")
			refusedPull(p, `production`, `promotion record`)

			a := p.aliasHistory("production", pol)
			if a.Explained || a.Current != v3.Digest {
				p.t.Errorf("history after the hand move: explained %v current %s, want explained false, current v3 %s", a.Explained, a.Current, v3.Digest)
			}
			if !slices.Equal(sequences(a.Records), []int64{2, 1}) {
				p.t.Errorf("history after the hand move: sequences %v, want 2, 1", sequences(a.Records))
			}
			text := p.c.ok("history", p.repository, "production", "--policy", pol).stdout
			if !regexp.MustCompile(`(?is)` + regexp.QuoteMeta(v3.Digest) + `.*(no verified promotion record explains|not explained)`).MatchString(text) {
				p.t.Errorf("history text does not flag production (at v3 %s) as not explained by a record:\n%s", v3.Digest, text)
			}
		})

		must("an older promotion record replayed is refused", func(p *promo) {
			// v1 carries a valid record for production (sequence 1);
			// sequence 2 names v2.
			p.moveTag(v1.Digest, "production")
			refusedPull(p, `production`, `promotion record`, `sequence 2`)
			if a := p.aliasHistory("production", pol); a.Explained {
				p.t.Errorf("history explains production at v1 by the replayed record: %+v", a)
			}
		})

		must("rollback restores the previous version", func(p *promo) {
			// Put back what the records explain, then roll back.
			p.orasTag("v2", "production")
			if a := p.aliasHistory("production", pol); !a.Explained {
				p.t.Fatalf("history does not explain production at v2 although record 2 names it: %+v", a)
			}
			var rb promoteResultJSON
			p.as("carol").c.okJSON(&rb, "rollback", p.repository, "production", "--policy", pol, "--key", p.key("promoter"))
			rec := rb.Record
			if !rb.Moved || rec == nil {
				p.t.Fatalf("rollback: moved %v record %v", rb.Moved, rec)
			}
			if rb.Digest != v1.Digest || rb.Previous != v2.Digest || rec.Digest != v1.Digest || rec.PreviousDigest != v2.Digest ||
				rec.Sequence != 3 || rec.PreviousRecord != prod2.Record.RecordDigest || rec.Actor != "carol" {
				p.t.Errorf("rollback: %+v record %+v; want v1 %s after v2 %s, sequence 3 after record %s, actor carol",
					rb, rec, v1.Digest, v2.Digest, prod2.Record.RecordDigest)
			}
			p.assertAlias("production", v1.Digest)
			p.assertAlias("staging", v3.Digest)

			a := p.aliasHistory("production", pol)
			checkAliasTimeline(p.t, a, v1.Digest, true, []int64{3, 2, 1},
				[]string{v1.Digest, v2.Digest, v1.Digest}, []string{v2.Digest, v1.Digest, ""}, []string{"carol", "bob", "alice"})
			checkTimeline(p.t, p, "production", a.Records)

			var pl pullJSON
			p.c.okJSON(&pl, "pull", p.ref(":production"), deploy, "--policy", pol)
			if pl.Digest != v1.Digest {
				p.t.Fatalf("pull production after the rollback: digest %s, want v1 %s", pl.Digest, v1.Digest)
			}
			assertSameFiles(p.t, v1.dir, deploy)
		})

		t.Run("the record the rollback superseded cannot be replayed", func(t *testing.T) {
			p := p.at(t)
			p.moveTag(v2.Digest, "production")
			refusedPull(p, `production`, `promotion record`, `sequence 3`)
		})
	})
}

// checkAliasTimeline checks one alias of history JSON: where it points,
// whether that is explained, and its records' sequences, digests, previous
// digests and actors, newest first.
func checkAliasTimeline(t *testing.T, a aliasHistoryJSON, current string, explained bool, seqs []int64, digests, previous, actors []string) {
	t.Helper()
	if a.Current != current || a.Explained != explained {
		t.Errorf("history of %s: current %s explained %v, want %s and %v", a.Alias, a.Current, a.Explained, current, explained)
	}
	if got := sequences(a.Records); !slices.Equal(got, seqs) {
		t.Fatalf("history of %s: sequences %v, want %v (newest first)", a.Alias, got, seqs)
	}
	for i, rec := range a.Records {
		if rec.Digest != digests[i] || rec.PreviousDigest != previous[i] || rec.Actor != actors[i] {
			t.Errorf("history of %s, sequence %d: digest %s previousDigest %q actor %q; want %s, %q, %q",
				a.Alias, rec.Sequence, rec.Digest, rec.PreviousDigest, rec.Actor, digests[i], previous[i], actors[i])
		}
	}
}

// historyBlock returns the block of `history` text output about alias.
func historyBlock(t *testing.T, text, alias string) string {
	t.Helper()
	for block := range strings.SplitSeq(text, "\n\n") {
		block = strings.Trim(block, "\n")
		if strings.HasPrefix(block, alias+" ") {
			return block
		}
	}
	t.Fatalf("history text has no block about %s:\n%s", alias, text)
	return ""
}

// TestAttestCosignVerifyAttestation: `cosign verify-attestation` accepts
// our evaluation attestation and one with a predicate of another type, and
// rejects them for a key that did not sign.
func TestAttestCosignVerifyAttestation(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		v := p.push("model")
		// An evaluation dataset, cited by digest.
		dsDir := filepath.Join(t.TempDir(), "eval-data")
		writeFile(t, filepath.Join(dsDir, "test.csv"), randomBytes(t, 512))
		dsRepo := p.repo + "-eval-data"
		var ds pushJSON
		p.c.okJSON(&ds, "push", r.ref(dsRepo, ""), dsDir)

		var a attestJSON
		p.c.okJSON(&a, "attest", p.ref(":"+v.Version), "--key", p.key("eval"), "--metric", "accuracy=0.93", "--metric", "f1=0.91",
			"--eval-dataset", r.ref(dsRepo, ":"+ds.Version), "--evaluator", "ci-eval")
		if a.Digest != v.Digest || a.PredicateType != predicateEvaluation || a.KeyID != p.keyID("eval") {
			t.Errorf("attest: digest %s type %q key %s, want %s %q %s", a.Digest, a.PredicateType, a.KeyID, v.Digest, predicateEvaluation, p.keyID("eval"))
		}
		checkEvaluation := func(what string, pred map[string]any) {
			t.Helper()
			metrics, _ := pred["metrics"].(map[string]any)
			if metrics["accuracy"] != 0.93 || metrics["f1"] != 0.91 {
				t.Errorf("%s: metrics %v, want accuracy 0.93 and f1 0.91 as numbers", what, pred["metrics"])
			}
			if d, _ := pred["dataset"].(string); !strings.Contains(d, dsRepo+"@"+ds.Digest) {
				t.Errorf("%s: dataset %q, want it to name %s@%s", what, pred["dataset"], dsRepo, ds.Digest)
			}
			if pred["evaluator"] != "ci-eval" {
				t.Errorf("%s: evaluator %v, want ci-eval", what, pred["evaluator"])
			}
			if at, _ := pred["evaluatedAt"].(string); at == "" {
				t.Errorf("%s: no evaluatedAt", what)
			} else if _, err := time.Parse(time.RFC3339, at); err != nil {
				t.Errorf("%s: evaluatedAt %q: %v", what, at, err)
			}
		}
		var pred map[string]any
		if err := json.Unmarshal(a.Predicate, &pred); err != nil {
			t.Fatalf("attest: predicate: %v", err)
		}
		checkEvaluation("attest output", pred)

		verifyAtt := func(key, predicateType string) result {
			return p.c.tool("cosign3", "verify-attestation", "--key", key, "--insecure-ignore-tlog=true",
				"--allow-insecure-registry", "--type", predicateType, p.byDigest(v.Digest))
		}
		checkStatement := func(st inTotoStatement, predicateType string) {
			t.Helper()
			if len(st.Subject) != 1 || "sha256:"+st.Subject[0].Digest["sha256"] != v.Digest {
				t.Errorf("statement subject %+v, want %s", st.Subject, v.Digest)
			}
			if st.PredicateType != predicateType || !strings.HasPrefix(st.Type, "https://in-toto.io/Statement/") {
				t.Errorf("statement _type %q predicateType %q, want an in-toto statement of %s", st.Type, st.PredicateType, predicateType)
			}
		}

		t.Run("evaluation", func(t *testing.T) {
			res := verifyAtt(p.pub("eval"), predicateEvaluation)
			if res.code != exitOK {
				t.Fatalf("cosign verify-attestation refuses our evaluation attestation:\n%s", res)
			}
			sts := cosignStatements(t, res)
			if len(sts) != 1 {
				t.Fatalf("cosign verify-attestation printed %d statements, want 1:\n%s", len(sts), res)
			}
			checkStatement(sts[0], predicateEvaluation)
			checkEvaluation("statement verified by cosign", sts[0].Predicate)
		})

		t.Run("any predicate type", func(t *testing.T) {
			c := p.c.with(t)
			const provenance = "https://slsa.dev/provenance/v1"
			predFile := filepath.Join(t.TempDir(), "provenance.json")
			writeFile(t, predFile, []byte(`{"buildDefinition": {"buildType": "https://modelreg.dev/e2e/v1"}, "runDetails": {"builder": {"id": "https://ci.example.com"}}}`))
			c.ok("attest", p.byDigest(v.Digest), "--key", p.key("release"), "--predicate-type", provenance, "--predicate", predFile)
			res := verifyAtt(p.pub("release"), provenance)
			if res.code != exitOK {
				t.Fatalf("cosign verify-attestation refuses our attestation of type %s:\n%s", provenance, res)
			}
			sts := cosignStatements(t, res)
			if len(sts) != 1 {
				t.Fatalf("cosign verify-attestation printed %d statements, want 1:\n%s", len(sts), res)
			}
			checkStatement(sts[0], provenance)
			if bd, _ := sts[0].Predicate["buildDefinition"].(map[string]any); bd["buildType"] != "https://modelreg.dev/e2e/v1" {
				t.Errorf("provenance predicate as verified by cosign: %v", sts[0].Predicate)
			}
		})

		t.Run("a key that did not sign", func(t *testing.T) {
			if res := verifyAtt(p.pub("rogue"), predicateEvaluation); res.code == exitOK {
				t.Errorf("cosign verify-attestation accepts our evaluation for a key that did not sign it:\n%s", res)
			}
		})
	})
}

// checkPolicy is a policy for `policy check`: every kind of rule.
const checkPolicy = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  staging:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]}
  production:
    signatures: {keys: [keys/release.pub], minSigners: 1}
    files: ["README.md", "*.safetensors"]
    attestations:
      - predicateType: https://modelreg.dev/evaluation/v1
        keys: [keys/eval.pub]
        condition: "predicate.metrics.accuracy >= 0.9"
    approvals: {keys: [keys/alice.pub], min: 1}
    requireAlias: staging
    condition: "size(signatures) >= 1 && alias == 'production'"
    promoters: {keys: [keys/promoter.pub]}
`

// TestPolicyCheckEvidence: `policy check --output json` prints the evidence
// document and the decision, exits 3 on a refusal and 0 when allowed, and
// changes nothing.
func TestPolicyCheckEvidence(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		pol := p.policy("policy.yaml", checkPolicy)
		v := p.push("model")
		ref := p.ref(":" + v.Version)
		p.sign(v.Digest)
		p.c.ok("attest", ref, "--key", p.key("eval"), "--metric", "accuracy=0.8")
		p.promoteOK(ref, "staging", pol)

		check := func(t *testing.T, want int) (policyCheckJSON, map[string]json.RawMessage) {
			t.Helper()
			res := p.c.with(t).modelreg(jsonArgs("policy check", []string{ref, "--policy", pol, "--to", "production"})...)
			if res.code != want {
				t.Fatalf("want exit code %d:\n%s", want, res)
			}
			var top map[string]json.RawMessage
			decodeJSON(t, res, &top)
			wantKeys := []string{"decision", "evidence"}
			if want != exitOK {
				wantKeys = []string{"decision", "error", "evidence"} // every failure carries "error"
			}
			if keys := slices.Sorted(maps.Keys(top)); !slices.Equal(keys, wantKeys) {
				t.Errorf("policy check -o json: top-level keys %v, want %v", keys, wantKeys)
			}
			var out policyCheckJSON
			decodeJSON(t, res, &out)
			return out, top
		}

		t.Run("refused", func(t *testing.T) {
			p := p.at(t)
			out, top := check(t, exitDenied)
			ev, dec := out.Evidence, out.Decision
			if dec.Alias != "production" || dec.Allowed || !strings.HasPrefix(dec.PolicyDigest, "sha256:") {
				t.Errorf("decision: alias %q allowed %v policyDigest %q", dec.Alias, dec.Allowed, dec.PolicyDigest)
			}
			for rule, passed := range map[string]bool{"signatures": true, "files": true, "attestations[0]": false,
				"approvals": false, "requireAlias": true, "condition": true} {
				if got := dec.rule(t, rule); got.Passed != passed || got.Reason == "" {
					t.Errorf("rule %s: passed %v (%q), want %v with a reason", rule, got.Passed, got.Reason, passed)
				}
			}
			if reason := dec.rule(t, "attestations[0]").Reason; !strings.Contains(reason, "0.8") {
				t.Errorf("the attestation rule does not say accuracy was 0.8: %q", reason)
			}

			if ev.Repository != p.repository || ev.Digest != v.Digest || ev.Alias != "production" || ev.ArtifactType == "" {
				t.Errorf("evidence: repository %q digest %s alias %q artifactType %q", ev.Repository, ev.Digest, ev.Alias, ev.ArtifactType)
			}
			checkFiles(t, "evidence", v.dir, ev.Files, true)
			if len(ev.Signatures) != 1 || ev.Signatures[0].KeyID != p.keyID("release") {
				t.Errorf("evidence signatures %+v, want one by the release key %s", ev.Signatures, p.keyID("release"))
			}
			var evals int
			for _, a := range ev.Attestations {
				if a.PredicateType != predicateEvaluation {
					continue
				}
				evals++
				metrics, _ := a.Predicate["metrics"].(map[string]any)
				if a.KeyID != p.keyID("eval") || metrics["accuracy"] != 0.8 {
					t.Errorf("evidence attestation %+v, want accuracy 0.8 by the eval key %s", a, p.keyID("eval"))
				}
			}
			if evals != 1 {
				t.Errorf("evidence lists %d evaluation attestations, want 1: %+v", evals, ev.Attestations)
			}
			if len(ev.Approvals) != 0 {
				t.Errorf("evidence approvals %+v, want none", ev.Approvals)
			}
			if !slices.Contains(ev.Aliases.Current, "staging") || !slices.Contains(ev.Aliases.Held, "staging") {
				t.Errorf("evidence aliases %+v, want staging current and held", ev.Aliases)
			}
			// Lists are [] when empty, never null (for OPA and Conftest).
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(top["evidence"], &raw); err != nil {
				t.Fatal(err)
			}
			if string(raw["approvals"]) != "[]" {
				t.Errorf("evidence approvals encode as %s, want []", raw["approvals"])
			}

			text := p.c.modelreg("policy", "check", ref, "--policy", pol, "--to", "production")
			if text.code != exitDenied || !strings.Contains(text.stdout, "FAIL") || !strings.Contains(text.stdout, "refused") {
				t.Errorf("policy check (text): want exit code 3 and the rules with FAIL:\n%s", text)
			}
			wantStderr(t, text, `approvals`, `accuracy`)
		})

		t.Run("allowed", func(t *testing.T) {
			p := p.at(t)
			p.c.ok("attest", ref, "--key", p.key("eval"), "--metric", "accuracy=0.95")
			p.c.ok("approve", ref, "--key", p.key("alice"), "--approver", "alice")
			out, _ := check(t, exitOK)
			if !out.Decision.Allowed {
				t.Errorf("decision: %+v, want allowed", out.Decision)
			}
			for _, rule := range out.Decision.Rules {
				if !rule.Passed {
					t.Errorf("rule %s failed: %s", rule.Rule, rule.Reason)
				}
			}
			if a := out.Evidence.Approvals; len(a) != 1 || a[0].KeyID != p.keyID("alice") || a[0].Approver != "alice" {
				t.Errorf("evidence approvals %+v, want alice's", a)
			}
			// policy check changed nothing.
			p.assertAlias("production", "")
			p.assertNoRecords("production", pol)
		})
	})
}

// TestPromotionPolicyLoadErrors: a policy with a typo'd field, a CEL
// condition that does not compile, or a missing key file fails every
// command that reads it with exit code 1 (or 2), naming the file, the line
// and the rule, and changes nothing.
func TestPromotionPolicyLoadErrors(t *testing.T) {
	t.Parallel()
	header := "apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n"
	cases := []struct {
		name, body string
		// marker finds the line the error must name; patterns are
		// what else the message must say.
		marker   string
		patterns []string
	}{{
		name:     "typo in a field",
		body:     header + "    signature: {keys: [keys/release.pub]}\n    promoters: {keys: [keys/promoter.pub]}\n",
		marker:   "signature:",
		patterns: []string{`aliases\.production`, `unknown field "signature"`, `signatures`},
	}, {
		name: "CEL that does not compile",
		body: header + "    signatures: {keys: [keys/release.pub]}\n    attestations:\n" +
			"      - predicateType: https://modelreg.dev/evaluation/v1\n        keys: [keys/eval.pub]\n" +
			"        condition: \"predicate.metrics.accuracy >= \"\n    promoters: {keys: [keys/promoter.pub]}\n",
		marker:   "condition:",
		patterns: []string{`aliases\.production\.attestations\[0\]\.condition`, `compile`},
	}, {
		name: "top-level condition with an undeclared name",
		body: header + "    signatures: {keys: [keys/release.pub]}\n" +
			"    condition: \"has(anotations['org.opencontainers.image.source'])\"\n    promoters: {keys: [keys/promoter.pub]}\n",
		marker:   "condition:",
		patterns: []string{`aliases\.production\.condition`, `compile`, `anotations`},
	}, {
		name:     "missing key file",
		body:     header + "    approvals: {keys: [keys/alice.pub, keys/carol.pub], min: 2}\n    promoters: {keys: [keys/promoter.pub]}\n",
		marker:   "carol.pub",
		patterns: []string{`aliases\.production\.approvals\.keys\[1\]`, `keys/carol\.pub`},
	}}
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		v := p.push("model")
		p.c.ok("alias", "set", p.ref(":"+v.Version), "production")
		target, parent := targetWithSentinel(t)
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p := p.at(t)
				path := p.policy(fmt.Sprintf("policy-%d.yaml", i), tc.body)
				where := regexp.QuoteMeta(fmt.Sprintf("%s:%d:", path, lineOf(t, tc.body, tc.marker)))
				for _, args := range [][]string{
					{"policy", "check", p.ref(":" + v.Version), "--policy", path, "--to", "production"},
					{"promote", p.ref(":" + v.Version), "--to", "production", "--policy", path, "--key", p.key("promoter")},
					{"pull", p.ref(":production"), target, "--policy", path},
					{"history", p.repository, "--policy", path},
					{"rollback", p.repository, "production", "--policy", path, "--key", p.key("promoter")},
				} {
					res := p.c.fails([]int{exitError, exitUsage}, args...)
					wantStderr(t, res, append([]string{where}, tc.patterns...)...)
					parent.assertUnchanged(t, res)
				}
				p.assertAlias("production", v.Digest)
			})
		}
		p.assertNoRecords("production", p.policy("valid.yaml", evaluationPolicy))
	})
}

// TestPromotionRecordOfAnotherRepository replays, in repository B, a valid
// promotion record written in repository A for the same digest: the record
// names A, so B's production must not be honoured for that digest.
func TestPromotionRecordOfAnotherRepository(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		a, b := twoTeams(t, r)
		pol := b.policy("policy.yaml", `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]}
`)

		// The same model in both repositories, signed in both.
		shared := b.push("shared")
		var inA pushJSON
		a.c.okJSON(&inA, "push", a.repository, shared.dir)
		if inA.Digest != shared.Digest {
			t.Fatalf("the same folder pushed to two repositories has digests %s and %s", inA.Digest, shared.Digest)
		}
		first := a.push("first-in-a")
		a.sign(first.Digest)
		a.sign(shared.Digest)
		other := b.push("other-in-b")
		b.sign(other.Digest)
		b.sign(shared.Digest)

		// A: production is first (sequence 1), then shared (sequence 2).
		a.promoteOK(a.byDigest(first.Digest), "production", pol)
		a.promoteOK(a.byDigest(shared.Digest), "production", pol)
		// B: production is other (sequence 1); shared was never promoted.
		b.promoteOK(b.byDigest(other.Digest), "production", pol)

		// Someone with push rights to B points B's production at shared:
		// refused, B has no record for it.
		b.moveTag(shared.Digest, "production")
		target, parent := targetWithSentinel(t)
		res := b.c.modelreg("pull", b.ref(":production"), target, "--policy", pol)
		b.denied(res, `promotion record`)
		parent.assertUnchanged(t, res)

		// Then copies A's attestations of shared, with A's valid record,
		// into B.
		b.copyAttestations(a.repo, shared.Digest, shared.Digest)
		res = b.c.modelreg("pull", b.ref(":production"), target, "--policy", pol)
		if res.code == exitOK {
			t.Errorf("pull --policy honours %s:production at %s with a promotion record written for %s, and pulled it: want exit code 3:\n%s",
				b.repository, shared.Digest, a.repository, res)
		} else {
			b.denied(res, `promotion record`)
			parent.assertUnchanged(t, res)
		}

		h := b.aliasHistory("production", pol)
		for _, rec := range h.Records {
			if rec.Verified && rec.Repository != b.repository {
				t.Errorf("history of %s lists a verified record of %s: %+v", b.repository, rec.Repository, rec)
			}
		}
		if h.Explained {
			t.Errorf("history of %s explains production at %s by a record of %s", b.repository, shared.Digest, a.repository)
		}
	})
}

// TestPromotionRecordSignedByNonPromoter: promote with a key that may sign
// models but not promotions is refused, and a promotion record forged with
// such a key (or a key the policy does not know), attached with `attest`,
// does not make a hand-moved production trusted at deploy time.
func TestPromotionRecordSignedByNonPromoter(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		pol := p.policy("policy.yaml", `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]}
`)
		v1, v2 := p.push("one"), p.push("two")
		p.sign(v1.Digest)
		p.sign(v2.Digest)
		p.promoteOK(p.byDigest(v1.Digest), "production", pol)

		t.Run("promote with a key that may not promote", func(t *testing.T) {
			p := p.at(t)
			res := p.c.modelreg("promote", p.byDigest(v2.Digest), "--to", "production", "--policy", pol, "--key", p.key("release"))
			p.denied(res, `promoter`, `keys/promoter\.pub`)
			p.assertAlias("production", v1.Digest)
			if got := sequences(p.aliasHistory("production", pol).Records); !slices.Equal(got, []int64{1}) {
				t.Errorf("history after the refused promotion: sequences %v, want 1", got)
			}
		})

		t.Run("forged record", func(t *testing.T) {
			p := p.at(t)
			forged, err := json.Marshal(map[string]any{
				"repository": p.repository, "alias": "production", "digest": v2.Digest,
				"previousDigest": v1.Digest, "sequence": 2, "signer": p.keyID("release"), "actor": "mallory",
				"promotedAt": time.Now().UTC().Format(time.RFC3339),
				"policy":     map[string]any{"digest": "", "allowed": true, "rules": []any{}},
			})
			if err != nil {
				t.Fatal(err)
			}
			predFile := filepath.Join(t.TempDir(), "forged.json")
			writeFile(t, predFile, forged)
			for _, k := range []string{"release", "rogue"} {
				p.c.ok("attest", p.byDigest(v2.Digest), "--key", p.key(k), "--predicate-type", predicatePromotion, "--predicate", predFile)
			}
			p.orasTag(v2.Version, "production")

			target, parent := targetWithSentinel(t)
			res := p.c.modelreg("pull", p.ref(":production"), target, "--policy", pol)
			p.denied(res, `production`, `promotion record`)
			parent.assertUnchanged(t, res)

			a := p.aliasHistory("production", pol)
			if a.Explained {
				t.Errorf("history explains production at v2 by a forged record: %+v", a)
			}
			for _, rec := range a.Records {
				if rec.Verified && rec.Digest == v2.Digest {
					t.Errorf("history lists the forged record as verified: %+v", rec)
				}
			}
		})
	})
}

// twoTeams returns fixtures of two repositories, team-a/model and
// team-b/model, sharing one CLI and release folder. The repository's last
// path element is the model name in the ModelPack config, so one folder
// pushed to both gets one digest.
func twoTeams(t *testing.T, r *registry) (a, b *promo) {
	t.Helper()
	b = newPromo(t, r)
	base := b.repo
	b.repo, b.repository = base+"/team-b/model", r.ref(base+"/team-b/model", "")
	cp := *b
	a = &cp
	a.repo, a.repository = base+"/team-a/model", r.ref(base+"/team-a/model", "")
	return a, b
}

// TestApprovalsCopiedFromAnotherRepository: approvals given in repository
// A for A's production, copied with the digest's attestations into
// repository B, must not satisfy B's approval rule: the approval names A.
func TestApprovalsCopiedFromAnotherRepository(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		a, b := twoTeams(t, r)
		pol := b.policy("policy.yaml", approvalPolicy)
		shared := a.push("shared")
		var inB pushJSON
		b.c.okJSON(&inB, "push", b.repository, shared.dir)
		if inB.Digest != shared.Digest {
			t.Fatalf("the same folder pushed to two repositories has digests %s and %s", shared.Digest, inB.Digest)
		}
		for _, k := range []string{"alice", "bob"} {
			a.c.ok("approve", a.byDigest(shared.Digest), "--key", a.key(k), "--approver", k, "--for", "production")
		}
		a.promoteOK(a.byDigest(shared.Digest), "production", pol)

		b.denied(b.promote(b.byDigest(shared.Digest), "production", pol), `approvals`, `0 of 2`)
		b.copyAttestations(a.repo, shared.Digest, shared.Digest)
		res := b.promote(b.byDigest(shared.Digest), "production", pol)
		if res.code == exitOK {
			t.Errorf("promote in %s counts approvals given in %s (copied with the digest's attestations): want exit code 3:\n%s",
				b.repository, a.repository, res)
		} else {
			b.denied(res, `approvals`, `0 of 2`)
		}
		b.assertAlias("production", "")
	})
}

// TestPromotionReplayWithNewerRecordHidden: after a deploy accepted record
// 2, the attestation tag holding it is overwritten (hiding it) and the tag
// moved back to the version of record 1. The registry then shows record 1
// as the newest; the machine that accepted record 2 must still refuse.
func TestPromotionReplayWithNewerRecordHidden(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		pol := p.policy("policy.yaml", `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]}
`)
		v1, v2, decoy := p.push("one"), p.push("two"), p.push("decoy")
		for _, v := range []pushed{v1, v2, decoy} {
			p.sign(v.Digest)
		}
		p.promoteOK(p.byDigest(v1.Digest), "production", pol)
		p.promoteOK(p.byDigest(v2.Digest), "production", pol)

		// The deploy machine keeps its memory in its own state folder.
		node := p.c.withEnv("MODELREG_STATE_DIR=" + filepath.Join(t.TempDir(), "state"))
		deployParent := filepath.Join(t.TempDir(), "deploy")
		deploy := filepath.Join(deployParent, "model")
		if res := node.modelreg("pull", p.ref(":production"), deploy, "--policy", pol); res.code != exitOK {
			t.Fatalf("pull production (record 2): want exit code 0:\n%s", res)
		}
		assertSameFiles(t, v2.dir, deploy)

		// Hide record 2: v2's attestation tag now holds an attestation of
		// the decoy (which does not verify for v2).
		p.c.ok("attest", p.byDigest(decoy.Digest), "--key", p.key("eval"), "--metric", "accuracy=0.5")
		p.hideReferrers(v2.Digest)
		p.copyAttestations(p.repo, decoy.Digest, v2.Digest)
		p.moveTag(v1.Digest, "production")
		if got := sequences(p.aliasHistory("production", pol).Records); !slices.Equal(got, []int64{1}) {
			t.Fatalf("after hiding record 2, history shows sequences %v, want only 1 (the setup did not hide it)", got)
		}

		before := takeSnapshot(t, deployParent)
		res := node.modelreg("pull", p.ref(":production"), deploy, "--policy", pol)
		p.denied(res, `production`, `sequence 2`)
		before.assertUnchanged(t, res)
	})
}
