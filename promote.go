package modelreg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

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

// Evidence is the document a policy is evaluated over.
type Evidence = policy.Evidence

// PromoteOptions configure Promote.
type PromoteOptions struct {
	// Policy is the promotion policy file (required).
	Policy string
}

// PromoteResult says what Promote decided and did.
type PromoteResult struct {
	Alias     string `json:"alias"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// Previous is the digest the alias pointed at before, "" if none.
	Previous string   `json:"previous"`
	Moved    bool     `json:"moved"`
	Decision Decision `json:"decision"`
}

// Promote moves alias to the version refStr names, only if the policy's
// rules for alias pass on that digest. A refusal returns the result (with
// every rule's outcome) and an error wrapping errdef.ErrDenied that lists
// every failing rule; nothing changes in the registry.
func (c *Client) Promote(ctx context.Context, refStr, alias string, opts PromoteOptions) (*PromoteResult, error) {
	if err := oci.ValidateAlias(alias); err != nil {
		return nil, err
	}
	if opts.Policy == "" {
		return nil, fmt.Errorf("%w: promote needs --policy FILE", errdef.ErrInvalidInput)
	}
	pol, err := policy.Load(opts.Policy)
	if err != nil {
		return nil, err
	}
	if !pol.Protects(alias) {
		return nil, fmt.Errorf("%w: policy %s has no rules for alias %q (it names: %s); add a section for it", errdef.ErrInvalidInput, opts.Policy, alias, strings.Join(pol.AliasNames(), ", "))
	}
	ref, repo, err := c.open(refStr)
	if err != nil {
		return nil, err
	}
	desc, err := oci.Resolve(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	pinned := ref.WithDigest(desc.Digest)
	mv, err := oci.FetchModel(ctx, repo, ref, desc.Digest)
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
	res := &PromoteResult{Alias: alias, Reference: pinned.String(), Digest: desc.Digest.String(), Decision: dec}
	if prev, err := repo.Resolve(ctx, alias); err == nil {
		res.Previous = prev.Digest.String()
	} else if !errors.Is(err, orasErrdef.ErrNotFound) {
		return nil, err
	}
	if err := dec.Error(); err != nil {
		return res, err
	}
	if err := oci.PutTag(ctx, repo, mv.Descriptor, mv.Raw, alias); err != nil {
		return res, err
	}
	res.Moved = true
	return res, nil
}

// CheckPolicy evaluates the policy's rules for alias on the version refStr
// names without changing anything, and returns the evidence and decision.
func (c *Client) CheckPolicy(ctx context.Context, refStr, alias, policyPath string) (*Evidence, Decision, error) {
	pol, err := policy.Load(policyPath)
	if err != nil {
		return nil, Decision{}, err
	}
	ref, repo, err := c.open(refStr)
	if err != nil {
		return nil, Decision{}, err
	}
	if alias == "" {
		alias = ref.Tag
	}
	desc, err := oci.Resolve(ctx, repo, ref)
	if err != nil {
		return nil, Decision{}, err
	}
	pinned := ref.WithDigest(desc.Digest)
	mv, err := oci.FetchModel(ctx, repo, ref, desc.Digest)
	if err != nil {
		return nil, Decision{}, err
	}
	ev, err := c.gatherEvidence(ctx, repo, pinned, mv, pol, alias)
	if err != nil {
		return nil, Decision{}, err
	}
	dec, err := pol.Evaluate(alias, ev)
	return &ev, dec, err
}

// checkProtectedAlias is the deploy-time gate of Pull --policy: ref.Tag
// must be an alias the policy protects, and its rules must pass on
// ref.Digest.
func (c *Client) checkProtectedAlias(ctx context.Context, ref oci.Reference, mv *oci.ModelVersion, policyPath string) (*Decision, error) {
	pol, err := policy.Load(policyPath)
	if err != nil {
		return nil, err
	}
	if ref.Tag == "" || !pol.Protects(ref.Tag) {
		return nil, fmt.Errorf("%w: --policy %s protects no alias named %q (it names: %s); pull by a protected alias, or leave out --policy and verify with --key", errdef.ErrInvalidInput, policyPath, ref.Tag, strings.Join(pol.AliasNames(), ", "))
	}
	repo, err := c.oci.Repository(ref)
	if err != nil {
		return nil, err
	}
	ev, err := c.gatherEvidence(ctx, repo, ref, mv, pol, ref.Tag)
	if err != nil {
		return nil, err
	}
	dec, err := pol.Evaluate(ref.Tag, ev)
	if err != nil {
		return nil, err
	}
	if err := dec.Error(); err != nil {
		return &dec, fmt.Errorf("%s: %w", ref, err)
	}
	return &dec, nil
}

// gatherEvidence builds the evidence document for the digest ref names:
// manifest and config facts, signatures and attestations verified against
// every key the policy names, and the aliases that point at the digest.
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
	var keys []signing.PublicKey
	for _, k := range pol.Keys() {
		pk, err := signing.ParsePublicKey(k.PEM, k.Path)
		if err != nil {
			return ev, err
		}
		keys = append(keys, pk)
	}
	opts := c.signingOptions(ref)
	if len(keys) > 0 {
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
			if a.PredicateType == mediatypes.PredicateApproval {
				approver := ""
				if m, ok := pred.(map[string]any); ok {
					approver, _ = m["approver"].(string)
				}
				ev.Approvals = append(ev.Approvals, policy.Approval{KeyID: a.KeyID, Approver: approver})
			}
			ev.Attestations = append(ev.Attestations, policy.Attestation{KeyID: a.KeyID, PredicateType: a.PredicateType, Predicate: pred})
		}
	}
	current, err := aliasesAt(ctx, repo, ref.Digest)
	if err != nil {
		return ev, err
	}
	ev.Aliases = policy.AliasState{Current: current, Held: current}
	return ev, nil
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
