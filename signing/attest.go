package signing

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	cremote "github.com/sigstore/cosign/v2/pkg/cosign/remote"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/modelreg/modelreg/errdef"
)

// In-toto Statement types (_type) accepted when reading. Attest writes v1;
// the cosign v2.6.5 CLI writes v0.1.
const (
	StatementTypeV1  = "https://in-toto.io/Statement/v1"
	StatementTypeV01 = "https://in-toto.io/Statement/v0.1"
)

// predicateTypeAnnotation is the layer annotation cosign puts on
// attestation layers (unsigned; the signed value is in the statement).
const predicateTypeAnnotation = "predicateType"

// statement is an in-toto Statement, v0.1 or v1 (same JSON shape).
type statement struct {
	Type          string          `json:"_type"`
	Subject       []subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
	// Annotations are cosign v3's `sign -a` annotations, in a signature
	// statement's subject.
	Annotations map[string]any `json:"annotations,omitempty"`
}

// envelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse).
type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// Attest signs an in-toto Statement v1 about manifest digest dgst of repo.
// The statement has _type https://in-toto.io/Statement/v1, one subject
// {name: repo, digest: {sha256: <hex>}}, predicateType and predicate (a
// JSON object, embedded as is), in a DSSE envelope (payloadType
// application/vnd.in-toto+json) signed by key. With opts.Format
// FormatBundle (the default) it is stored as `cosign attest --key K` of
// cosign v3.1.3 does: a Sigstore bundle v0.3 in its own referrer manifest
// of dgst with annotation dev.sigstore.bundle.predicateType (see
// pushBundle), so concurrent attesters lose nothing. With FormatLegacy or
// FormatBoth it is (also) appended as a layer of media type
// application/vnd.dsse.envelope.v1+json, with annotations predicateType
// and an empty dev.cosignproject.cosign/signature, to the image tagged
// sha256-<hex>.att in repo, as cosign v2 `attest --tlog-upload=false`
// does (read-modify-write, read back and retried). Nothing is sent to
// Rekor or a TSA. predicateType must be an absolute URI (e.g.
// https://modelreg.dev/evaluation/v1); bad input wraps
// errdef.ErrInvalidInput; registry failures are returned wrapped.
func Attest(ctx context.Context, repo string, dgst digest.Digest, key *PrivateKey, predicateType string, predicate []byte, opts RegistryOptions) error {
	if key == nil || key.Signer == nil {
		return fmt.Errorf("%w: no signing key", errdef.ErrInvalidInput)
	}
	if u, err := url.Parse(predicateType); err != nil || !u.IsAbs() {
		return fmt.Errorf("%w: predicate type %q is not an absolute URI", errdef.ErrInvalidInput, predicateType)
	}
	if predicateType == PredicateCosignSign {
		return fmt.Errorf("%w: predicate type %s is cosign's signature; use sign", errdef.ErrInvalidInput, predicateType)
	}
	if p := bytes.TrimSpace(predicate); len(p) == 0 || p[0] != '{' || !json.Valid(p) {
		return fmt.Errorf("%w: predicate is not a JSON object", errdef.ErrInvalidInput)
	}
	t, err := newTarget(repo, dgst, opts)
	if err != nil {
		return err
	}
	st, err := json.Marshal(statement{
		Type:          StatementTypeV1,
		Subject:       []subject{{Name: t.ref.Repository.Name(), Digest: map[string]string{"sha256": t.hash.Hex}}},
		PredicateType: predicateType,
		Predicate:     predicate,
	})
	if err != nil {
		return fmt.Errorf("in-toto statement: %w", err)
	}
	if opts.Format.bundle() {
		b, err := newBundle(ctx, key, st)
		if err != nil {
			return err
		}
		if _, err := pushBundle(ctx, opts, t.ref.Repository.Name(), dgst, b, predicateType, nil); err != nil {
			return fmt.Errorf("writing attestation of %s: %w", t.ref, err)
		}
	}
	if !opts.Format.legacy() {
		return nil
	}
	env, err := dsse.WrapSigner(key.Signer, types.IntotoPayloadType).SignMessage(bytes.NewReader(st), options.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("signing with %s: %w", key.Path, err)
	}
	att, err := static.NewAttestation(env,
		static.WithLayerMediaType(types.DssePayloadType),
		static.WithAnnotations(map[string]string{predicateTypeAnnotation: predicateType}))
	if err != nil {
		return fmt.Errorf("attestation layer: %w", err)
	}
	ropts := opts.ociOptions(ctx)
	return writeLegacyChecked(ctx, t, ociremote.AttestationTag, func() error {
		se, err := mutate.AttachAttestationToEntity(ociremote.SignedUnknown(t.ref, ropts...), att,
			mutate.WithDupeDetector(cremote.NewDupeDetector(key.Signer)))
		if err != nil {
			return fmt.Errorf("attaching attestation to %s: %w", t.ref, err)
		}
		if err := ociremote.WriteAttestations(t.ref.Repository, se, ropts...); err != nil {
			return fmt.Errorf("writing attestation of %s: %w", t.ref, err)
		}
		return nil
	}, func(l oci.Signature) bool {
		// Ours, or the equal one the dupe detector kept instead: an
		// envelope of the same statement that the key verifies.
		_, lst, err := decodeAttestation(l)
		if err != nil || lst.PredicateType != predicateType {
			return false
		}
		lp, _ := l.Payload()
		err = dsse.WrapVerifier(key.Signer).VerifySignature(bytes.NewReader(lp), nil)
		var e envelope
		return err == nil && json.Unmarshal(lp, &e) == nil && payloadEquals(e, st)
	}, opts)
}

// VerifiedAttestation is an attestation whose signature and subject check.
type VerifiedAttestation struct {
	// KeyID and KeyPath identify the trusted key that signed it.
	KeyID, KeyPath string
	// PredicateType is the statement's (signed) predicateType URI.
	PredicateType string
	// Predicate is the statement's predicate JSON, as signed.
	Predicate json.RawMessage
	// Subject is the verified digest, which the statement's subject names.
	Subject digest.Digest
}

// VerifyAttestations returns every attestation of dgst in repo — first the
// Sigstore bundle referrers (cosign v3; any predicate type but
// PredicateCosignSign), then the layers of the cosign v2 tag
// sha256-<hex>.att in layer order — that verifies against one of keys (the first key
// that does is reported) and whose in-toto Statement (v0.1 or v1) lists dgst
// among its subjects (cosign.IntotoSubjectClaimVerifier). Attestations for
// other digests, by unknown keys, with another envelope payloadType or
// statement _type are dropped, not errors; so is a missing tag (empty
// slice, nil error). It works offline like `cosign verify-attestation --key
// K --insecure-ignore-tlog=true`. Callers filter by PredicateType. Errors
// are for bad input (errdef.ErrInvalidInput) and registry or transport
// failures.
func VerifyAttestations(ctx context.Context, repo string, dgst digest.Digest, keys []PublicKey, opts RegistryOptions) ([]VerifiedAttestation, error) {
	t, keys, layers, err := fetchForVerify(ctx, repo, dgst, keys, opts, ociremote.AttestationTag, "attestation")
	if err != nil {
		return nil, err
	}
	refs, err := bundleReferrers(ctx, opts, t.ref.Repository.Name(), dgst)
	if err != nil {
		return nil, err
	}
	out := []VerifiedAttestation{}
	seen := map[string]bool{}
	add := func(a VerifiedAttestation) {
		// The same statement signed by the same key, stored as a bundle
		// and a legacy layer (FormatBoth), is one attestation.
		k := a.KeyID + " " + a.PredicateType + " " + digest.FromBytes(a.Predicate).String()
		if !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	for _, r := range refs {
		bc, err := verifyBundle(r.Bundle, dgst, keys)
		if err != nil || bc.Statement.PredicateType == PredicateCosignSign {
			continue
		}
		add(VerifiedAttestation{KeyID: bc.KeyID, KeyPath: bc.KeyPath, PredicateType: bc.Statement.PredicateType,
			Predicate: bc.Statement.Predicate, Subject: dgst})
	}
	for _, l := range layers {
		_, st, err := decodeAttestation(l)
		if err != nil || (st.Type != StatementTypeV1 && st.Type != StatementTypeV01) {
			continue
		}
		for _, k := range keys {
			// VerifyBlobAttestation is the per-layer check that
			// VerifyImageAttestations runs on each layer: DSSE signature
			// (payloadType must be in-toto), then the claim verifier
			// against the digest.
			co := checkOpts(k, cosign.IntotoSubjectClaimVerifier)
			if _, err := cosign.VerifyBlobAttestation(ctx, l, t.hash, co); err != nil {
				continue
			}
			add(VerifiedAttestation{
				KeyID:         k.ID,
				KeyPath:       k.Path,
				PredicateType: st.PredicateType,
				Predicate:     st.Predicate,
				Subject:       digest.Digest(t.hash.String()),
			})
			break
		}
	}
	return out, nil
}

// UnverifiedAttestation describes one layer of an attestation tag as
// stored, for display and diagnostics. Nothing in it is verified: never
// base a decision on it.
type UnverifiedAttestation struct {
	// StatementType is the statement's _type (e.g. StatementTypeV1).
	StatementType string
	// PredicateType is the statement's predicateType, or the layer's
	// predicateType annotation if the statement could not be decoded.
	PredicateType string
	// Predicate is the statement's predicate JSON.
	Predicate json.RawMessage
	// Subjects are the statement's subject digests ("alg:hex"), sorted.
	Subjects []digest.Digest
	// Signatures is the number of signatures in the DSSE envelope.
	Signatures int
	// Problem says why the layer could not be decoded; empty if it was.
	Problem string
	// Format is "bundle" (a Sigstore bundle referrer) or "legacy" (a
	// layer of the cosign v2 .att tag).
	Format string
	// KeyID is the signer the bundle's key hint names ("sha256:<hex>";
	// "" for legacy layers and other hints). Unverified like the rest.
	KeyID string
	// Created is the referrer's org.opencontainers.image.created
	// annotation, "" for legacy layers.
	Created string
}

// Attestations lists the attestations of dgst in repo WITHOUT verifying
// any signature: one entry per bundle referrer (not the cosign
// signatures), then one per layer of tag sha256-<hex>.att in layer order,
// with the decoded statement's predicate type, predicate, subject digests
// and number of envelope signatures. Layers that do not decode are listed
// with Problem set. A missing tag gives an empty slice and nil error;
// errors are for bad input (errdef.ErrInvalidInput) and registry or
// transport failures.
func Attestations(ctx context.Context, repo string, dgst digest.Digest, opts RegistryOptions) ([]UnverifiedAttestation, error) {
	t, err := newTarget(repo, dgst, opts)
	if err != nil {
		return nil, err
	}
	var layers []oci.Signature
	if !opts.NoLegacyAtt {
		ropts := opts.ociOptions(ctx)
		tag, err := ociremote.AttestationTag(t.ref, ropts...)
		if err != nil {
			return nil, fmt.Errorf("attestation tag of %s: %w", t.ref, err)
		}
		if layers, err = fetchLayers(tag, ropts); err != nil {
			return nil, err
		}
	}
	refs, err := bundleReferrers(ctx, opts, t.ref.Repository.Name(), dgst)
	if err != nil {
		return nil, err
	}
	out := make([]UnverifiedAttestation, 0, len(layers)+len(refs))
	for _, r := range refs {
		st, keyID, err := peekBundle(r.Bundle)
		a := UnverifiedAttestation{Format: "bundle", KeyID: keyID, Created: r.Annotations[AnnotationCreated], Signatures: 1}
		if err != nil {
			a.Problem, a.PredicateType = err.Error(), r.Annotations[AnnotationBundlePredicateType]
			out = append(out, a)
			continue
		}
		if st.PredicateType == PredicateCosignSign {
			continue
		}
		a.StatementType, a.PredicateType, a.Predicate = st.Type, st.PredicateType, st.Predicate
		a.Subjects = statementSubjects(st)
		out = append(out, a)
	}
	for _, l := range layers {
		env, st, err := decodeAttestation(l)
		a := UnverifiedAttestation{Signatures: len(env.Signatures), Format: "legacy"}
		if err != nil {
			a.Problem = err.Error()
			if ann, aerr := l.Annotations(); aerr == nil {
				a.PredicateType = ann[predicateTypeAnnotation]
			}
			out = append(out, a)
			continue
		}
		a.StatementType, a.PredicateType, a.Predicate = st.Type, st.PredicateType, st.Predicate
		a.Subjects = statementSubjects(st)
		out = append(out, a)
	}
	return out, nil
}

// payloadEquals reports whether e's payload is st.
func payloadEquals(e envelope, st []byte) bool {
	b, err := base64.StdEncoding.DecodeString(e.Payload)
	return err == nil && bytes.Equal(b, st)
}

// statementSubjects returns the subject digests of st ("alg:hex"), sorted.
func statementSubjects(st statement) []digest.Digest {
	var ds []digest.Digest
	for _, s := range st.Subject {
		for alg, hex := range s.Digest {
			ds = append(ds, digest.NewDigestFromEncoded(digest.Algorithm(alg), hex))
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

// decodeAttestation decodes a layer's DSSE envelope and the in-toto
// statement inside it, without checking signatures.
func decodeAttestation(l oci.Signature) (envelope, statement, error) {
	var env envelope
	var st statement
	p, err := l.Payload()
	if err != nil {
		return env, st, err
	}
	if err := json.Unmarshal(p, &env); err != nil {
		return env, st, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	if env.PayloadType != types.IntotoPayloadType {
		return env, st, fmt.Errorf("envelope payloadType is %q, want %q", env.PayloadType, types.IntotoPayloadType)
	}
	b, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return env, st, fmt.Errorf("envelope payload is not base64: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return env, st, fmt.Errorf("not an in-toto statement: %w", err)
	}
	return env, st, nil
}
