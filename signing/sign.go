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
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/modelreg/modelreg/errdef"
)

// Sign signs the manifest digest dgst of repository repo
// ("host[:port]/path", no tag or digest) with key and stores the signature
// as cosign v2 does with `cosign sign --key K --tlog-upload=false`: a
// simplesigning payload (critical.identity.docker-reference = repo,
// critical.image.docker-manifest-digest = dgst, optional = annotations,
// omitted when empty) signed with the key (ECDSA over SHA-256), one layer of
// media type application/vnd.dev.cosign.simplesigning.v1+json with the
// base64 signature in annotation dev.cosignproject.cosign/signature, in the
// image tagged sha256-<hex>.sig in repo. An existing tag gets the layer
// appended (read-modify-write, so concurrent signers can lose a layer); an
// identical signature by the same key is not added twice. Nothing is sent
// to Rekor, Fulcio or a TSA. Bad repo, digest or key wrap
// errdef.ErrInvalidInput; registry failures are returned wrapped.
func Sign(ctx context.Context, repo string, dgst digest.Digest, key *PrivateKey, annotations map[string]string, opts RegistryOptions) error {
	if key == nil || key.Signer == nil {
		return fmt.Errorf("%w: no signing key", errdef.ErrInvalidInput)
	}
	t, err := newTarget(repo, dgst, opts)
	if err != nil {
		return err
	}
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
	sig, err := static.NewSignature(p, base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return fmt.Errorf("signature layer: %w", err)
	}
	ropts := opts.ociOptions(ctx)
	se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(t.ref, ropts...), sig,
		mutate.WithDupeDetector(cremote.NewDupeDetector(key.Signer)))
	if err != nil {
		return fmt.Errorf("attaching signature to %s: %w", t.ref, err)
	}
	if err := ociremote.WriteSignatures(t.ref.Repository, se, ropts...); err != nil {
		return fmt.Errorf("writing signature of %s: %w", t.ref, err)
	}
	return nil
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

// VerifySignatures checks the cosign signatures in tag sha256-<hex>.sig of
// repo against each of keys and returns one entry per distinct key (by
// KeyID, in the order of keys) that has at least one valid signature whose
// payload names dgst (cosign.SimpleClaimVerifier: the claim is bound to the
// digest, so a signature copied from another digest does not count). Keys
// without a valid signature are absent. It works offline like `cosign
// verify --key K --insecure-ignore-tlog=true`: no Rekor, CT log or TUF.
// Zero signatures, or none valid, give an empty slice and nil error; errors
// are for bad input (errdef.ErrInvalidInput) and registry or transport
// failures.
func VerifySignatures(ctx context.Context, repo string, dgst digest.Digest, keys []PublicKey, opts RegistryOptions) ([]VerifiedSignature, error) {
	t, keys, layers, err := fetchForVerify(ctx, repo, dgst, keys, opts, ociremote.SignatureTag, "signature")
	if err != nil {
		return nil, err
	}
	out := []VerifiedSignature{}
	for _, k := range keys {
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
