package signing

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"

	"github.com/modelreg/modelreg/mediatypes"
)

// Formats of TrustReferrer.Format.
const (
	FormatNameBundle = "bundle" // Sigstore bundle in an OCI 1.1 referrer (cosign v3)
	FormatNameLegacy = "legacy" // a layer of cosign v2's .sig or .att tag
)

// TrustReferrer is one signature or attestation stored for a digest, for
// display: what it is, how it is stored, who signed it and whether a
// trusted key verified it.
type TrustReferrer struct {
	// Kind is "signature", "evaluation", "approval", "promotion" (a
	// promotion record) or "attestation" (any other predicate type).
	Kind string `json:"kind"`
	// Format is FormatNameBundle or FormatNameLegacy.
	Format string `json:"format"`
	// PredicateType is the statement's predicate type; "" for legacy
	// signatures (simplesigning payloads have none).
	PredicateType string `json:"predicateType,omitempty"`
	// KeyID is "sha256:<hex>" of the key that verified it, else the key
	// the bundle's hint names (unverified), else "".
	KeyID string `json:"keyId,omitempty"`
	// KeyPath is the trusted key's path when Verified.
	KeyPath string `json:"keyPath,omitempty"`
	// Created is the referrer's org.opencontainers.image.created (RFC
	// 3339); "" for legacy layers, which carry no time.
	Created string `json:"created,omitempty"`
	// Digest is the referrer manifest's digest (bundles only).
	Digest string `json:"digest,omitempty"`
	// Verified is true when one of the keys given verified it, bound to
	// the digest. With no keys nothing is verified.
	Verified bool `json:"verified"`
}

// kindOf names a predicate type for people.
func kindOf(predicateType string) string {
	switch predicateType {
	case PredicateCosignSign, "":
		return "signature"
	case mediatypes.PredicateEvaluation:
		return "evaluation"
	case mediatypes.PredicateApproval:
		return "approval"
	case mediatypes.PredicatePromotion:
		return "promotion"
	}
	return "attestation"
}

// ListReferrers lists every signature and attestation of dgst in repo, in
// both formats: first the bundle referrers (in the registry's order),
// then the layers of the cosign v2 .sig and .att tags. Each is checked
// against keys (none: nothing verified) exactly as VerifySignatures and
// VerifyAttestations check them. Errors are for bad input
// (errdef.ErrInvalidInput) and registry or transport failures.
func ListReferrers(ctx context.Context, repo string, dgst digest.Digest, keys []PublicKey, opts RegistryOptions) ([]TrustReferrer, error) {
	t, err := newTarget(repo, dgst, opts)
	if err != nil {
		return nil, err
	}
	if keys, err = uniqueKeys(keys); err != nil {
		return nil, err
	}
	refs, err := bundleReferrers(ctx, opts, t.ref.Repository.Name(), dgst)
	if err != nil {
		return nil, err
	}
	out := []TrustReferrer{}
	for _, r := range refs {
		st, hintID, _ := peekBundle(r.Bundle)
		e := TrustReferrer{Format: FormatNameBundle, PredicateType: st.PredicateType, KeyID: hintID,
			Created: r.Annotations[AnnotationCreated], Digest: r.Desc.Digest.String()}
		if e.PredicateType == "" {
			e.PredicateType = r.Annotations[AnnotationBundlePredicateType]
		}
		if bc, err := verifyBundle(r.Bundle, dgst, keys); err == nil && len(keys) > 0 {
			e.Verified, e.KeyID, e.KeyPath, e.PredicateType = true, bc.KeyID, bc.KeyPath, bc.Statement.PredicateType
		}
		e.Kind = kindOf(e.PredicateType)
		out = append(out, e)
	}
	ropts := opts.ociOptions(ctx)
	for _, legacy := range []struct {
		tagOf func(name.Reference, ...ociremote.Option) (name.Tag, error)
		sig   bool
	}{{ociremote.SignatureTag, true}, {ociremote.AttestationTag, false}} {
		if opts.skipLegacy(legacy.sig) {
			continue
		}
		tag, err := legacy.tagOf(t.ref, ropts...)
		if err != nil {
			return nil, err
		}
		layers, err := fetchLayers(tag, ropts)
		if err != nil {
			return nil, err
		}
		for _, l := range layers {
			e := TrustReferrer{Format: FormatNameLegacy}
			if !legacy.sig {
				_, st, err := decodeAttestation(l)
				if err != nil {
					continue
				}
				e.PredicateType = st.PredicateType
			}
			for _, k := range keys {
				if legacyVerifies(ctx, l, t, k, legacy.sig) {
					e.Verified, e.KeyID, e.KeyPath = true, k.ID, k.Path
					break
				}
			}
			e.Kind = kindOf(e.PredicateType)
			out = append(out, e)
		}
	}
	return out, nil
}

// legacyVerifies checks one cosign v2 layer as VerifySignatures and
// VerifyAttestations do.
func legacyVerifies(ctx context.Context, l oci.Signature, t target, k PublicKey, sig bool) bool {
	if sig {
		_, err := cosign.VerifyImageSignature(ctx, l, t.hash, checkOpts(k, cosign.SimpleClaimVerifier))
		return err == nil
	}
	_, err := cosign.VerifyBlobAttestation(ctx, l, t.hash, checkOpts(k, cosign.IntotoSubjectClaimVerifier))
	return err == nil
}
