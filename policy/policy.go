// Package policy holds the promotion policy file of modelreg and its
// evaluation over one evidence document.
//
// A policy is a YAML file (see DESIGN.md, "Promotion policy") with one
// section of rules per alias:
//
//	apiVersion: modelreg.dev/v1
//	kind: PromotionPolicy
//	aliases:
//	  production:
//	    signatures: {keys: [keys/release.pub], minSigners: 1}
//	    annotations: [org.opencontainers.image.source]
//	    files: ["README.md", "*.safetensors"]
//	    attestations:
//	      - predicateType: https://modelreg.dev/evaluation/v1
//	        keys: [keys/eval.pub]
//	        condition: "predicate.metrics.accuracy >= 0.9"
//	    approvals: {keys: [keys/alice.pub, keys/bob.pub], min: 2}
//	    requireAlias: staging
//	    condition: "has(annotations['org.opencontainers.image.revision'])"
//
// [Load] reads the file and the public keys it names, checks every field and
// compiles every CEL condition, so that a broken policy fails before any
// promotion. [Policy.Evaluate] then judges an [Evidence] document — the
// verified facts about one model version that the caller gathered from the
// registry — and returns a [Decision] that lists every rule, passed or not.
//
// Conditions are CEL (cel.dev/cel-go) over the JSON form of the evidence:
// the variables repository, reference, digest, alias, artifactType,
// annotations, config, files, signatures, attestations, approvals and
// aliases, plus predicate in attestation conditions. JSON numbers are
// doubles and compare with int literals (`>= 1`); has(m['key']) tests a map
// key, as has(m.f) tests a field; the ext.Lists and ext.Strings functions
// are available; every evaluation is bounded by a cost limit.
//
// The package is pure: it does no network or registry I/O and reads only the
// policy file and its key files. A loaded [Policy] is immutable and safe for
// concurrent use.
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/modelreg/modelreg/errdef"
)

// The header every policy file must carry.
const (
	// APIVersion is the required value of the file's apiVersion field.
	APIVersion = "modelreg.dev/v1"
	// Kind is the required value of the file's kind field.
	Kind = "PromotionPolicy"
)

// Policy is a loaded and validated promotion policy. Build one with [Load]
// or [Parse]; a Policy assembled by hand has no compiled conditions and its
// condition rules fail.
type Policy struct {
	// Path is the file the policy was read from, as given to [Load], or
	// the name given to [Parse]. Messages name the policy by it.
	Path string
	// Digest is "sha256:<hex>" of the policy file's bytes. A [Decision]
	// carries it so that an audit record names the exact policy applied.
	Digest string
	// Aliases holds the rules of each alias the policy protects, by alias
	// name (a tag such as "production").
	Aliases map[string]*AliasRules

	keys []Key // every key named, deduplicated by ID, in file order
}

// AliasRules are the rules of one alias section. A nil or empty field means
// the rule is absent and is not reported in a [Decision].
type AliasRules struct {
	// Signatures requires cosign signatures by distinct keys.
	Signatures *SignatureRule
	// Annotations lists manifest annotation keys that must be present
	// with a non-empty value.
	Annotations []string
	// Files lists glob patterns (path.Match syntax, matched against each
	// file's relative path with forward slashes; "*" does not cross "/").
	// Each pattern must match at least one file of the version.
	Files []string
	// Attestations lists in-toto attestations the version must carry;
	// each entry is a rule of its own.
	Attestations []AttestationRule
	// Approvals requires approvals by distinct keys.
	Approvals *ApprovalRule
	// RequireAlias lists aliases the version must hold, or have held per
	// promotion records, before it may take this alias. For an alias this
	// policy protects only a promotion record ([AliasState.Held]) counts,
	// since its tag alone is a claim anyone with push rights can make; for
	// any other alias its tag pointing at the digest ([AliasState.Current])
	// counts too.
	RequireAlias []string
	// Condition is a CEL expression over the evidence document that must
	// evaluate to true; empty when absent.
	Condition string
	// Promoters are the keys allowed to sign promotion records of this
	// alias (`promoters: {keys: [...]}`). Deploy-time verification
	// honours the alias only with the newest record signed by one of them.
	Promoters []Key
	// PromotionMaxAge, when set (`promoters: {maxAge: 720h}`), is how
	// old the newest promotion record may be for deploy-time verification
	// to honour it: like TUF's timestamp expiry, it bounds how long an
	// older record hidden behind an overwritten tag could be replayed.
	PromotionMaxAge time.Duration
	// PromotionMinSequence, when set (`promoters: {minSequence: 12}`), is
	// the lowest promotion record sequence deploy-time verification
	// honours. Unlike the per-machine memory of accepted sequences it
	// holds in a fresh pod too: raise it in the policy ConfigMap with each
	// release, and an older record replayed behind an overwritten tag is
	// refused everywhere.
	PromotionMinSequence int64

	cond *condition
}

// SignatureRule requires verified signatures by at least MinSigners
// distinct keys of Keys.
type SignatureRule struct {
	// Keys are the keys whose signatures count, in file order.
	Keys []Key
	// MinSigners is the number of distinct keys of Keys that must have
	// signed; 1 when the file does not say, never more than the number of
	// distinct keys.
	MinSigners int
}

// AttestationRule requires at least one verified attestation of
// PredicateType, signed by one of Keys, whose predicate satisfies Condition.
type AttestationRule struct {
	// PredicateType is the in-toto predicate type URI, compared exactly.
	PredicateType string
	// Keys are the keys whose attestations count; an attestation signed
	// by any other key is ignored even if its predicate passes.
	Keys []Key
	// Condition is a CEL expression over `predicate` (the decoded
	// predicate) and the evidence variables; empty means any attestation
	// of the type by an allowed key passes.
	Condition string
	// Promoters are the keys allowed to sign promotion records of this
	// alias (`promoters: {keys: [...]}`). Deploy-time verification
	// honours the alias only with the newest record signed by one of them.
	Promoters []Key
	// PromotionMaxAge, when set (`promoters: {maxAge: 720h}`), is how
	// old the newest promotion record may be for deploy-time verification
	// to honour it: like TUF's timestamp expiry, it bounds how long an
	// older record hidden behind an overwritten tag could be replayed.
	PromotionMaxAge time.Duration

	cond *condition
}

// ApprovalRule requires verified approvals by at least Min distinct keys of
// Keys. Two approvals by the same key count once.
type ApprovalRule struct {
	// Keys are the approvers' keys, in file order.
	Keys []Key
	// Min is the number of distinct keys of Keys that must have approved;
	// 1 when the file does not say, never more than the number of
	// distinct keys.
	Min int
}

// Key is a public key named by a policy.
type Key struct {
	// Path is the key file's path as written in the policy (relative to
	// the policy file's directory unless absolute). Messages name keys by
	// it because that is how a release owner knows them.
	Path string
	// ID is "sha256:" + hex(sha256(PKIX DER of the public key)), the DER
	// as x509.MarshalPKIXPublicKey writes it: the same formula the signing
	// package uses. Evidence names keys by it.
	ID string
	// PEM is the key as a PEM "PUBLIC KEY" block.
	PEM []byte
}

// Load reads the policy file at path and the key files it names (relative
// to the file's directory), checks it and compiles its CEL conditions.
//
// Every error wraps errdef.ErrInvalidInput. A file with problems yields all
// of them, one per line, each as "FILE:LINE: FIELD: what is wrong", e.g.
// `policy.yaml:7: aliases.production: unknown field "signature"`.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: policy file: %w", errdef.ErrInvalidInput, err)
	}
	return Parse(data, path, filepath.Dir(path))
}

// Parse is [Load] for a policy already in memory: data is the file's
// content, name is what messages and [Policy.Path] call it, and baseDir is
// the directory key paths are relative to ("" for the working directory).
// It reads the key files the policy names. Errors are as for [Load].
func Parse(data []byte, name, baseDir string) (*Policy, error) {
	l := &loader{name: name, baseDir: baseDir}
	p := l.load(data)
	if err := l.err(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	p.Path = name
	p.Digest = "sha256:" + hex.EncodeToString(sum[:])
	return p, nil
}

// Keys returns every key named anywhere in the policy, deduplicated by ID
// (the first path naming a key wins), in the order the file first names
// them. The caller verifies signatures, attestations and approvals against
// these keys to build the [Evidence]. The slice is a copy; the PEM bytes
// are shared and must not be modified.
func (p *Policy) Keys() []Key {
	return append([]Key(nil), p.keys...)
}

// PromoterKeys returns the keys allowed to sign promotion records of alias
// (the alias section's `promoters: {keys: [...]}`), nil when the policy
// names none or does not protect alias. There is no fallback to the
// signature keys: who may sign a model and who may move production are
// different questions.
func (p *Policy) PromoterKeys(alias string) []Key {
	r, ok := p.Aliases[alias]
	if !ok {
		return nil
	}
	return append([]Key(nil), r.Promoters...)
}

// PromotionMaxAge returns the alias's promoters.maxAge, 0 when unset.
func (p *Policy) PromotionMaxAge(alias string) time.Duration {
	if r, ok := p.Aliases[alias]; ok {
		return r.PromotionMaxAge
	}
	return 0
}

// PromotionMinSequence returns the alias's promoters.minSequence, 0 when
// unset.
func (p *Policy) PromotionMinSequence(alias string) int64 {
	if r, ok := p.Aliases[alias]; ok {
		return r.PromotionMinSequence
	}
	return 0
}

// Protects reports whether the policy has a section for alias, that is
// whether promotions to it are gated and, at deploy time, honoured only
// with a valid promotion record.
func (p *Policy) Protects(alias string) bool {
	_, ok := p.Aliases[alias]
	return ok
}

// AliasNames returns the names of the aliases the policy protects, sorted.
func (p *Policy) AliasNames() []string {
	names := make([]string, 0, len(p.Aliases))
	for name := range p.Aliases {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
