package modelreg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	orasErrdef "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/policy"
	"github.com/modelreg/modelreg/signing"
)

// Decision is a policy decision: allowed or not, with every rule's result.
type Decision = policy.Decision

// RuleResult is the outcome of one rule of a [Decision].
type RuleResult = policy.RuleResult

// Evidence is the document a policy is evaluated over.
type Evidence = policy.Evidence

// PromoteOptions configure Promote and Rollback.
type PromoteOptions struct {
	// Policy is the promotion policy file (required).
	Policy string
	// Key is the cosign private key that signs the promotion record
	// (required); it must be one of the alias's promoter keys.
	Key string
	// Password decrypts Key.
	Password []byte
	// Reason is recorded in the promotion record, e.g. "rollback".
	Reason string
}

// PromoteResult says what Promote decided and did.
type PromoteResult struct {
	Alias     string `json:"alias"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// Previous is the digest the alias held before, "" if none: what its
	// newest promotion record names (or, before the first record, what
	// the tag named). The new record names it as its previous digest.
	Previous string `json:"previous"`
	// TagPrevious is what the tag itself pointed at when that differs from
	// Previous (a tag moved or removed by hand): the digest, or "" when the
	// tag did not exist. Absent when the two agree.
	TagPrevious *string  `json:"tagPrevious,omitempty"`
	Moved       bool     `json:"moved"`
	Decision    Decision `json:"decision"`
	// Warning notes something odd that did not stop the promotion, such as
	// a tag moved by hand.
	Warning string `json:"warning,omitempty"`
	// Record is the promotion record written, nil when refused.
	Record *PromotionRecord `json:"record,omitempty"`
}

// promoterKeys returns the keys allowed to sign promotion records of alias.
func promoterKeys(pol *policy.Policy, alias string) []policy.Key {
	return pol.PromoterKeys(alias)
}

// aliasRecords returns the promotion records of alias in ref's repository,
// verified with the alias's promoter keys, newest first.
func (c *Client) aliasRecords(ctx context.Context, repo *remote.Repository, ref oci.Reference, pol *policy.Policy, alias string) ([]PromotionRecord, error) {
	pubs, err := publicKeys(promoterKeys(pol, alias))
	if err != nil {
		return nil, err
	}
	return c.promotionRecords(ctx, repo, ref, pubs, alias)
}

func publicKeys(keys []policy.Key) ([]signing.PublicKey, error) {
	var out []signing.PublicKey
	for _, k := range keys {
		pk, err := signing.ParsePublicKey(k.PEM, k.Path)
		if err != nil {
			return nil, err
		}
		out = append(out, pk)
	}
	return out, nil
}

func keyPaths(keys []policy.Key) []string {
	var s []string
	for _, k := range keys {
		s = append(s, k.Path)
	}
	return s
}

// Promote moves alias to the version refStr names, only if the policy's
// rules for alias pass on that digest, and records the move in a signed
// promotion record (predicate https://modelreg.dev/promotion/v1) attached
// to the digest: repository, alias, digest, previous digest, the next
// sequence number of the alias, the digest of the previous record, signer,
// actor, time, and the policy's digest and result.
//
// A refusal returns the result (every rule's outcome) and an error wrapping
// errdef.ErrDenied that lists every failing rule; nothing changes in the
// registry. The record is written before the tag moves, so the alias never
// points at a version without a record because of a failure here.
func (c *Client) Promote(ctx context.Context, refStr, alias string, opts PromoteOptions) (*PromoteResult, error) {
	if err := oci.ValidateAlias(alias); err != nil {
		return nil, err
	}
	if opts.Policy == "" {
		return nil, fmt.Errorf("%w: promote needs --policy FILE", errdef.ErrInvalidInput)
	}
	if opts.Key == "" {
		return nil, fmt.Errorf("%w: promote needs --key FILE to sign the promotion record that deploy-time verification checks", errdef.ErrInvalidInput)
	}
	pol, err := policy.Load(opts.Policy)
	if err != nil {
		return nil, err
	}
	if !pol.Protects(alias) {
		return nil, fmt.Errorf("%w: policy %s has no rules for alias %q (it names: %s); add a section for it", errdef.ErrInvalidInput, opts.Policy, alias, strings.Join(pol.AliasNames(), ", "))
	}
	key, err := signing.LoadPrivateKey(opts.Key, opts.Password)
	if err != nil {
		return nil, err
	}
	ref, pinned, repo, mv, err := c.version(ctx, refStr)
	if err != nil {
		return nil, err
	}
	ev, err := c.gatherEvidence(ctx, repo, pinned, mv, pol, alias)
	if err != nil {
		return nil, err
	}
	dec, err := pol.Evaluate(alias, ev)
	if err != nil {
		return nil, err
	}
	promoters := promoterKeys(pol, alias)
	allowedSigner := false
	for _, k := range promoters {
		allowedSigner = allowedSigner || k.ID == key.ID
	}
	signerRule := policy.RuleResult{Rule: "promoter", Passed: allowedSigner,
		Reason: fmt.Sprintf("%s may sign promotion records of %q", opts.Key, alias)}
	if !allowedSigner {
		signerRule.Reason = fmt.Sprintf("%s is not a promoter key of %q (allowed: %s)", opts.Key, alias, joinOr(keyPaths(promoters), "none: add promoters: {keys: [...]} to the policy"))
	}
	dec.Rules = append(dec.Rules, signerRule)
	dec.Allowed = dec.Allowed && allowedSigner

	res := &PromoteResult{Alias: alias, Reference: pinned.String(), Digest: pinned.Digest.String(), Decision: dec}
	tagDigest := ""
	if cur, err := repo.Resolve(ctx, alias); err == nil {
		tagDigest = cur.Digest.String()
	} else if !errors.Is(err, orasErrdef.ErrNotFound) {
		return nil, err
	}
	recs, err := c.aliasRecords(ctx, repo, ref, pol, alias)
	if err != nil {
		return nil, err
	}
	// The previous version is what the record chain says the alias held,
	// not what the tag says now: a tag moved by hand is not history.
	last := newestRecord(recs)
	res.Previous = tagDigest
	if last != nil {
		res.Previous = last.Digest
	}
	if tagDigest != res.Previous {
		res.TagPrevious = &tagDigest
		res.Warning = fmt.Sprintf("the tag %s pointed at %s, but its newest promotion record (sequence %d) names %s: the tag was moved outside `modelreg promote`; this promotion records %s as the previous version",
			alias, orNone(tagDigest), last.Sequence, res.Previous, res.Previous)
	}
	if err := dec.Error(); err != nil {
		return res, err
	}
	p := PromotionPredicate{
		Repository: ref.Name(), Alias: alias, Digest: pinned.Digest.String(),
		PreviousDigest: res.Previous, Sequence: 1, Reason: opts.Reason,
		Policy: PolicyResult{Digest: pol.Digest, Allowed: true},
	}
	if last != nil {
		p.Sequence = last.Sequence + 1
		p.PreviousRecord = last.RecordDigest
	}
	for _, r := range dec.Rules {
		p.Policy.Rules = append(p.Policy.Rules, Rule{Rule: r.Rule, Passed: r.Passed})
	}
	rec, err := c.writeRecord(ctx, pinned, key, p)
	if err != nil {
		return res, err
	}
	res.Record = rec
	if err := oci.PutTag(ctx, repo, mv.Descriptor, mv.Raw, alias); err != nil {
		return res, fmt.Errorf("the promotion record (sequence %d) is written but moving the tag failed; run promote again: %w", p.Sequence, err)
	}
	res.Moved = true
	// Promotions of one alias that run at the same moment both read
	// sequence N and write N+1; the registry cannot prevent it, so detect it.
	after, err := c.aliasRecords(ctx, repo, ref, pol, alias)
	if err != nil {
		return res, err
	}
	for _, r := range newestSequence(after) {
		if r.RecordDigest != rec.RecordDigest {
			return res, fmt.Errorf("another promotion of %q (sequence %d, %s) ran at the same time as this one; check `modelreg history` and promote again", alias, r.Sequence, r.Digest)
		}
	}
	return res, nil
}

func orNone(d string) string {
	if d == "" {
		return "nothing"
	}
	return d
}

// Rollback promotes, through the same policy and with a new promotion
// record, the version that held alias before its newest promotion record.
func (c *Client) Rollback(ctx context.Context, repoStr, alias string, opts PromoteOptions) (*PromoteResult, error) {
	if opts.Policy == "" {
		return nil, fmt.Errorf("%w: rollback needs --policy FILE", errdef.ErrInvalidInput)
	}
	pol, err := policy.Load(opts.Policy)
	if err != nil {
		return nil, err
	}
	ref, repo, err := c.openRepo(repoStr)
	if err != nil {
		return nil, err
	}
	recs, err := c.aliasRecords(ctx, repo, ref, pol, alias)
	if err != nil {
		return nil, err
	}
	last := newestRecord(recs)
	if last == nil {
		return nil, fmt.Errorf("%w: %s has no promotion record for alias %q signed by its promoters; nothing to roll back to", errdef.ErrNotFound, ref.Name(), alias)
	}
	if last.PreviousDigest == "" {
		return nil, fmt.Errorf("%w: the first promotion of %q (sequence %d) had no previous version; nothing to roll back to", errdef.ErrNotFound, alias, last.Sequence)
	}
	if opts.Reason == "" {
		opts.Reason = fmt.Sprintf("rollback of sequence %d", last.Sequence)
	}
	return c.Promote(ctx, ref.WithDigest(digest.Digest(last.PreviousDigest)).String(), alias, opts)
}

// CheckPolicy evaluates the policy's rules for alias on the version refStr
// names without changing anything, and returns the evidence and decision.
// An empty alias means the reference's tag.
func (c *Client) CheckPolicy(ctx context.Context, refStr, alias, policyPath string) (*Evidence, Decision, error) {
	pol, err := policy.Load(policyPath)
	if err != nil {
		return nil, Decision{}, err
	}
	if alias == "" {
		if r, err := oci.ParseReference(refStr); err == nil {
			alias = r.Tag
		}
	}
	if !pol.Protects(alias) {
		return nil, Decision{}, fmt.Errorf("%w: policy %s has no rules for alias %q (it names: %s); give --to ALIAS", errdef.ErrInvalidInput, policyPath, alias, strings.Join(pol.AliasNames(), ", "))
	}
	_, pinned, repo, mv, err := c.version(ctx, refStr)
	if err != nil {
		return nil, Decision{}, err
	}
	ev, err := c.gatherEvidence(ctx, repo, pinned, mv, pol, alias)
	if err != nil {
		return nil, Decision{}, err
	}
	dec, err := pol.Evaluate(alias, ev)
	if err != nil {
		return &ev, dec, err
	}
	rule := policy.RuleResult{Rule: "promoters", Passed: len(promoterKeys(pol, alias)) > 0}
	if rule.Passed {
		rule.Reason = "promotion records may be signed by " + strings.Join(keyPaths(promoterKeys(pol, alias)), ", ")
	} else {
		rule.Reason = fmt.Sprintf("the policy names no promoters for %q, so no promotion to it can be recorded or trusted at deploy time; add promoters: {keys: [...]}", alias)
	}
	dec.Rules = append(dec.Rules, rule)
	dec.Allowed = dec.Allowed && rule.Passed
	return &ev, dec, nil
}

// checkProtectedAlias is the deploy-time gate of Pull --policy: ref.Tag
// must be an alias the policy protects; its rules must pass on ref.Digest;
// and the newest valid promotion record of the alias, signed by one of its
// promoter keys, must name ref.Digest. A tag moved by hand, or moved back
// to an older version whose old record is replayed, fails the last check.
func (c *Client) checkProtectedAlias(ctx context.Context, ref oci.Reference, mv *oci.ModelVersion, policyPath string) (*Decision, error) {
	pol, err := policy.Load(policyPath)
	if err != nil {
		return nil, err
	}
	alias := ref.Tag
	if alias == "" || !pol.Protects(alias) {
		return nil, fmt.Errorf("%w: --policy %s protects no alias named %q (it names: %s); pull by a protected alias, or leave out --policy and verify with --key", errdef.ErrInvalidInput, policyPath, alias, strings.Join(pol.AliasNames(), ", "))
	}
	repo, err := c.oci.Repository(ref)
	if err != nil {
		return nil, err
	}
	ev, err := c.gatherEvidence(ctx, repo, ref, mv, pol, alias)
	if err != nil {
		return nil, err
	}
	dec, err := pol.Evaluate(alias, ev)
	if err != nil {
		return nil, err
	}
	rule, err := c.recordRule(ctx, repo, ref, pol, alias)
	if err != nil {
		return nil, err
	}
	dec.Rules = append(dec.Rules, rule)
	dec.Allowed = dec.Allowed && rule.Passed
	if !dec.Allowed {
		var parts []string
		for _, f := range dec.Failures() {
			parts = append(parts, f.Rule+": "+f.Reason)
		}
		return &dec, fmt.Errorf("%w: %s: alias %q is not trusted for %s: %s", errdef.ErrDenied, ref.Name(), alias, ref.Digest, strings.Join(parts, "; "))
	}
	return &dec, nil
}

// recordRule checks that the newest promotion record of alias, verified by
// the alias's promoter keys, names ref.Digest.
func (c *Client) recordRule(ctx context.Context, repo *remote.Repository, ref oci.Reference, pol *policy.Policy, alias string) (policy.RuleResult, error) {
	rule := policy.RuleResult{Rule: "promotionRecord"}
	promoters := promoterKeys(pol, alias)
	if len(promoters) == 0 {
		rule.Reason = fmt.Sprintf("the policy names no promoter keys for %q, so no promotion record can be trusted", alias)
		return rule, nil
	}
	recs, err := c.aliasRecords(ctx, repo, ref, pol, alias)
	if err != nil {
		return rule, err
	}
	newest := newestSequence(recs)
	var match *PromotionRecord
	for i := range newest {
		if newest[i].Digest == ref.Digest.String() {
			match = &newest[i]
		}
	}
	key := ref.Name() + " " + alias
	seen := c.accepted.highest(key)
	switch {
	case len(newest) == 0:
		rule.Reason = fmt.Sprintf("no promotion record for %q signed by %s: the tag was set outside `modelreg promote`", alias, strings.Join(keyPaths(promoters), ", "))
	case match == nil:
		last := newest[0]
		rule.Reason = fmt.Sprintf("the tag points at %s, but the newest promotion record (sequence %d, %s, signed by %s) names %s: the tag was moved outside `modelreg promote` or an older record was replayed", ref.Digest, last.Sequence, last.PromotedAt, last.KeyPath, last.Digest)
	case match.Sequence < seen:
		rule.Reason = fmt.Sprintf("the newest promotion record found has sequence %d, but this machine already accepted sequence %d for %q: a newer record is being hidden", match.Sequence, seen, alias)
	case match.Sequence < pol.PromotionMinSequence(alias):
		rule.Reason = fmt.Sprintf("the newest promotion record found has sequence %d, below the policy's promoters.minSequence of %d for %q: an older record is being replayed behind a hidden newer one (or the policy names a promotion that has not happened yet)", match.Sequence, pol.PromotionMinSequence(alias), alias)
	default:
		maxAge := pol.PromotionMaxAge(alias)
		at, perr := time.Parse(time.RFC3339, match.PromotedAt)
		if maxAge > 0 && (perr != nil || c.now().Sub(at) > maxAge) {
			rule.Reason = fmt.Sprintf("the newest promotion record (sequence %d, %s) is older than the policy's promoters.maxAge of %s: promote the version again to renew it", match.Sequence, match.PromotedAt, maxAge)
			break
		}
		rule.Passed = true
		rule.Reason = fmt.Sprintf("newest promotion record (sequence %d, %s, signed by %s) names this digest", match.Sequence, match.PromotedAt, match.KeyPath)
		c.accepted.accept(key, match.Sequence)
	}
	return rule, nil
}

// gatherEvidence builds the evidence document for the digest ref names:
// manifest and config facts, signatures and attestations verified against
// every key the policy names, approvals (for alias or for any alias), and
// the aliases the digest holds now or held per promotion records signed by
// each alias's promoters.
func (c *Client) gatherEvidence(ctx context.Context, repo *remote.Repository, ref oci.Reference, mv *oci.ModelVersion, pol *policy.Policy, alias string) (Evidence, error) {
	ev := Evidence{
		Repository:   ref.Name(),
		Reference:    ref.String(),
		Digest:       ref.Digest.String(),
		Alias:        alias,
		ArtifactType: mv.Manifest.ArtifactType,
		Annotations:  mv.Manifest.Annotations,
		Config:       mv.Config,
		Files:        []policy.File{},
		Signatures:   []policy.Signature{},
		Attestations: []policy.Attestation{},
		Approvals:    []policy.Approval{},
	}
	if ev.Annotations == nil {
		ev.Annotations = map[string]string{}
	}
	for _, f := range mv.Files {
		ev.Files = append(ev.Files, policy.File{Path: f.Path, Digest: f.Descriptor.Digest.String(), MediaType: f.Descriptor.MediaType, Size: f.Descriptor.Size})
	}
	keys, err := publicKeys(pol.Keys())
	if err != nil {
		return ev, err
	}
	current, err := aliasesAt(ctx, repo, ref.Digest)
	if err != nil {
		return ev, err
	}
	held := map[string]bool{} // from promotion records only: a tag is a claim, not evidence
	if len(keys) > 0 {
		opts := c.signingOptions(ref)
		sigs, err := signing.VerifySignatures(ctx, ref.Name(), ref.Digest, keys, opts)
		if err != nil {
			return ev, fmt.Errorf("verifying signatures of %s: %w", ref, err)
		}
		for _, s := range sigs {
			ev.Signatures = append(ev.Signatures, policy.Signature{KeyID: s.KeyID})
		}
		atts, err := signing.VerifyAttestations(ctx, ref.Name(), ref.Digest, keys, opts)
		if err != nil {
			return ev, fmt.Errorf("verifying attestations of %s: %w", ref, err)
		}
		for _, a := range atts {
			var pred any
			if err := json.Unmarshal(a.Predicate, &pred); err != nil {
				continue
			}
			m, _ := pred.(map[string]any)
			switch a.PredicateType {
			case mediatypes.PredicateApproval:
				if appr, ok := approvalFor(m, ref, alias); ok {
					ev.Approvals = append(ev.Approvals, policy.Approval{KeyID: a.KeyID, Approver: appr})
				}
			case mediatypes.PredicatePromotion:
				recRepo, _ := m["repository"].(string)
				if a2, ok := m["alias"].(string); ok && m["digest"] == ref.Digest.String() && sameRepository(recRepo, ref) && isPromoter(pol, a2, a.KeyID) {
					held[a2] = true
				}
			}
			ev.Attestations = append(ev.Attestations, policy.Attestation{KeyID: a.KeyID, PredicateType: a.PredicateType, Predicate: pred})
		}
	}
	ev.Aliases = policy.AliasState{Current: current, Held: sortedKeys(held)}
	return ev, nil
}

// approvalFor returns the approver of an approval predicate that names
// ref's digest and repository, and either no alias or alias. Approvals
// copied from another repository where the digest was approved do not
// count here.
func approvalFor(m map[string]any, ref oci.Reference, alias string) (string, bool) {
	if m == nil || m["digest"] != ref.Digest.String() {
		return "", false
	}
	if repo, _ := m["repository"].(string); !sameRepository(repo, ref) {
		return "", false
	}
	if a, _ := m["alias"].(string); a != "" && a != alias {
		return "", false
	}
	approver, _ := m["approver"].(string)
	return approver, true
}

func isPromoter(pol *policy.Policy, alias, keyID string) bool {
	for _, k := range promoterKeys(pol, alias) {
		if k.ID == keyID {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// aliasesAt returns the aliases of repo that point at d now.
func aliasesAt(ctx context.Context, repo *remote.Repository, d digest.Digest) ([]string, error) {
	tags, err := oci.ListTags(ctx, repo)
	if err != nil {
		return nil, err
	}
	m, err := tagMap(ctx, repo, oci.AliasTags(tags))
	if err != nil {
		return nil, err
	}
	out := []string{}
	for a, ad := range m {
		if ad == d {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out, nil
}
