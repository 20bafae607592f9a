package signing

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// TestBundleReferrers checks the default format: each signature and
// attestation is its own Sigstore bundle referrer of the digest, read back
// by VerifySignatures and VerifyAttestations, and a referrer whose
// manifest names another subject never counts, whatever lists it.
func TestBundleReferrers(t *testing.T) {
	ctx := t.Context()
	host := startRegistry(t)
	repo := host + "/team/sentiment"
	a := pushModel(t, repo, "weights A")
	b := pushModel(t, repo, "weights B")
	k1, p1 := newKey(t, "alice")
	k2, p2 := newKey(t, "bob")
	_, p3 := newKey(t, "mallory")

	if err := Sign(ctx, repo, a, k1, map[string]string{"approver": "alice"}, anon); err != nil {
		t.Fatal(err)
	}
	if err := Sign(ctx, repo, a, k2, nil, anon); err != nil {
		t.Fatal(err)
	}
	if err := Attest(ctx, repo, a, k1, evalType, []byte(`{"metrics":{"accuracy":0.9}}`), anon); err != nil {
		t.Fatal(err)
	}
	// Nothing went to the cosign v2 tags.
	if _, err := orasRepo(t, repo).Resolve(ctx, sigTag(a)); err == nil {
		t.Errorf("%s exists; the default format must not write it", sigTag(a))
	}
	refs, err := bundleReferrers(ctx, anon, repo, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 3 {
		t.Fatalf("%d bundle referrers, want 3", len(refs))
	}
	for _, r := range refs {
		if r.Desc.ArtifactType != BundleMediaType || r.Annotations[AnnotationBundlePredicateType] == "" {
			t.Errorf("referrer %s: artifactType %q, annotations %v", r.Desc.Digest, r.Desc.ArtifactType, r.Annotations)
		}
	}

	got, err := VerifySignatures(ctx, repo, a, []PublicKey{p1, p2, p3}, anon)
	if err != nil {
		t.Fatal(err)
	}
	if ids := keyIDs(got, func(s VerifiedSignature) string { return s.KeyID }); len(ids) != 2 || ids[0] != p1.ID || ids[1] != p2.ID {
		t.Fatalf("signers %v, want alice and bob", ids)
	}
	if got[0].Annotations["approver"] != "alice" {
		t.Errorf("annotations %v", got[0].Annotations)
	}
	atts, err := VerifyAttestations(ctx, repo, a, []PublicKey{p1}, anon)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 || atts[0].PredicateType != evalType || atts[0].KeyID != p1.ID {
		t.Fatalf("attestations %+v", atts)
	}

	// An attacker pushes A's bundles as referrers of B: the statement
	// names A, so they do not count for B.
	for _, r := range refs {
		copyReferrer(ctx, t, repo, r, b)
	}
	if got, _ := VerifySignatures(ctx, repo, b, []PublicKey{p1, p2}, anon); len(got) != 0 {
		t.Errorf("A's signatures count for B: %+v", got)
	}
	if got, _ := VerifyAttestations(ctx, repo, b, []PublicKey{p1}, anon); len(got) != 0 {
		t.Errorf("A's attestations count for B: %+v", got)
	}
}

// copyReferrer pushes r's bundle as a referrer of subject instead.
func copyReferrer(ctx context.Context, t *testing.T, repo string, r referrer, subject digest.Digest) {
	t.Helper()
	if _, err := pushBundle(ctx, anon, repo, subject, r.Bundle, r.Annotations[AnnotationBundlePredicateType], nil); err != nil {
		t.Fatal(err)
	}
}

func listDescs(ctx context.Context, t *testing.T, repo string, d digest.Digest) []ocispec.Descriptor {
	t.Helper()
	var out []ocispec.Descriptor
	if err := orasRepo(t, repo).Referrers(ctx, ocispec.Descriptor{Digest: d}, "", func(rs []ocispec.Descriptor) error {
		out = append(out, rs...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReferrerSubjectMustMatch stores, on a registry without the
// referrers API path being trusted, an index entry under B's tag schema
// that points at a referrer of A: it must not count for B.
func TestReferrerSubjectMustMatch(t *testing.T) {
	ctx := t.Context()
	host := startRegistry(t)
	repo := host + "/m"
	a := pushModel(t, repo, "A")
	b := pushModel(t, repo, "B")
	k, p := newKey(t, "k")
	if err := Sign(ctx, repo, a, k, nil, anon); err != nil {
		t.Fatal(err)
	}
	descs := listDescs(ctx, t, repo, a)
	if len(descs) != 1 {
		t.Fatalf("%d referrers", len(descs))
	}
	// Write B's tag-schema index by hand, listing A's referrer, and make
	// the reader use it (the registry then has no referrers for B).
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
	idx.SchemaVersion = 2
	raw, _ := json.Marshal(idx)
	r := orasRepo(t, repo)
	if err := r.PushReference(ctx, content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, raw), bytes.NewReader(raw), "sha256-"+b.Encoded()); err != nil {
		t.Fatal(err)
	}
	fallback := orasRepo(t, repo)
	if err := fallback.SetReferrersCapability(false); err != nil {
		t.Fatal(err)
	}
	opts := anon
	opts.Repository = fallback
	refs, err := bundleReferrers(ctx, opts, repo, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 0 {
		t.Fatalf("a referrer of A counted for B: %+v", refs)
	}
	if got, _ := VerifySignatures(ctx, repo, b, []PublicKey{p}, opts); len(got) != 0 {
		t.Fatalf("A's signature verified for B: %+v", got)
	}
	// The same index under A's tag is read, and counts.
	if err := r.PushReference(ctx, content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, raw), bytes.NewReader(raw), "sha256-"+a.Encoded()); err != nil {
		t.Fatal(err)
	}
	if got, _ := VerifySignatures(ctx, repo, a, []PublicKey{p}, opts); len(got) != 1 {
		t.Fatalf("A's signature through the tag schema: %+v", got)
	}
}
