package modelreg

import (
	"context"
	"fmt"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/signing"
)

// SignResult says what Sign signed.
type SignResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	KeyID     string `json:"keyId"`
}

// Sign signs the manifest digest that refStr names (a tag is resolved once)
// with the cosign private key at keyPath, decrypted with password, and
// stores the signature as cosign v3 does by default (a Sigstore bundle in
// an OCI 1.1 referrer of the digest; cosign v2's sha256-<hex>.sig tag with
// Options.LegacyTags), offline: no transparency log.
func (c *Client) Sign(ctx context.Context, refStr, keyPath string, password []byte) (*SignResult, error) {
	key, err := signing.LoadPrivateKey(keyPath, password)
	if err != nil {
		return nil, err
	}
	ref, pinned, _, err := c.resolve(ctx, refStr)
	if err != nil {
		return nil, err
	}
	if err := signing.Sign(ctx, ref.Name(), pinned.Digest, key, nil, c.signingOptions(ref)); err != nil {
		return nil, fmt.Errorf("signing %s: %w", pinned, err)
	}
	return &SignResult{Reference: pinned.String(), Digest: pinned.Digest.String(), KeyID: key.ID}, nil
}

// VerifyResult says which keys signed a digest.
type VerifyResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// Signers are the paths of the keys with a valid signature.
	Signers []string `json:"signers"`
	// KeyIDs are their key IDs ("sha256:<hex of the public key>").
	KeyIDs []string `json:"keyIds"`
	// Referrers lists every signature and attestation of the digest,
	// each with whether one of the keys verified it (Verify fills it,
	// also when it denies).
	Referrers []TrustReferrer `json:"referrers,omitempty"`
}

// Verify checks that the digest refStr names (a tag is resolved once)
// carries a valid cosign signature, bound to that digest, by at least one
// of the public keys at keyPaths. Otherwise the error wraps
// errdef.ErrDenied.
func (c *Client) Verify(ctx context.Context, refStr string, keyPaths []string) (*VerifyResult, error) {
	_, pinned, _, err := c.resolve(ctx, refStr)
	if err != nil {
		return nil, err
	}
	res, err := c.verifyDigest(ctx, pinned, keyPaths)
	if res != nil {
		keys, kerr := loadPublicKeys(keyPaths)
		if kerr != nil {
			return res, kerr
		}
		refs, lerr := signing.ListReferrers(ctx, pinned.Name(), pinned.Digest, keys, c.signingOptions(pinned))
		if lerr != nil && err == nil {
			return res, fmt.Errorf("listing the referrers of %s: %w", pinned, lerr)
		}
		res.Referrers = refs
	}
	return res, err
}

func (c *Client) verifyDigest(ctx context.Context, ref oci.Reference, keyPaths []string) (*VerifyResult, error) {
	if len(keyPaths) == 0 {
		return nil, fmt.Errorf("%w: verify needs at least one --key", errdef.ErrInvalidInput)
	}
	var keys []signing.PublicKey
	for _, p := range keyPaths {
		k, err := signing.LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sigs, err := signing.VerifySignatures(ctx, ref.Name(), ref.Digest, keys, c.signingOptions(ref))
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", ref, err)
	}
	res := &VerifyResult{Reference: ref.String(), Digest: ref.Digest.String(), Signers: []string{}, KeyIDs: []string{}}
	for _, s := range sigs {
		res.Signers = append(res.Signers, s.KeyPath)
		res.KeyIDs = append(res.KeyIDs, s.KeyID)
	}
	if len(sigs) == 0 {
		return res, fmt.Errorf("%w: %s has no valid signature by %s (a signature must be made for this exact digest)", errdef.ErrDenied, ref, joinKeys(keyPaths))
	}
	return res, nil
}

func joinKeys(paths []string) string {
	if len(paths) == 1 {
		return paths[0]
	}
	return fmt.Sprintf("any of %v", paths)
}

// Keygen writes a cosign key pair PREFIX.key and PREFIX.pub, the private
// key encrypted with password. It refuses to overwrite either file.
func Keygen(prefix string, password []byte) (keyPath, pubPath string, err error) {
	if prefix == "" {
		prefix = "cosign"
	}
	return signing.WriteKeyPair(prefix, password)
}
