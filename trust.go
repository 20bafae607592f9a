package modelreg

import (
	"context"
	"fmt"

	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/signing"
)

// TrustReferrer is one signature or attestation of a digest as Verify
// and InspectWith list it: kind, format (bundle or legacy), key ID, time
// and whether a given key verified it. See signing.TrustReferrer.
type TrustReferrer = signing.TrustReferrer

// InspectOptions add to Inspect.
type InspectOptions struct {
	// Keys are public key files to verify the listed referrers with; with
	// none the referrers are listed unverified.
	Keys []string
}

// InspectWith is Inspect plus the digest's signatures and attestations
// (Inspection.Referrers), in both storage formats, each verified against
// opts.Keys.
func (c *Client) InspectWith(ctx context.Context, refStr string, opts InspectOptions) (*Inspection, error) {
	in, err := c.Inspect(ctx, refStr)
	if err != nil {
		return nil, err
	}
	keys, err := loadPublicKeys(opts.Keys)
	if err != nil {
		return nil, err
	}
	ref, err := oci.ParseReference(in.Reference)
	if err != nil {
		return nil, err
	}
	// The digest Inspect described, even if the tag has moved since.
	_, pinned, _, err := c.resolve(ctx, ref.Name()+"@"+in.Digest)
	if err != nil {
		return nil, err
	}
	refs, err := signing.ListReferrers(ctx, pinned.Name(), pinned.Digest, keys, c.signingOptions(pinned))
	if err != nil {
		return nil, fmt.Errorf("listing the referrers of %s: %w", pinned, err)
	}
	in.Referrers = refs
	return in, nil
}

func loadPublicKeys(paths []string) ([]signing.PublicKey, error) {
	var keys []signing.PublicKey
	for _, p := range paths {
		k, err := signing.LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}
