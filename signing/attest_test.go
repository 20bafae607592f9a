package signing

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

const (
	evalType  = "https://modelreg.dev/evaluation/v1"
	promoType = "https://modelreg.dev/promotion/v1"
)

func jsonEqual(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decoding %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}

func TestAttestVerify(t *testing.T) {
	anon := legacyAnon // the cosign v2 tag format
	ctx := t.Context()
	host := startRegistry(t)
	repo := host + "/team/sentiment"
	a := pushModel(t, repo, "weights A")
	b := pushModel(t, repo, "weights B")
	c := pushModel(t, repo, "weights C")
	k1, p1 := newKey(t, "eval")
	k2, p2 := newKey(t, "release")
	_, p3 := newKey(t, "mallory")

	evalPred := []byte(`{"metrics": {"accuracy": 0.93, "f1": 0.91}, "dataset": "imdb@sha256:00", "notes": ["a", "é"]}`)
	promoPred := []byte(`{"alias":"production","sequence":3}`)
	if err := Attest(ctx, repo, a, k1, evalType, evalPred, anon); err != nil {
		t.Fatal(err)
	}
	if err := Attest(ctx, repo, a, k2, promoType, promoPred, anon); err != nil {
		t.Fatal(err)
	}

	// Stored as cosign attest does: DSSE layers appended to the .att tag.
	m, _, _ := fetchManifest(t, repo, attTag(a))
	if len(m.Layers) != 2 {
		t.Fatalf("%s has %d layers, want 2", attTag(a), len(m.Layers))
	}
	for i, want := range []string{evalType, promoType} {
		l := m.Layers[i]
		if l.MediaType != "application/vnd.dsse.envelope.v1+json" || l.Annotations["predicateType"] != want {
			t.Errorf("layer %d: media type %s, predicateType %q", i, l.MediaType, l.Annotations["predicateType"])
		}
		if sig, ok := l.Annotations["dev.cosignproject.cosign/signature"]; !ok || sig != "" {
			t.Errorf("layer %d: signature annotation %q present=%v, want present and empty", i, sig, ok)
		}
	}
	// The statement is in-toto v1 with the repository and digest as subject.
	rc, err := orasRepo(t, repo).Fetch(ctx, m.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if err := json.NewDecoder(rc).Decode(&env); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	stBytes, _ := base64.StdEncoding.DecodeString(env.Payload)
	var st statement
	if err := json.Unmarshal(stBytes, &st); err != nil {
		t.Fatal(err)
	}
	if env.PayloadType != "application/vnd.in-toto+json" || len(env.Signatures) != 1 ||
		st.Type != "https://in-toto.io/Statement/v1" || st.PredicateType != evalType ||
		len(st.Subject) != 1 || st.Subject[0].Name != repo || st.Subject[0].Digest["sha256"] != a.Encoded() {
		t.Fatalf("envelope %+v statement %s", env, stBytes)
	}

	// An attacker copies A's attestations onto B's .att tag.
	copyTag(t, repo, attTag(a), attTag(b))

	tests := []struct {
		name      string
		dgst      digest.Digest
		keys      []PublicKey
		wantTypes []string
		wantKeys  []string
	}{
		{"one key", a, []PublicKey{p1}, []string{evalType}, []string{p1.ID}},
		{"both keys", a, []PublicKey{p3, p2, p1}, []string{evalType, promoType}, []string{p1.ID, p2.ID}},
		{"unknown key", a, []PublicKey{p3}, []string{}, []string{}},
		{"subject is another digest", b, []PublicKey{p1, p2}, []string{}, []string{}},
		{"no attestation tag", c, []PublicKey{p1}, []string{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifyAttestations(ctx, repo, tt.dgst, tt.keys, anon)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("nil slice, want empty")
			}
			types := keyIDs(got, func(v VerifiedAttestation) string { return v.PredicateType })
			keys := keyIDs(got, func(v VerifiedAttestation) string { return v.KeyID })
			if !slices.Equal(types, tt.wantTypes) || !slices.Equal(keys, tt.wantKeys) {
				t.Fatalf("got types %v keys %v, want %v %v", types, keys, tt.wantTypes, tt.wantKeys)
			}
			for _, v := range got {
				if v.Subject != tt.dgst {
					t.Errorf("subject %s, want %s", v.Subject, tt.dgst)
				}
			}
		})
	}

	// Predicate round trip.
	got, err := VerifyAttestations(ctx, repo, a, []PublicKey{p1, p2}, anon)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, got[0].Predicate, evalPred) || !jsonEqual(t, got[1].Predicate, promoPred) {
		t.Fatalf("predicates %s / %s", got[0].Predicate, got[1].Predicate)
	}
	if got[0].KeyPath != p1.Path || got[1].KeyPath != p2.Path {
		t.Fatalf("key paths %q %q", got[0].KeyPath, got[1].KeyPath)
	}

	// Unverified listing shows what is there, including the copied
	// attestations on B with their real subject A.
	list, err := Attestations(ctx, repo, b, anon)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("Attestations(B) = %+v", list)
	}
	for i, want := range []string{evalType, promoType} {
		u := list[i]
		if u.PredicateType != want || u.StatementType != StatementTypeV1 || u.Signatures != 1 ||
			!slices.Equal(u.Subjects, []digest.Digest{a}) || u.Problem != "" {
			t.Errorf("entry %d: %+v", i, u)
		}
	}
	if !jsonEqual(t, list[0].Predicate, evalPred) {
		t.Errorf("listed predicate %s", list[0].Predicate)
	}
	if list, err := Attestations(ctx, repo, c, anon); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("Attestations with no tag = %v, %v; want empty, nil", list, err)
	}
}

// TestVerifyCosignCLIFormat verifies an attestation built the way the
// cosign v2.6.5 CLI builds it (`cosign attest --key K --type URI
// --tlog-upload=false`: Statement v0.1 from attestation.GenerateStatement),
// next to a layer that is not an envelope at all.
func TestVerifyCosignCLIFormat(t *testing.T) {
	ctx := t.Context()
	host := startRegistry(t)
	repo := host + "/m"
	a := pushModel(t, repo, "x")
	k, p := newKey(t, "k")
	ropts := anon.ociOptions(ctx)
	tgt, err := newTarget(repo, a, anon)
	if err != nil {
		t.Fatal(err)
	}

	pred := `{"metrics":{"accuracy":0.5}}`
	sh, err := attestation.GenerateStatement(attestation.GenerateOpts{
		Predicate: strings.NewReader(pred), Type: evalType, Digest: a.Encoded(), Repo: repo,
	})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(sh)
	if err != nil {
		t.Fatal(err)
	}
	env, err := dsse.WrapSigner(k.Signer, types.IntotoPayloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	cliAtt, err := static.NewAttestation(env, static.WithLayerMediaType(types.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": evalType}))
	if err != nil {
		t.Fatal(err)
	}
	junk, err := static.NewAttestation([]byte("not json"), static.WithLayerMediaType(types.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": "https://example.com/junk"}))
	if err != nil {
		t.Fatal(err)
	}
	var se oci.SignedEntity = ociremote.SignedUnknown(tgt.ref, ropts...)
	for _, att := range []oci.Signature{junk, cliAtt} {
		if se, err = mutate.AttachAttestationToEntity(se, att); err != nil {
			t.Fatal(err)
		}
	}
	if err := ociremote.WriteAttestations(tgt.ref.Repository, se, ropts...); err != nil {
		t.Fatal(err)
	}

	got, err := VerifyAttestations(ctx, repo, a, []PublicKey{p}, anon)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].PredicateType != evalType || !jsonEqual(t, got[0].Predicate, []byte(pred)) {
		t.Fatalf("got %+v", got)
	}
	list, err := Attestations(ctx, repo, a, anon)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Problem == "" || list[0].PredicateType != "https://example.com/junk" ||
		list[1].StatementType != StatementTypeV01 || list[1].Problem != "" {
		t.Fatalf("listing %+v", list)
	}
}
