package policy

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/modelreg/modelreg/errdef"
)

const fullPolicy = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  staging:
    signatures: {keys: [keys/release.pub]}
  production:
    signatures: {keys: [keys/release.pub, keys/ci.pub], minSigners: 2}
    annotations: [org.opencontainers.image.source, dev.modelreg.lineage.datasets]
    files: ["README.md", "*.safetensors"]
    attestations:
      - predicateType: https://modelreg.dev/evaluation/v1
        keys: [keys/eval.pub]
        condition: "predicate.metrics.accuracy >= 0.9"
    approvals: {keys: [keys/alice.pub, keys/bob.pub, keys/carol.pub], min: 2}
    requireAlias: staging
    condition: "has(annotations['org.opencontainers.image.revision'])"
`

// passing returns evidence that satisfies every production rule of fullPolicy.
func passing(td *testDir) Evidence {
	return Evidence{
		Repository:   "registry.example.com/team/sentiment",
		Reference:    "v3",
		Digest:       "sha256:" + strings.Repeat("ab", 32),
		ArtifactType: "application/vnd.cncf.model.manifest.v1+json",
		Annotations: map[string]string{
			"org.opencontainers.image.source":   "https://git.example.com/team/sentiment",
			"org.opencontainers.image.revision": "0123abc",
			"dev.modelreg.lineage.datasets":     "registry.example.com/data/reviews@sha256:" + strings.Repeat("cd", 32),
		},
		Config: map[string]any{"descriptor": map[string]any{"name": "Sentiment"}},
		Files: []File{
			{Path: "README.md", Digest: "sha256:" + strings.Repeat("01", 32), MediaType: "application/vnd.cncf.model.doc.v1.raw", Size: 120},
			{Path: "model.safetensors", Digest: "sha256:" + strings.Repeat("02", 32), MediaType: "application/vnd.cncf.model.weight.v1.raw", Size: 4096},
		},
		Signatures:   sigs(td, "release", "ci"),
		Attestations: []Attestation{evaluation(td, "eval", 0.93)},
		Approvals:    approvals(td, "alice", "bob"),
		Aliases:      AliasState{Current: []string{"staging"}, Held: []string{"staging"}},
	}
}

func TestEvaluateRules(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, fullPolicy)

	tests := []struct {
		name   string
		mutate func(ev *Evidence)
		rule   string // the rule under test
		passed bool
		reason string // exact reason, or a substring when prefixed by "~"
	}{
		// signatures
		{"signatures pass", nil, "signatures", true,
			"2 of 2 required signers verified: keys/release.pub, keys/ci.pub"},
		{"signatures none", func(ev *Evidence) { ev.Signatures = nil }, "signatures", false,
			"0 of 2 required signers verified (no valid signature by keys/release.pub, keys/ci.pub)"},
		{"signatures one of two", func(ev *Evidence) { ev.Signatures = sigs(td, "release") }, "signatures", false,
			"1 of 2 required signers verified (signed by keys/release.pub; no valid signature by keys/ci.pub)"},
		{"signatures same key twice counts once", func(ev *Evidence) { ev.Signatures = sigs(td, "release", "release") }, "signatures", false,
			"1 of 2 required signers verified (signed by keys/release.pub; no valid signature by keys/ci.pub)"},
		{"signatures by a foreign key do not count", func(ev *Evidence) { ev.Signatures = sigs(td, "release", "alice") }, "signatures", false,
			"1 of 2 required signers verified (signed by keys/release.pub; no valid signature by keys/ci.pub); ignored: signatures by 1 other key this rule does not list"},

		// annotations
		{"annotations pass", nil, "annotations", true,
			"all 2 required annotations set: org.opencontainers.image.source, dev.modelreg.lineage.datasets"},
		{"annotations missing", func(ev *Evidence) { delete(ev.Annotations, "dev.modelreg.lineage.datasets") }, "annotations", false,
			"missing dev.modelreg.lineage.datasets"},
		{"annotations empty", func(ev *Evidence) { ev.Annotations["org.opencontainers.image.source"] = " " }, "annotations", false,
			"empty org.opencontainers.image.source"},
		{"annotations none at all", func(ev *Evidence) { ev.Annotations = nil }, "annotations", false,
			"missing org.opencontainers.image.source, dev.modelreg.lineage.datasets"},

		// files
		{"files pass", nil, "files", true,
			`every pattern matches a file: "README.md": README.md, "*.safetensors": model.safetensors`},
		{"files several matches", func(ev *Evidence) {
			ev.Files = append(ev.Files, File{Path: "model-2.safetensors"})
		}, "files", true, `every pattern matches a file: "README.md": README.md, "*.safetensors": model.safetensors (+1 more)`},
		{"files missing readme", func(ev *Evidence) { ev.Files = ev.Files[1:] }, "files", false,
			`no file matches "README.md"`},
		{"files in a folder need a folder pattern", func(ev *Evidence) {
			ev.Files = []File{{Path: "README.md"}, {Path: "weights/model.safetensors"}}
		}, "files", false,
			`no file matches "*.safetensors" (weights/model.safetensors is in a folder and "*" stops at "/"; "*/*.safetensors" would match it)`},
		{"files none", func(ev *Evidence) { ev.Files = nil }, "files", false,
			`the version has no files, so nothing matches "README.md", "*.safetensors"`},
		{"files two patterns fail", func(ev *Evidence) { ev.Files = []File{{Path: "config.json"}} }, "files", false,
			`no file matches any of these patterns: "README.md", "*.safetensors"`},

		// attestations
		{"attestation pass", nil, "attestations[0] (https://modelreg.dev/evaluation/v1)", true,
			"predicate.metrics.accuracy >= 0.9 holds for an attestation signed by keys/eval.pub (accuracy was 0.93)"},
		{"attestation below threshold", func(ev *Evidence) { ev.Attestations = []Attestation{evaluation(td, "eval", 0.81)} },
			"attestations[0] (https://modelreg.dev/evaluation/v1)", false,
			"predicate.metrics.accuracy >= 0.9 is false for every attestation signed by keys/eval.pub (accuracy was 0.81)"},
		{"attestation one of two passes", func(ev *Evidence) {
			ev.Attestations = []Attestation{evaluation(td, "eval", 0.5), evaluation(td, "eval", 0.95)}
		}, "attestations[0] (https://modelreg.dev/evaluation/v1)", true,
			"predicate.metrics.accuracy >= 0.9 holds for an attestation signed by keys/eval.pub (accuracy was 0.95)"},
		{"attestation two fail", func(ev *Evidence) {
			ev.Attestations = []Attestation{evaluation(td, "eval", 0.5), evaluation(td, "eval", 0.6)}
		}, "attestations[0] (https://modelreg.dev/evaluation/v1)", false,
			"predicate.metrics.accuracy >= 0.9 is false for every attestation signed by keys/eval.pub (accuracy was 0.5; accuracy was 0.6)"},
		{"attestation by a foreign key does not count even if it passes", func(ev *Evidence) {
			ev.Attestations = []Attestation{evaluation(td, "other", 0.99), evaluation(td, "eval", 0.2)}
		}, "attestations[0] (https://modelreg.dev/evaluation/v1)", false,
			"predicate.metrics.accuracy >= 0.9 is false for every attestation signed by keys/eval.pub (accuracy was 0.2)"},
		{"attestation only by a foreign key", func(ev *Evidence) {
			ev.Attestations = []Attestation{evaluation(td, "other", 0.99)}
		}, "attestations[0] (https://modelreg.dev/evaluation/v1)", false,
			"no verified attestation of this type signed by keys/eval.pub (ignored: 1 attestation of this type signed by keys this rule does not list)"},
		{"attestation of another type", func(ev *Evidence) {
			a := evaluation(td, "eval", 0.99)
			a.PredicateType = "https://slsa.dev/provenance/v1"
			ev.Attestations = []Attestation{a}
		}, "attestations[0] (https://modelreg.dev/evaluation/v1)", false,
			"no verified attestation of this type signed by keys/eval.pub"},
		{"attestation without the metric is a runtime error, not a Go error", func(ev *Evidence) {
			ev.Attestations = []Attestation{{KeyID: td.ids["eval"], PredicateType: "https://modelreg.dev/evaluation/v1", Predicate: map[string]any{"metrics": map[string]any{}}}}
		}, "attestations[0] (https://modelreg.dev/evaluation/v1)", false,
			"predicate.metrics.accuracy >= 0.9 is not true for every attestation signed by keys/eval.pub (error: no such key: accuracy)"},
		{"attestation with a string metric", func(ev *Evidence) { ev.Attestations = []Attestation{evaluation(td, "eval", "high")} },
			"attestations[0] (https://modelreg.dev/evaluation/v1)", false,
			"~is not true for every attestation signed by keys/eval.pub (error: no such overload"},

		// approvals
		{"approvals pass", nil, "approvals", true,
			"2 of 2 required approvals: alice (keys/alice.pub), bob (keys/bob.pub)"},
		{"approvals other pair passes", func(ev *Evidence) { ev.Approvals = approvals(td, "carol", "alice") }, "approvals", true,
			"2 of 2 required approvals: alice (keys/alice.pub), carol (keys/carol.pub)"},
		{"approvals three of three", func(ev *Evidence) { ev.Approvals = approvals(td, "alice", "bob", "carol") }, "approvals", true,
			"3 of 2 required approvals: alice (keys/alice.pub), bob (keys/bob.pub), carol (keys/carol.pub)"},
		{"approvals one", func(ev *Evidence) { ev.Approvals = approvals(td, "alice") }, "approvals", false,
			"1 of 2 required approvals (approved by alice (keys/alice.pub); none by keys/bob.pub, keys/carol.pub)"},
		{"approvals same key twice counts once", func(ev *Evidence) { ev.Approvals = approvals(td, "alice", "alice") }, "approvals", false,
			"1 of 2 required approvals (approved by alice (keys/alice.pub); none by keys/bob.pub, keys/carol.pub); 2 approvals by keys/alice.pub count once"},
		{"approvals by a foreign key do not count", func(ev *Evidence) { ev.Approvals = approvals(td, "alice", "release") }, "approvals", false,
			"1 of 2 required approvals (approved by alice (keys/alice.pub); none by keys/bob.pub, keys/carol.pub); ignored: approvals by 1 other key this rule does not list"},
		{"approvals without approver names", func(ev *Evidence) {
			ev.Approvals = []Approval{{KeyID: td.ids["alice"]}, {KeyID: td.ids["bob"]}}
		}, "approvals", true, "2 of 2 required approvals: keys/alice.pub, keys/bob.pub"},

		// requireAlias (staging is protected by this policy: only a record counts)
		{"requireAlias held", func(ev *Evidence) { ev.Aliases = AliasState{Held: []string{"staging"}} }, "requireAlias", true,
			"the version holds or held staging (promotion record)"},
		{"requireAlias never held", func(ev *Evidence) { ev.Aliases = AliasState{Current: []string{"latest"}} }, "requireAlias", false,
			"the version has never held staging; promote it there first"},
		{"requireAlias protected tag without record", func(ev *Evidence) { ev.Aliases = AliasState{Current: []string{"staging"}} }, "requireAlias", false,
			"the staging tag points at this digest but no valid promotion record says so, and this policy protects staging"},

		// condition
		{"condition pass", nil, "condition", true,
			"has(annotations['org.opencontainers.image.revision']) is true"},
		{"condition fail", func(ev *Evidence) { delete(ev.Annotations, "org.opencontainers.image.revision") }, "condition", false,
			"has(annotations['org.opencontainers.image.revision']) is false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := passing(td)
			if tc.mutate != nil {
				tc.mutate(&ev)
			}
			d, err := p.Evaluate("production", ev)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			var got *RuleResult
			for i := range d.Rules {
				if d.Rules[i].Rule == tc.rule {
					got = &d.Rules[i]
				}
			}
			if got == nil {
				t.Fatalf("no rule %q in %+v", tc.rule, d.Rules)
			}
			if got.Passed != tc.passed {
				t.Errorf("passed = %v, want %v (reason %q)", got.Passed, tc.passed, got.Reason)
			}
			if sub, ok := strings.CutPrefix(tc.reason, "~"); ok {
				if !strings.Contains(got.Reason, sub) {
					t.Errorf("reason = %q, want it to contain %q", got.Reason, sub)
				}
			} else if got.Reason != tc.reason {
				t.Errorf("reason = %q\n want %q", got.Reason, tc.reason)
			}
			// Every rule is reported, whatever fails.
			if len(d.Rules) != 7 {
				t.Errorf("got %d rules, want 7: %+v", len(d.Rules), d.Rules)
			}
			if d.Allowed != (len(d.Failures()) == 0) {
				t.Errorf("Allowed = %v with failures %+v", d.Allowed, d.Failures())
			}
			if tc.mutate == nil && !d.Allowed {
				t.Errorf("passing evidence refused: %v", d.Error())
			}
		})
	}
}

func TestEvaluateAllPass(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, fullPolicy)
	d, err := p.Evaluate("production", passing(td))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || d.Error() != nil || d.Failures() != nil {
		t.Fatalf("want allowed, got %+v", d)
	}
	want := []string{"signatures", "annotations", "files", "attestations[0] (https://modelreg.dev/evaluation/v1)", "approvals", "requireAlias", "condition"}
	for i, r := range d.Rules {
		if r.Rule != want[i] {
			t.Errorf("rule %d = %q, want %q", i, r.Rule, want[i])
		}
	}
	if d.Alias != "production" || d.PolicyDigest != p.Digest {
		t.Errorf("alias %q digest %q", d.Alias, d.PolicyDigest)
	}
}

func TestDecisionErrorListsEveryFailure(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, fullPolicy)
	ev := passing(td)
	ev.Signatures = nil
	ev.Files = ev.Files[1:]
	ev.Attestations = []Attestation{evaluation(td, "eval", 0.81)}
	ev.Approvals = approvals(td, "bob", "bob")
	d, err := p.Evaluate("production", ev)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed {
		t.Fatal("allowed")
	}
	if n := len(d.Failures()); n != 4 {
		t.Fatalf("%d failures, want 4: %+v", n, d.Failures())
	}
	derr := d.Error()
	if !errors.Is(derr, errdef.ErrDenied) {
		t.Errorf("error %v does not wrap ErrDenied", derr)
	}
	want := `promotion to "production" refused: ` +
		`signatures: 0 of 2 required signers verified (no valid signature by keys/release.pub, keys/ci.pub); ` +
		`files: no file matches "README.md"; ` +
		`attestation https://modelreg.dev/evaluation/v1: predicate.metrics.accuracy >= 0.9 is false for every attestation signed by keys/eval.pub (accuracy was 0.81); ` +
		`approvals: 1 of 2 required approvals (approved by bob (keys/bob.pub); none by keys/alice.pub, keys/carol.pub); 2 approvals by keys/bob.pub count once`
	if derr.Error() != want {
		t.Errorf("error text\n got %s\nwant %s", derr, want)
	}

	// The JSON form round-trips and still explains itself.
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back Decision
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Error() == nil || back.Error().Error() != want {
		t.Errorf("decoded decision error = %v", back.Error())
	}
	for _, field := range []string{`"alias":"production"`, `"allowed":false`, `"policyDigest":"sha256:`, `"rules":[{"rule":"signatures","passed":false,"reason":`} {
		if !strings.Contains(string(data), field) {
			t.Errorf("decision JSON %s lacks %s", data, field)
		}
	}
}

func TestDecisionErrorSameTypeTwice(t *testing.T) {
	d := Decision{Alias: "prod", Rules: []RuleResult{
		{Rule: "attestations[0] (T)", Reason: "a"},
		{Rule: "attestations[1] (T)", Reason: "b"},
		{Rule: "attestations[2] (U)", Reason: "c"},
	}}
	want := `promotion to "prod" refused: attestations[0] (T): a; attestations[1] (T): b; attestation U: c`
	if got := d.Error().Error(); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if err := (Decision{Alias: "x", Allowed: true}).Error(); err != nil {
		t.Errorf("allowed decision error = %v", err)
	}
}

// TestEvaluateConcurrently lets the race detector see a shared Policy.
func TestEvaluateConcurrently(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, fullPolicy)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ev := passing(td)
			accuracy := 0.95
			if i%2 == 1 {
				accuracy = 0.5
			}
			ev.Attestations = []Attestation{evaluation(td, "eval", accuracy)}
			d, err := p.Evaluate("production", ev)
			if err != nil || d.Allowed != (i%2 == 0) {
				t.Errorf("%d: allowed %v, err %v: %v", i, d.Allowed, err, d.Error())
			}
		})
	}
	wg.Wait()
}

func TestEvaluateUnknownAlias(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, fullPolicy)
	_, err := p.Evaluate("canary", passing(td))
	if !errors.Is(err, errdef.ErrInvalidInput) {
		t.Fatalf("err = %v, want ErrInvalidInput", err)
	}
	if want := `policy policy.yaml has no section for alias "canary" (it protects production, staging)`; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestEvaluateEvidenceNotJSON(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, fullPolicy)
	ev := passing(td)
	ev.Attestations = []Attestation{evaluation(td, "eval", math.NaN())}
	if _, err := p.Evaluate("production", ev); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Fatalf("err = %v, want ErrInvalidInput", err)
	}
}

func TestEvaluateOtherSections(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  candidate: {}
  qa:
  staging:
    requireAlias: [qa, candidate]
  nothing-required:
    attestations:
      - predicateType: https://modelreg.dev/evaluation/v1
        keys: [keys/eval.pub]
`)
	t.Run("empty sections allow", func(t *testing.T) {
		for _, alias := range []string{"candidate", "qa"} {
			d, err := p.Evaluate(alias, Evidence{})
			if err != nil || !d.Allowed || len(d.Rules) != 0 || d.Rules == nil {
				t.Errorf("%s: %+v, %v", alias, d, err)
			}
		}
	})
	t.Run("requireAlias via held and current", func(t *testing.T) {
		// candidate and qa are protected (they have sections), so only
		// promotion records count for them.
		for _, tc := range []struct {
			state  AliasState
			passed bool
			reason string
		}{
			{AliasState{Held: []string{"qa", "candidate"}}, true, "the version holds or held qa (promotion record), candidate (promotion record)"},
			{AliasState{Held: []string{"qa"}}, false, "the version has never held candidate; promote it there first"},
			{AliasState{Current: []string{"qa", "candidate"}}, false,
				"the qa tag points at this digest but no valid promotion record says so, and this policy protects qa; " +
					"the candidate tag points at this digest but no valid promotion record says so, and this policy protects candidate"},
		} {
			d, err := p.Evaluate("staging", Evidence{Aliases: tc.state})
			if err != nil {
				t.Fatal(err)
			}
			if r := d.Rules[0]; r.Passed != tc.passed || r.Reason != tc.reason {
				t.Errorf("%+v: got %+v", tc.state, r)
			}
		}
	})
	t.Run("attestation without condition", func(t *testing.T) {
		d, err := p.Evaluate("nothing-required", Evidence{Attestations: []Attestation{evaluation(td, "eval", 0.1), evaluation(td, "eval", 0.2)}})
		if err != nil {
			t.Fatal(err)
		}
		if r := d.Rules[0]; !r.Passed || r.Reason != "2 verified attestations signed by keys/eval.pub" {
			t.Errorf("got %+v", r)
		}
	})
}

func TestRequireAliasUnprotectedCurrent(t *testing.T) {
	td := newTestDir(t)
	// qa has no section here, so its tag pointing at the digest is enough.
	p := td.parse(t, `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    requireAlias: qa
`)
	for _, tc := range []struct {
		state  AliasState
		passed bool
		reason string
	}{
		{AliasState{Current: []string{"qa"}}, true, "the version holds or held qa (its tag points at this digest)"},
		{AliasState{Held: []string{"qa"}}, true, "the version holds or held qa (promotion record)"},
		{AliasState{Current: []string{"latest"}, Held: []string{"staging"}}, false, "the version has never held qa; promote it there first"},
	} {
		d, err := p.Evaluate("production", Evidence{Aliases: tc.state})
		if err != nil {
			t.Fatal(err)
		}
		if r := d.Rules[0]; r.Passed != tc.passed || r.Reason != tc.reason {
			t.Errorf("%+v: got %+v", tc.state, r)
		}
	}
}

func TestHandBuiltPolicyConditionsFail(t *testing.T) {
	p := &Policy{Path: "x", Aliases: map[string]*AliasRules{
		"prod": {Condition: "true", Attestations: []AttestationRule{{PredicateType: "T", Condition: "true"}}},
		"nil":  nil,
	}}
	d, err := p.Evaluate("prod", Evidence{Attestations: []Attestation{{PredicateType: "T"}}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed {
		t.Errorf("uncompiled conditions passed: %+v", d)
	}
	if d, err := p.Evaluate("nil", Evidence{}); err != nil || !d.Allowed {
		t.Errorf("nil section: %+v %v", d, err)
	}
}

func TestEvidenceJSONShape(t *testing.T) {
	data, err := json.Marshal(Evidence{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"repository":"","reference":"","digest":"","alias":"","artifactType":"","annotations":{},"config":{},"files":[],"signatures":[],"attestations":[],"approvals":[],"aliases":{"current":[],"held":[]}}`
	if string(data) != want {
		t.Errorf("got  %s\nwant %s", data, want)
	}
	ev := Evidence{
		Files:        []File{{Path: "a", Digest: "d", MediaType: "m", Size: 3}},
		Signatures:   []Signature{{KeyID: "k"}},
		Attestations: []Attestation{{KeyID: "k", PredicateType: "t", Predicate: map[string]any{"x": 1}}},
		Approvals:    []Approval{{KeyID: "k", Approver: "alice"}},
	}
	data, err = json.Marshal(&ev) // also through a pointer
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`"files":[{"path":"a","digest":"d","mediaType":"m","size":3}]`,
		`"signatures":[{"keyId":"k"}]`,
		`"attestations":[{"keyId":"k","predicateType":"t","predicate":{"x":1}}]`,
		`"approvals":[{"keyId":"k","approver":"alice"}]`,
	} {
		if !strings.Contains(string(data), s) {
			t.Errorf("%s lacks %s", data, s)
		}
	}
}
