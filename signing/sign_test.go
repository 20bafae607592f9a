package signing

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/modelreg/modelreg/errdef"
)

func TestSignVerify(t *testing.T) {
	anon := legacyAnon // the cosign v2 tag format
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
	// Signing again with the same key and claims adds nothing (cosign's
	// duplicate detection); a second key appends a layer.
	if err := Sign(ctx, repo, a, k1, map[string]string{"approver": "alice"}, anon); err != nil {
		t.Fatal(err)
	}
	if err := Sign(ctx, repo, a, k2, nil, RegistryOptions{PlainHTTP: true, Keychain: anon.Keychain, Format: FormatLegacy}); err != nil {
		t.Fatal(err)
	}

	// The stored format is cosign's: one simplesigning layer per signature
	// with the base64 signature annotation, payload bound to the digest.
	m, _, _ := fetchManifest(t, repo, sigTag(a))
	if len(m.Layers) != 2 {
		t.Fatalf("%s has %d layers, want 2", sigTag(a), len(m.Layers))
	}
	for _, l := range m.Layers {
		if l.MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" {
			t.Errorf("layer media type %s", l.MediaType)
		}
		if _, err := base64.StdEncoding.DecodeString(l.Annotations["dev.cosignproject.cosign/signature"]); err != nil || l.Annotations["dev.cosignproject.cosign/signature"] == "" {
			t.Errorf("layer signature annotation %q", l.Annotations["dev.cosignproject.cosign/signature"])
		}
	}

	// An attacker copies A's signatures onto B's .sig tag.
	copyTag(t, repo, sigTag(a), sigTag(b))
	if m, _, _ := fetchManifest(t, repo, sigTag(b)); len(m.Layers) != 2 {
		t.Fatalf("copy did not land: %d layers", len(m.Layers))
	}

	tests := []struct {
		name   string
		repo   string
		dgst   digest.Digest
		keys   []PublicKey
		wantID []string
	}{
		{"signer", repo, a, []PublicKey{p1}, []string{p1.ID}},
		{"wrong key", repo, a, []PublicKey{p3}, []string{}},
		{"no keys", repo, a, nil, []string{}},
		{"two signers", repo, a, []PublicKey{p1, p2, p3}, []string{p1.ID, p2.ID}},
		{"key given twice counts once", repo, a, []PublicKey{p2, p2, p1}, []string{p2.ID, p1.ID}},
		{"copied signature for another digest", repo, b, []PublicKey{p1, p2}, []string{}},
		{"unsigned digest", repo, pushModel(t, repo, "weights C"), []PublicKey{p1}, []string{}},
		{"unknown repository", host + "/no/such/repo", a, []PublicKey{p1}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := VerifySignatures(ctx, tt.repo, tt.dgst, tt.keys, anon)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("nil slice, want empty")
			}
			if ids := keyIDs(got, func(v VerifiedSignature) string { return v.KeyID }); !slices.Equal(ids, tt.wantID) {
				t.Fatalf("verified keys %v, want %v", ids, tt.wantID)
			}
		})
	}

	got, err := VerifySignatures(ctx, repo, a, []PublicKey{p1, p2}, anon)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].KeyPath != p1.Path || got[0].Annotations["approver"] != "alice" {
		t.Fatalf("first entry %+v", got[0])
	}
	if got[1].Annotations == nil || len(got[1].Annotations) != 0 {
		t.Fatalf("second entry annotations %#v, want empty map", got[1].Annotations)
	}
}

// TestSignaturePayload checks the simplesigning payload that Sign writes
// (cosign's SIGNATURE_SPEC: critical identity, image digest, type).
func TestSignaturePayload(t *testing.T) {
	anon := legacyAnon // the cosign v2 tag format
	ctx := t.Context()
	host := startRegistry(t)
	repo := host + "/m"
	a := pushModel(t, repo, "x")
	k, _ := newKey(t, "k")
	if err := Sign(ctx, repo, a, k, map[string]string{"dev.modelreg.note": "ok"}, anon); err != nil {
		t.Fatal(err)
	}
	m, _, _ := fetchManifest(t, repo, sigTag(a))
	rc, err := orasRepo(t, repo).Fetch(ctx, m.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var p struct {
		Critical struct {
			Identity struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
		Optional map[string]string `json:"optional"`
	}
	if err := json.NewDecoder(rc).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.Critical.Identity.DockerReference != repo || p.Critical.Image.Digest != a.String() ||
		p.Critical.Type != "cosign container image signature" || p.Optional["dev.modelreg.note"] != "ok" {
		t.Fatalf("payload %+v", p)
	}
}

func TestInvalidInput(t *testing.T) {
	ctx := t.Context()
	k, p := newKey(t, "k")
	const repo = "127.0.0.1:1/m"
	good := digest.FromString("x")
	obj := []byte(`{"a":1}`)
	const pt = "https://modelreg.dev/evaluation/v1"
	tests := []struct {
		name string
		call func() error
	}{
		{"repo with tag", func() error { return Sign(ctx, repo+":v1", good, k, nil, anon) }},
		{"repo with upper case", func() error {
			_, err := VerifySignatures(ctx, "127.0.0.1:1/Model", good, []PublicKey{p}, anon)
			return err
		}},
		{"short digest", func() error { return Sign(ctx, repo, "sha256:abc", k, nil, anon) }},
		{"sha512 digest", func() error { return Sign(ctx, repo, digest.SHA512.FromString("x"), k, nil, anon) }},
		{"nil key", func() error { return Sign(ctx, repo, good, nil, nil, anon) }},
		{"unloaded public key", func() error {
			_, err := VerifySignatures(ctx, repo, good, []PublicKey{{Path: "x.pub"}}, anon)
			return err
		}},
		{"predicate array", func() error { return Attest(ctx, repo, good, k, pt, []byte(`[1]`), anon) }},
		{"predicate null", func() error { return Attest(ctx, repo, good, k, pt, []byte(`null`), anon) }},
		{"predicate not JSON", func() error { return Attest(ctx, repo, good, k, pt, []byte(`{"a":`), anon) }},
		{"relative predicate type", func() error { return Attest(ctx, repo, good, k, "evaluation", obj, anon) }},
		{"attestations bad digest", func() error { _, err := Attestations(ctx, repo, "sha256:zz", anon); return err }},
		{"verify attestations bad repo", func() error { _, err := VerifyAttestations(ctx, "", good, []PublicKey{p}, anon); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, errdef.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
		})
	}
}

// TestRegistryErrors: transport and registry failures are errors, not
// "no signatures".
func TestRegistryErrors(t *testing.T) {
	ctx := t.Context()
	k, p := newKey(t, "k")
	d := digest.FromString("x")

	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"errors":[{"code":"DENIED","message":"no"}]}`, http.StatusForbidden)
	}))
	t.Cleanup(forbidden.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	for _, host := range []string{strings.TrimPrefix(forbidden.URL, "http://"), closed} {
		repo := host + "/m"
		if _, err := VerifySignatures(ctx, repo, d, []PublicKey{p}, anon); err == nil {
			t.Errorf("VerifySignatures on %s: no error", host)
		}
		if _, err := VerifyAttestations(ctx, repo, d, []PublicKey{p}, anon); err == nil {
			t.Errorf("VerifyAttestations on %s: no error", host)
		}
		if _, err := Attestations(ctx, repo, d, anon); err == nil {
			t.Errorf("Attestations on %s: no error", host)
		}
		if err := Sign(ctx, repo, d, k, nil, anon); err == nil {
			t.Errorf("Sign on %s: no error", host)
		}
	}
}
