package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/modelreg/modelreg/errdef"
)

func TestLoad(t *testing.T) {
	td := newTestDir(t)
	path := td.write(t, "policy.yaml", []byte(fullPolicy))
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(fullPolicy))
	if want := "sha256:" + hex.EncodeToString(sum[:]); p.Digest != want {
		t.Errorf("Digest = %s, want %s", p.Digest, want)
	}
	if p.Path != path {
		t.Errorf("Path = %s", p.Path)
	}
	if got := p.AliasNames(); !reflect.DeepEqual(got, []string{"production", "staging"}) {
		t.Errorf("AliasNames = %v", got)
	}
	if !p.Protects("production") || !p.Protects("staging") || p.Protects("latest") {
		t.Error("Protects is wrong")
	}

	prod := p.Aliases["production"]
	if prod.Signatures.MinSigners != 2 || len(prod.Signatures.Keys) != 2 || prod.Signatures.Keys[1].Path != "keys/ci.pub" {
		t.Errorf("signatures = %+v", prod.Signatures)
	}
	if p.Aliases["staging"].Signatures.MinSigners != 1 {
		t.Errorf("minSigners default = %d, want 1", p.Aliases["staging"].Signatures.MinSigners)
	}
	if prod.Approvals.Min != 2 || len(prod.Approvals.Keys) != 3 {
		t.Errorf("approvals = %+v", prod.Approvals)
	}
	if !reflect.DeepEqual(prod.RequireAlias, []string{"staging"}) {
		t.Errorf("requireAlias = %v", prod.RequireAlias)
	}
	if a := prod.Attestations[0]; a.PredicateType != "https://modelreg.dev/evaluation/v1" || a.Condition != "predicate.metrics.accuracy >= 0.9" || a.Keys[0].ID != td.ids["eval"] {
		t.Errorf("attestation = %+v", a)
	}

	// Keys: every key once, by ID, in the order the file names them.
	var got []string
	for _, k := range p.Keys() {
		got = append(got, k.Path)
		if k.ID != td.ids[strings.TrimSuffix(strings.TrimPrefix(k.Path, "keys/"), ".pub")] {
			t.Errorf("key %s: ID %s is not sha256 of its PKIX DER", k.Path, k.ID)
		}
		if !strings.HasPrefix(string(k.PEM), "-----BEGIN PUBLIC KEY-----\n") {
			t.Errorf("key %s: PEM %q", k.Path, k.PEM)
		}
	}
	want := []string{"keys/release.pub", "keys/ci.pub", "keys/eval.pub", "keys/alice.pub", "keys/bob.pub", "keys/carol.pub"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Keys = %v, want %v", got, want)
	}
}

func TestKeysDeduplicatedByID(t *testing.T) {
	td := newTestDir(t)
	data, err := os.ReadFile(filepath.Join(td.dir, "keys/alice.pub"))
	if err != nil {
		t.Fatal(err)
	}
	td.write(t, "keys/alice-copy.pub", data)
	abs := filepath.Join(td.dir, "keys", "bob.pub")
	p := td.parse(t, `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    approvals: {keys: [keys/alice-copy.pub, `+abs+`, keys/alice.pub]}
  staging:
    signatures: {keys: [keys/alice.pub]}
`)
	keys := p.Keys()
	if len(keys) != 2 || keys[0].Path != "keys/alice-copy.pub" || keys[0].ID != td.ids["alice"] || keys[1].Path != abs {
		t.Errorf("Keys = %+v", keys)
	}
	// The same key listed twice under two names approves once.
	d, err := p.Evaluate("production", Evidence{Approvals: approvals(td, "alice")})
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Rules[0]; !r.Passed || r.Reason != "1 of 1 required approvals: alice (keys/alice-copy.pub)" {
		t.Errorf("got %+v", r)
	}
}

func TestLoadErrors(t *testing.T) {
	td := newTestDir(t)
	head := "apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n"
	tests := []struct {
		name string
		src  string
		want []string // each must appear in the error, as "policy.yaml:LINE: FIELD: ..."
	}{
		{"bad YAML", head + "    files: [README.md\n    annotations: [a]\n",
			[]string{"policy.yaml:6: invalid YAML: ',' or ']' must be specified (column 5)"}},
		{"bad indentation", head + "    files: [a]\n   bad: x\n",
			[]string{"policy.yaml:6: invalid YAML: value is not allowed in this context (column 4)"}},
		{"unterminated string", head + "    condition: \"has(x\n",
			[]string{"policy.yaml:5: invalid YAML: could not find end character of double-quoted text (column 16)"}},
		{"tab indentation", "apiVersion: modelreg.dev/v1\n\tkind: x\n",
			[]string{"policy.yaml:2: invalid YAML: found character '\t' that cannot start any token (column 1)"}},
		{"empty file", "# nothing\n", []string{"policy.yaml: the file is empty"}},
		{"not a mapping", "- a\n- b\n", []string{"policy.yaml:1: the file must be a mapping with fields apiVersion, kind, aliases, got a list"}},
		{"two documents", fullPolicy + "---\nkind: x\n", []string{"policy.yaml:17: a second YAML document"}},
		{"unknown field (typo)", head + "    annotations: [a]\n    files: [b]\n    signature: {keys: [keys/release.pub]}\n",
			[]string{`policy.yaml:7: aliases.production: unknown field "signature" (did you mean "signatures"?)`}},
		{"unknown field (no near match)", head + "    owner: bob\n",
			[]string{`policy.yaml:5: aliases.production: unknown field "owner" (known fields: signatures, annotations, files, attestations, approvals, requireAlias, condition, promoters)`}},
		{"unknown top-level field", "apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\nmetadata: {}\naliases: {x: {}}\n",
			[]string{`policy.yaml:3: unknown field "metadata"`}},
		{"unknown field in signatures", head + "    signatures: {keys: [keys/release.pub], minSigner: 1}\n",
			[]string{`policy.yaml:5: aliases.production.signatures: unknown field "minSigner" (did you mean "minSigners"?)`}},
		{"unknown field in attestation", head + "    attestations:\n      - predicateType: t\n        key: [keys/eval.pub]\n",
			[]string{`policy.yaml:7: aliases.production.attestations[0]: unknown field "key" (did you mean "keys"?)`,
				`policy.yaml:6: aliases.production.attestations[0].keys: required`}},
		{"duplicate field", head + "    files: [a]\n    files: [b]\n",
			[]string{"policy.yaml:6: aliases.production.files: given twice (first on line 5)"}},
		{"wrong apiVersion", "apiVersion: modelreg.dev/v2\nkind: PromotionPolicy\naliases: {x: {}}\n",
			[]string{`policy.yaml:1: apiVersion: got "modelreg.dev/v2", want "modelreg.dev/v1"`}},
		{"wrong kind", "apiVersion: modelreg.dev/v1\nkind: Policy\naliases: {x: {}}\n",
			[]string{`policy.yaml:2: kind: got "Policy", want "PromotionPolicy"`}},
		{"missing header", "aliases: {x: {}}\n",
			[]string{`policy.yaml:1: apiVersion: required: "modelreg.dev/v1"`, `policy.yaml:1: kind: required: "PromotionPolicy"`}},
		{"missing aliases", "apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\n",
			[]string{"policy.yaml:1: aliases: required"}},
		{"empty aliases", "apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases: {}\n",
			[]string{"policy.yaml:3: aliases: no alias sections"}},
		{"invalid alias name", "apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  prod/eu: {}\n",
			[]string{`policy.yaml:4: aliases.prod/eu: "prod/eu" is not a valid alias name`}},
		{"section not a mapping", head + "    - files\n",
			[]string{"policy.yaml:5: aliases.production: must be a mapping with fields signatures"}},

		// CEL
		{"condition does not compile", head + "    files: [a]\n    condition: \"has(annotationz['x'])\"\n",
			[]string{`policy.yaml:6: aliases.production.condition: does not compile: undeclared reference to 'annotationz'`}},
		{"attestation condition does not compile", head +
			"    attestations:\n      - predicateType: https://modelreg.dev/evaluation/v1\n        keys: [keys/eval.pub]\n        condition: \"predicate.metrics.accuracy >=\"\n",
			[]string{`policy.yaml:8: aliases.production.attestations[0].condition: does not compile: Syntax error`}},
		{"predicate outside an attestation", head + "    condition: \"predicate.x == 1\"\n",
			[]string{`policy.yaml:5: aliases.production.condition: does not compile: undeclared reference to 'predicate'`}},
		{"condition not boolean", head + "    condition: \"annotations.size()\"\n",
			[]string{`policy.yaml:5: aliases.production.condition: must be a true/false expression, but "annotations.size()" yields int`}},
		{"condition type error", head + "    condition: \"repository > 3\"\n",
			[]string{`policy.yaml:5: aliases.production.condition: does not compile: found no matching overload for '_>_' applied to '(string, int)'`}},
		{"has with a computed key", head + "    condition: \"annotations.all(k, has(annotations[k]))\"\n",
			[]string{`policy.yaml:5: aliases.production.condition: does not compile: has() takes a field (has(m.f)) or a map key in quotes (has(m['k'])); for other keys write k in m`}},
		{"condition in a literal block, error on its second line", head + "    condition: |\n      repository != '' &&\n      nosuch\n",
			[]string{`policy.yaml:7: aliases.production.condition: does not compile: undeclared reference to 'nosuch'`}},
		{"condition in a folded block", head + "    condition: >\n      repository != '' &&\n      nosuch\n",
			[]string{`policy.yaml:6: aliases.production.condition: does not compile: undeclared reference to 'nosuch'`}},
		{"duplicate alias section", "apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production: {}\n  production:\n    files: [\"[\"]\n",
			[]string{"policy.yaml:5: aliases.production: given twice (first on line 4)"}},
		{"empty condition", head + "    condition: \"  \"\n",
			[]string{`policy.yaml:5: aliases.production.condition: empty CEL expression`}},

		// keys
		{"missing key file", head + "    signatures: {keys: [keys/release.pub, keys/missing.pub]}\n",
			[]string{"policy.yaml:5: aliases.production.signatures.keys[1]: key file keys/missing.pub: no such file (looked at " + filepath.Join(td.dir, "keys", "missing.pub") + ")"}},
		{"key file is a directory", head + "    signatures: {keys: [keys]}\n",
			[]string{"policy.yaml:5: aliases.production.signatures.keys[0]: key file keys: is a directory"}},
		{"private key", head + "    approvals:\n      keys: [keys/alice.pub, keys/release.key]\n",
			[]string{`policy.yaml:6: aliases.production.approvals.keys[1]: key file keys/release.key: holds a private key (PEM "PRIVATE KEY"); name the public key file (.pub) instead`}},
		{"not PEM", head + "    signatures: {keys: [keys/garbage.pub]}\n",
			[]string{`policy.yaml:5: aliases.production.signatures.keys[0]: key file keys/garbage.pub: not a PEM file`}},
		{"wrong PEM type", head + "    signatures: {keys: [keys/cert.pub]}\n",
			[]string{`policy.yaml:5: aliases.production.signatures.keys[0]: key file keys/cert.pub: PEM block "CERTIFICATE" is not a "PUBLIC KEY"`}},
		{"keys missing", head + "    signatures: {minSigners: 1}\n",
			[]string{`policy.yaml:5: aliases.production.signatures.keys: required: at least one public key file`}},
		{"keys empty", head + "    approvals: {keys: []}\n",
			[]string{`policy.yaml:5: aliases.production.approvals.keys: required: at least one public key file`}},
		{"keys not a list", head + "    signatures: {keys: keys/release.pub}\n",
			[]string{`policy.yaml:5: aliases.production.signatures.keys: must be a list of strings, got "keys/release.pub"`}},
		{"minSigners zero", head + "    signatures: {keys: [keys/release.pub], minSigners: 0}\n",
			[]string{`policy.yaml:5: aliases.production.signatures.minSigners: must be at least 1, got 0`}},
		{"minSigners above keys", head + "    signatures:\n      keys: [keys/release.pub, keys/ci.pub]\n      minSigners: 3\n",
			[]string{`policy.yaml:7: aliases.production.signatures.minSigners: 3 is more than the 2 distinct keys listed, so the rule could never pass`}},
		{"minSigners above distinct keys", head + "    signatures: {keys: [keys/release.pub, keys/release.pub], minSigners: 2}\n",
			[]string{`policy.yaml:5: aliases.production.signatures.minSigners: 2 is more than the 1 distinct key listed`}},
		{"min above keys", head + "    approvals: {keys: [keys/alice.pub, keys/bob.pub], min: 3}\n",
			[]string{`policy.yaml:5: aliases.production.approvals.min: 3 is more than the 2 distinct keys listed`}},
		{"min negative", head + "    approvals: {keys: [keys/alice.pub], min: -1}\n",
			[]string{`policy.yaml:5: aliases.production.approvals.min: must be at least 1, got -1`}},
		{"min not a number", head + "    approvals: {keys: [keys/alice.pub], min: two}\n",
			[]string{`policy.yaml:5: aliases.production.approvals.min: must be a whole number, got "two"`}},

		// other fields
		{"attestation without predicateType", head + "    attestations:\n      - keys: [keys/eval.pub]\n",
			[]string{`policy.yaml:6: aliases.production.attestations[0].predicateType: required`}},
		{"attestations not a list", head + "    attestations: {predicateType: t}\n",
			[]string{`policy.yaml:5: aliases.production.attestations: must be a list of {predicateType, keys, condition}, got a mapping`}},
		{"bad glob", head + "    files: [README.md, \"[\"]\n",
			[]string{`policy.yaml:5: aliases.production.files[1]: "[" is not a valid glob pattern`}},
		{"annotation not a string", head + "    annotations:\n      - {a: b}\n",
			[]string{`policy.yaml:6: aliases.production.annotations[0]: must be a string, got a mapping`}},
		{"annotations not a list", head + "    annotations: org.opencontainers.image.source\n",
			[]string{`policy.yaml:5: aliases.production.annotations: must be a list of strings`}},
		{"requireAlias itself", head + "    requireAlias: [staging, production]\n",
			[]string{`policy.yaml:5: aliases.production.requireAlias[1]: an alias cannot require itself`}},
		{"requireAlias invalid", head + "    requireAlias: \"-x\"\n",
			[]string{`policy.yaml:5: aliases.production.requireAlias: "-x" is not a valid alias name`}},

		{"every problem at once", head + "    signature: {}\n    files: [\"[\"]\n    condition: \"nope\"\n  staging:\n    approvals: {keys: [keys/missing.pub]}\n",
			[]string{`policy.yaml:5: aliases.production: unknown field "signature"`,
				`policy.yaml:6: aliases.production.files[0]`,
				`policy.yaml:7: aliases.production.condition: does not compile`,
				`policy.yaml:9: aliases.staging.approvals.keys[0]: key file keys/missing.pub: no such file`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.src), "policy.yaml", td.dir)
			if err == nil {
				t.Fatalf("no error; policy %+v", p)
			}
			if !errors.Is(err, errdef.ErrInvalidInput) {
				t.Errorf("error does not wrap ErrInvalidInput: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) && tc.name != "every problem at once" {
				t.Errorf("%d errors, want %d:\n%v", n, len(tc.want), err)
			}
		})
	}
}

func TestLoadErrorNamesTheFile(t *testing.T) {
	td := newTestDir(t)
	path := td.write(t, "policy.yaml", []byte("apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n    signatures: {keys: [keys/release.pub]}\n    annotations: [a]\n    signature: {keys: [keys/release.pub]}\n"))
	_, err := Load(path)
	if want := path + `:7: aliases.production: unknown field "signature"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %s", err, want)
	}
	_, err = Load(filepath.Join(td.dir, "nope.yaml"))
	if !errors.Is(err, errdef.ErrInvalidInput) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestYAMLAnchorsShareRules(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  staging: &gate
    signatures: {keys: [keys/release.pub]}
    files: ["*.onnx"]
  production: *gate
`)
	for _, alias := range []string{"staging", "production"} {
		r := p.Aliases[alias]
		if r == nil || r.Signatures == nil || len(r.Files) != 1 {
			t.Errorf("%s: %+v", alias, r)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"signature", "signatures", 1}, {"kitten", "sitting", 3}, {"abc", "", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
