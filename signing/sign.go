package signing

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	cremote "github.com/sigstore/cosign/v2/pkg/cosign/remote"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/modelreg/modelreg/errdef"
)

// Sign signs the manifest digest dgst of repository repo
// ("host[:port]/path", no tag or digest) with key. With opts.Format
// FormatBundle (the default) it stores the signature as cosign v3.1.3
// does with `cosign sign --key K` and a signing config without a
// transparency log: an in-toto Statement v1 (subject {digest: {sha256:
// <hex>}, annotations}, predicateType PredicateCosignSign, empty
// predicate) in a DSSE envelope, in a Sigstore bundle v0.3 pushed as its
// own referrer manifest of dgst (see pushBundle); each signature is its
// own manifest, so concurrent signers lose nothing. With FormatLegacy or
// FormatBoth it (also) appends to the cosign v2 tag: see signLegacy.
// Nothing is sent to Rekor, Fulcio or a TSA. Bad repo, digest or key wrap
// errdef.ErrInvalidInput; registry failures are returned wrapped.
func Sign(ctx context.Context, repo string, dgst digest.Digest, key *PrivateKey, annotations map[string]string, opts RegistryOptions) error {
	if key == nil || key.Signer == nil {
		return fmt.Errorf("%w: no signing key", errdef.ErrInvalidInput)
	}
	t, err := newTarget(repo, dgst, opts)
	if err != nil {
		return err
	}
	if opts.Format.bundle() {
		st, err := signatureStatement(dgst, annotations)
		if err != nil {
			return fmt.Errorf("signature statement: %w", err)
		}
		b, err := newBundle(ctx, key, st)
		if err != nil {
			return err
		}
		if _, err := pushBundle(ctx, opts, t.ref.Repository.Name(), dgst, b, PredicateCosignSign, nil); err != nil {
			return fmt.Errorf("writing signature of %s: %w", t.ref, err)
		}
	}
	if opts.Format.legacy() {
		return signLegacy(ctx, t, key, annotations, opts)
	}
	return nil
}

// signLegacy stores the signature as cosign v2 does with `cosign sign
// --key K --tlog-upload=false`: a simplesigning payload
// (critical.identity.docker-reference = repo,
// critical.image.docker-manifest-digest = dgst, optional = annotations,
// omitted when empty) signed with the key (ECDSA over SHA-256), one layer of
// media type application/vnd.dev.cosign.simplesigning.v1+json with the
// base64 signature in annotation dev.cosignproject.cosign/signature, in the
// image tagged sha256-<hex>.sig in repo. An existing tag gets the layer
// appended (read-modify-write, made safe against concurrent signers by
// reading back and retrying, see writeLegacyChecked); an identical
// signature by the same key is not added twice.
func signLegacy(ctx context.Context, t target, key *PrivateKey, annotations map[string]string, opts RegistryOptions) error {
	var optional map[string]any
	if len(annotations) > 0 {
		optional = make(map[string]any, len(annotations))
		for k, v := range annotations {
			optional[k] = v
		}
	}
	p, err := payload.Cosign{Image: t.ref, Annotations: optional}.MarshalJSON()
	if err != nil {
		return fmt.Errorf("signature payload: %w", err)
	}
	raw, err := key.Signer.SignMessage(bytes.NewReader(p), options.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("signing with %s: %w", key.Path, err)
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	sig, err := static.NewSignature(p, b64)
	if err != nil {
		return fmt.Errorf("signature layer: %w", err)
	}
	ropts := opts.ociOptions(ctx)
	return writeLegacyChecked(ctx, t, ociremote.SignatureTag, func() error {
		se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(t.ref, ropts...), sig,
			mutate.WithDupeDetector(cremote.NewDupeDetector(key.Signer)))
		if err != nil {
			return fmt.Errorf("attaching signature to %s: %w", t.ref, err)
		}
		if err := ociremote.WriteSignatures(t.ref.Repository, se, ropts...); err != nil {
			return fmt.Errorf("writing signature of %s: %w", t.ref, err)
		}
		return nil
	}, func(l oci.Signature) bool {
		// Ours, or the equal one the dupe detector kept instead (ECDSA
		// signatures differ each time): same payload, same key.
		lp, err := l.Payload()
		if err != nil || !bytes.Equal(lp, p) {
			return false
		}
		s, err := l.Base64Signature()
		if err != nil {
			return false
		}
		rawSig, err := base64.StdEncoding.DecodeString(s)
		return err == nil && key.Signer.VerifySignature(bytes.NewReader(rawSig), bytes.NewReader(lp)) == nil
	}, opts)
}

// VerifiedSignature is one trusted key that validly signed a digest.
type VerifiedSignature struct {
	// KeyID is the key's KeyID ("sha256:<hex>").
	KeyID string
	// KeyPath is the PublicKey.Path the key was given with.
	KeyPath string
	// Annotations is the "optional" section of the signed payload (values
	// as decoded from JSON, strings for signatures made by Sign), from the
	// first valid signature of that key; empty, never nil, if none.
	Annotations map[string]any
}

// VerifySignatures checks the signatures of dgst in repo against each of
// keys and returns one entry per distinct key (by KeyID, in the order of
// keys) that has at least one valid signature bound to dgst, in either
// format: a Sigstore bundle referrer (cosign v3: predicateType
// PredicateCosignSign, its statement's subject names dgst; the referrer
// manifest's subject is dgst) or a layer of the cosign v2 tag
// sha256-<hex>.sig (cosign.SimpleClaimVerifier: the payload names dgst).
// A signature copied from another digest does not count. It works
// offline like `cosign verify --key K --insecure-ignore-tlog=true`: no
// Rekor, CT log or TUF. Zero signatures, or none valid, give an empty
// slice and nil error; errors are for bad input (errdef.ErrInvalidInput)
// and registry or transport failures.
func VerifySignatures(ctx context.Context, repo string, dgst digest.Digest, keys []PublicKey, opts RegistryOptions) ([]VerifiedSignature, error) {
	t, keys, layers, err := fetchForVerify(ctx, repo, dgst, keys, opts, ociremote.SignatureTag, "signature")
	if err != nil {
		return nil, err
	}
	refs, err := bundleReferrers(ctx, opts, t.ref.Repository.Name(), dgst)
	if err != nil {
		return nil, err
	}
	found := map[string]VerifiedSignature{}
	for _, r := range refs {
		bc, err := verifyBundle(r.Bundle, dgst, keys)
		if err != nil || bc.Statement.PredicateType != PredicateCosignSign {
			continue
		}
		if _, ok := found[bc.KeyID]; ok {
			continue
		}
		ann := map[string]any{}
		for _, s := range bc.Statement.Subject {
			for k, v := range s.Annotations {
				ann[k] = v
			}
		}
		found[bc.KeyID] = VerifiedSignature{KeyID: bc.KeyID, KeyPath: bc.KeyPath, Annotations: ann}
	}
	out := []VerifiedSignature{}
	for _, k := range keys {
		if v, ok := found[k.ID]; ok {
			out = append(out, v)
			continue
		}
		co := checkOpts(k, cosign.SimpleClaimVerifier)
		for _, l := range layers {
			if _, err := cosign.VerifyImageSignature(ctx, l, t.hash, co); err != nil {
				continue
			}
			ann := map[string]any{}
			var sci payload.SimpleContainerImage
			if p, err := l.Payload(); err == nil && json.Unmarshal(p, &sci) == nil {
				for k, v := range sci.Optional {
					ann[k] = v
				}
			}
			out = append(out, VerifiedSignature{KeyID: k.ID, KeyPath: k.Path, Annotations: ann})
			break
		}
	}
	return out, nil
}
