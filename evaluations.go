package modelreg

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modelreg/modelreg/mediatypes"
	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/signing"
)

// Evaluation is one verified evaluation attestation of a version
// (predicate type mediatypes.PredicateEvaluation).
type Evaluation struct {
	EvaluationPredicate
	// KeyID is "sha256:<hex>" of the trusted key that signed it.
	KeyID string `json:"keyId"`
}

// Evaluations returns the evaluations of the version refStr names that one
// of opts.Keys verifies, bound to its digest, in the order
// signing.VerifyAttestations finds them (bundle referrers, then the cosign
// v2 .att tag). With no keys nothing verifies and the answer is empty: an
// unverified metric is not shown as one. Errors are for bad references,
// key files and registry failures.
func (c *Client) Evaluations(ctx context.Context, refStr string, opts InspectOptions) ([]Evaluation, error) {
	out := []Evaluation{}
	_, atts, err := c.trustedAttestations(ctx, refStr, opts, mediatypes.PredicateEvaluation, "evaluations")
	for _, a := range atts {
		var e Evaluation
		if err := json.Unmarshal(a.Predicate, &e.EvaluationPredicate); err != nil {
			continue // signed, but not an evaluation this version understands
		}
		e.KeyID = a.KeyID
		out = append(out, e)
	}
	return out, err
}

// trustedAttestations resolves refStr once and returns the pinned
// reference and those attestations of its digest of predicate type
// predicateType that one of opts.Keys verifies (bundle referrers, then the
// cosign v2 .att tag, as signing.VerifyAttestations finds them). With no
// keys nothing verifies: the answer is empty and no registry is asked.
// what names the attestations in errors ("reading the WHAT of REF: …");
// errors are for bad references, key files and registry failures.
func (c *Client) trustedAttestations(ctx context.Context, refStr string, opts InspectOptions, predicateType, what string) (oci.Reference, []signing.VerifiedAttestation, error) {
	if len(opts.Keys) == 0 {
		return oci.Reference{}, nil, nil
	}
	keys, err := loadPublicKeys(opts.Keys)
	if err != nil {
		return oci.Reference{}, nil, err
	}
	_, pinned, _, err := c.resolve(ctx, refStr)
	if err != nil {
		return pinned, nil, err
	}
	atts, err := signing.VerifyAttestations(ctx, pinned.Name(), pinned.Digest, keys, c.signingOptionsWith(pinned, pinned.Digest, opts.Tags))
	if err != nil {
		return pinned, nil, fmt.Errorf("reading the %s of %s: %w", what, pinned, err)
	}
	var out []signing.VerifiedAttestation
	for _, a := range atts {
		if a.PredicateType == predicateType {
			out = append(out, a)
		}
	}
	return pinned, out, nil
}
