package modelreg

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

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
	// Tags, if not nil, is a listing of the repository the caller has
	// just read (Snapshot): a digest it shows without cosign's .sig or
	// .att tag is not looked up there (two requests each saved). Nil:
	// look both up.
	Tags *TagSnapshot
}

// signingOptionsWith is signingOptions for reading the referrers of d,
// with the legacy tag lookups the snapshot shows useless turned off.
func (c *Client) signingOptionsWith(ref oci.Reference, d digest.Digest, snap *TagSnapshot) signing.RegistryOptions {
	o := c.signingOptions(ref)
	if snap != nil && snap.Repository == ref.Name() {
		sig, att, index := snap.tagsOf(d)
		o.NoLegacySig, o.NoLegacyAtt, o.NoReferrersTag = !sig, !att, !index
	}
	return o
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
	refs, err := signing.ListReferrers(ctx, pinned.Name(), pinned.Digest, keys, c.signingOptionsWith(pinned, pinned.Digest, opts.Tags))
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
