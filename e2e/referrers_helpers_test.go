package e2e

import (
	"bytes"
	"encoding/json"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// referrersOf lists the referrers of digest d in rc (the referrers API,
// or the tag schema where there is none).
func referrersOf(t testing.TB, rc *remote.Repository, d string) []ocispec.Descriptor {
	t.Helper()
	desc, err := rc.Resolve(opCtx(t), d)
	if err != nil {
		t.Fatalf("resolve %s: %v", d, err)
	}
	var out []ocispec.Descriptor
	if err := rc.Referrers(opCtx(t), desc, "", func(rs []ocispec.Descriptor) error {
		out = append(out, rs...)
		return nil
	}); err != nil {
		t.Fatalf("referrers of %s: %v", d, err)
	}
	return out
}

// copyReferrers pushes every referrer of digest from (in srcRepo) as a
// referrer of digest to in p's repository, blobs included: the same
// manifest when from == to (a copy between repositories), else the same
// config, layers and annotations with the subject rewritten to to — what
// an attacker with push rights can do.
func (p *promo) copyReferrers(srcRepo, from, to string) {
	p.t.Helper()
	copyReferrers(p.t, repoClient(p.t, p.r, srcRepo), p.client(), from, to)
}

// copyReferrers pushes every referrer of digest from in src as a referrer
// of digest to in dst (see promo.copyReferrers).
func copyReferrers(t testing.TB, src, dst *remote.Repository, from, to string) {
	t.Helper()
	ctx := opCtx(t)
	toDesc, err := dst.Resolve(ctx, to)
	if err != nil {
		t.Fatalf("resolve %s: %v", to, err)
	}
	for _, d := range referrersOf(t, src, from) {
		raw, err := content.FetchAll(ctx, src, d)
		if err != nil {
			t.Fatalf("fetch referrer %s: %v", d.Digest, err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("referrer %s: %v", d.Digest, err)
		}
		for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			data, err := content.FetchAll(ctx, src, b)
			if err != nil {
				t.Fatalf("fetch blob %s: %v", b.Digest, err)
			}
			if ok, _ := dst.Exists(ctx, b); !ok {
				if err := dst.Push(ctx, b, bytes.NewReader(data)); err != nil {
					t.Fatalf("push blob %s: %v", b.Digest, err)
				}
			}
		}
		if from != to {
			m.Subject = &ocispec.Descriptor{MediaType: toDesc.MediaType, Digest: toDesc.Digest, Size: toDesc.Size}
			if raw, err = json.Marshal(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := dst.Push(ctx, content.NewDescriptorFromBytes(m.MediaType, raw), bytes.NewReader(raw)); err != nil {
			t.Fatalf("push referrer: %v", err)
		}
	}
}

// hideReferrers deletes the promotion records of digest d in p's
// repository stored as bundle referrers, as an attacker with delete rights
// can.
func (p *promo) hideReferrers(d string) {
	p.t.Helper()
	dst := p.client()
	for _, r := range referrersOf(p.t, dst, d) {
		raw, err := content.FetchAll(opCtx(p.t), dst, r)
		if err != nil {
			p.t.Fatalf("fetch referrer %s: %v", r.Digest, err)
		}
		var m ocispec.Manifest
		if json.Unmarshal(raw, &m) != nil || m.Annotations[bundlePredicateAnn] != promotionType {
			continue
		}
		if err := dst.Delete(opCtx(p.t), r); err != nil {
			p.t.Fatalf("delete referrer %s of %s: %v", r.Digest, d, err)
		}
	}
}
