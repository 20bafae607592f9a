package policy

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestConditions runs alias conditions over the evidence document: the
// variables, the has() extension, the ext libraries and numeric typing.
func TestConditions(t *testing.T) {
	td := newTestDir(t)
	ev := passing(td)
	ev.Config["params"] = map[string]any{"layers": 12, "ratio": 0.5}
	tests := []struct {
		cond   string
		passed bool
		reason string // substring; "" to skip
	}{
		// has(): the DESIGN example, with and without the key
		{`has(annotations['org.opencontainers.image.revision'])`, true, ""},
		{`has(annotations['dev.modelreg.lineage.run.id'])`, false, "has(annotations['dev.modelreg.lineage.run.id']) is false"},
		{`!has(annotations['dev.modelreg.lineage.run.id'])`, true, ""},
		{`has(config.descriptor)`, true, ""},
		{`has(config.descriptor.name)`, true, ""},
		{`has(config['descriptor'])`, true, ""},
		{`has(config.params['layers'])`, true, ""},
		{`'org.opencontainers.image.source' in annotations`, true, ""},

		// every top-level variable, read as in JSON
		{`repository.startsWith('registry.example.com/')`, true, ""},
		{`reference == 'v3'`, true, ""},
		{`digest.startsWith('sha256:')`, true, ""},
		{`alias == 'production'`, true, ""},
		{`artifactType == 'application/vnd.cncf.model.manifest.v1+json'`, true, ""},
		{`config.descriptor.name == 'Sentiment'`, true, ""},
		{`files.exists(f, f.path == 'README.md' && f.mediaType.endsWith('.doc.v1.raw'))`, true, ""},
		{`signatures.size() == 2 && signatures[0].keyId.startsWith('sha256:')`, true, ""},
		{`attestations[0].predicate.metrics.accuracy > 0.9`, true, ""},
		{`approvals.map(a, a.approver) == ['alice', 'bob']`, true, ""},
		{`'staging' in aliases.held && 'staging' in aliases.current`, true, ""},

		// ext.Lists and ext.Strings
		{`signatures.map(s, s.keyId).distinct().size() >= 2`, true, ""},
		{`files.map(f, f.path).sort()[0] == 'README.md'`, true, ""},
		{`config.descriptor.name.lowerAscii() == 'sentiment'`, true, ""},
		{`annotations['dev.modelreg.lineage.datasets'].split('@')[0] == 'registry.example.com/data/reviews'`, true, ""},

		// numbers: JSON numbers are doubles, int literals still compare
		{`files.exists(f, f.size > 1000)`, true, ""},
		{`files.all(f, f.size >= 100)`, true, ""},
		{`config.params.layers == 12`, true, ""},
		{`config.params.layers == 12.0`, true, ""},
		{`config.params.layers > 11 && config.params.layers < 13u`, true, ""},
		{`config.params.ratio < 1`, true, ""},
		{`config.params.ratio >= 1`, false, "config.params.ratio >= 1 is false (ratio was 0.5)"},
		{`1.5 > 1`, true, ""},              // cross-type numeric comparison of literals
		{`[1, 2.5].size() == 2`, true, ""}, // mixed lists allowed

		// failures say what they read; runtime errors fail the rule
		{`config.descriptor.name == 'Other' && annotations['org.opencontainers.image.revision'] == 'x'`, false,
			`(name was "Sentiment", org.opencontainers.image.revision was "0123abc")`},
		{`config.nosuch.deeper == 1`, false, "config.nosuch.deeper == 1 could not be evaluated: no such key: nosuch"},
		{`dyn(repository)`, false, "dyn(repository) could not be evaluated: yields registry.example.com/team/sentiment (string), not true or false"},
	}
	for i, tc := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			p := td.parse(t, fmt.Sprintf("apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n    condition: %s\n", strconv.Quote(tc.cond)))
			d, err := p.Evaluate("production", ev)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			r := d.Rules[0]
			if r.Passed != tc.passed || d.Allowed != tc.passed {
				t.Errorf("%s: passed = %v, want %v (%s)", tc.cond, r.Passed, tc.passed, r.Reason)
			}
			if !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("%s: reason %q, want it to contain %q", tc.cond, r.Reason, tc.reason)
			}
		})
	}
}

// TestAttestationConditions covers int against double comparisons in
// predicates and access to the evidence from an attestation condition.
func TestAttestationConditions(t *testing.T) {
	td := newTestDir(t)
	tests := []struct {
		cond      string
		predicate any
		passed    bool
	}{
		{`predicate.metrics.accuracy >= 1`, map[string]any{"metrics": map[string]any{"accuracy": 1.0}}, true},
		{`predicate.metrics.accuracy >= 1`, map[string]any{"metrics": map[string]any{"accuracy": 0.99}}, false},
		{`predicate.metrics.accuracy >= 0.9`, map[string]any{"metrics": map[string]any{"accuracy": 1}}, true}, // Go int becomes a double
		{`predicate.metrics.samples == 5000`, map[string]any{"metrics": map[string]any{"samples": 5000}}, true},
		{`predicate.metrics.samples > 4999.5`, map[string]any{"metrics": map[string]any{"samples": int64(5000)}}, true},
		{`predicate.dataset == annotations['dev.modelreg.lineage.datasets']`, map[string]any{"dataset": "registry.example.com/data/reviews@sha256:" + strings.Repeat("cd", 32)}, true},
		{`predicate.subject == digest`, map[string]any{"subject": "sha256:other"}, false},
		{`has(predicate.metrics.f1) && predicate.metrics.f1 > 0.5`, map[string]any{"metrics": map[string]any{}}, false},
		{`predicate.passed`, map[string]any{"passed": true}, true},
		{`predicate.results.all(r, r.score >= 0.8)`, map[string]any{"results": []any{map[string]any{"score": 0.8}, map[string]any{"score": 0.9}}}, true},
		{`predicate.results.all(r, r.score >= 0.85)`, map[string]any{"results": []any{map[string]any{"score": 0.8}, map[string]any{"score": 0.9}}}, false},
		{`predicate.results[0].score == 0.8`, map[string]any{"results": []any{map[string]any{"score": 0.8}}}, true},
	}
	for i, tc := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			p := td.parse(t, fmt.Sprintf(`apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    attestations:
      - predicateType: https://modelreg.dev/evaluation/v1
        keys: [keys/eval.pub]
        condition: %s
`, strconv.Quote(tc.cond)))
			ev := passing(td)
			ev.Attestations = []Attestation{{KeyID: td.ids["eval"], PredicateType: "https://modelreg.dev/evaluation/v1", Predicate: tc.predicate}}
			d, err := p.Evaluate("production", ev)
			if err != nil {
				t.Fatal(err)
			}
			if r := d.Rules[0]; r.Passed != tc.passed {
				t.Errorf("%s over %v: passed = %v, want %v (%s)", tc.cond, tc.predicate, r.Passed, tc.passed, r.Reason)
			}
		})
	}
}

func TestConditionCostLimit(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, "apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n    condition: \"files.all(a, files.all(b, files.all(c, a.size >= 0)))\"\n")
	ev := Evidence{}
	for i := range 200 { // 200³ = 8 million steps
		ev.Files = append(ev.Files, File{Path: strconv.Itoa(i)})
	}
	d, err := p.Evaluate("production", ev)
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Rules[0]; r.Passed || !strings.Contains(r.Reason, "cost limit exceeded") {
		t.Errorf("got %+v", r)
	}
}

func TestReadPathsLabels(t *testing.T) {
	e, err := evidenceEnv()
	if err != nil {
		t.Fatal(err)
	}
	c, issues, err := e.compile(`config.a.x > 1 && config.b.x > 1 && files.exists(files, files.size > 0) && config['c'].y == 2 && files[0].path != ''`)
	if err != nil || issues != nil {
		t.Fatal(err, issues)
	}
	var got []string
	for _, p := range c.paths {
		got = append(got, p.label)
	}
	// Two paths end in x, so both show in full; the comprehension variable
	// shadows the evidence variable of the same name.
	if want := "config.a.x|config.b.x|y|path"; strings.Join(got, "|") != want {
		t.Errorf("labels = %v", got)
	}
}
