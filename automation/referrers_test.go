package automation

import (
	"strings"
	"testing"
	"time"

	"github.com/modelreg/modelreg"
)

func refTypes(es []Event) string {
	s := ""
	for _, e := range es {
		if s != "" {
			s += " "
		}
		s += e.Type + ":" + e.Version + ":" + e.PredicateType
	}
	return s
}

// TestDiffReferrers: a new signature and a new attestation of a known
// version each fire once; what the baseline listed, a version listed for
// the first time and promotion records fire nothing.
func TestDiffReferrers(t *testing.T) {
	now := time.Unix(1700000000, 0)
	sig := modelreg.ObservedReferrer{Key: dg("1"), Kind: "signature", Format: "bundle", PredicateType: "https://sigstore.dev/cosign/sign/v1", KeyID: dg("k"), Verified: true}
	eval := modelreg.ObservedReferrer{Key: dg("2"), Kind: "evaluation", Format: "bundle", PredicateType: "https://modelreg.dev/evaluation/v1", KeyID: dg("k")}
	record := modelreg.ObservedReferrer{Key: dg("3"), Kind: "promotion", Format: "bundle", PredicateType: "https://modelreg.dev/promotion/v1", Verified: true}
	approval := modelreg.ObservedReferrer{Key: dg("4"), Kind: "approval", Format: "bundle", PredicateType: "https://modelreg.dev/approval/v1", Verified: true}
	legacy := modelreg.ObservedReferrer{Key: "legacy.sig.0", Kind: "signature", Format: "legacy"}
	obs := func(refs map[string][]modelreg.ObservedReferrer) *modelreg.Observation {
		return &modelreg.Observation{Repository: "r.example.com/m", Versions: map[string]string{"v1": dg("a"), "v2": dg("b")},
			Aliases: map[string]string{}, Records: []modelreg.PromotionRecord{}, Referrers: refs}
	}
	base := obs(map[string][]modelreg.ObservedReferrer{dg("a"): {sig}, dg("b"): {}})

	signed := obs(map[string][]modelreg.ObservedReferrer{dg("a"): {sig}, dg("b"): {sig}})
	es := Diff(base, signed, now)
	if got := refTypes(es); got != "signature.added:v2:https://sigstore.dev/cosign/sign/v1" {
		t.Fatalf("sign v2: %s", got)
	}
	if e := es[0]; e.Digest != dg("b") || e.Referrer != dg("1") || e.KeyID != dg("k") || e.Verified == nil || !*e.Verified || e.Format != "bundle" {
		t.Errorf("signature.added = %+v", e)
	}
	if again := Diff(base, signed, now.Add(time.Hour)); again[0].ID != es[0].ID || len(again[0].ID) != 32 {
		t.Errorf("the same signature has ids %s and %s", es[0].ID, again[0].ID)
	}

	attested := obs(map[string][]modelreg.ObservedReferrer{dg("a"): {sig}, dg("b"): {sig, eval, record, approval, legacy}})
	es = Diff(signed, attested, now)
	want := "attestation.added:v2:https://modelreg.dev/evaluation/v1 attestation.added:v2:https://modelreg.dev/approval/v1 signature.added:v2:"
	if got := refTypes(es); got != want {
		t.Fatalf("attest, promote, approve, legacy sign: %s; want %s", got, want)
	}
	if es[0].Verified == nil || *es[0].Verified || es[2].Referrer != "" || es[2].Format != "legacy" {
		t.Errorf("events = %+v", es)
	}
	if got := refTypes(Diff(attested, attested, now)); got != "" {
		t.Errorf("no change: %s", got)
	}
	// Versions that prev knew but had not listed (a state from before
	// referrers were watched) are a baseline.
	unlisted := obs(nil)
	if got := refTypes(Diff(unlisted, attested, now)); got != "" {
		t.Errorf("first listing of known versions: %s", got)
	}
	// A new version's referrers are new, as is everything of a repository
	// first seen after the baseline.
	pushed := obs(map[string][]modelreg.ObservedReferrer{dg("a"): {sig}, dg("b"): {sig}, dg("c"): {sig}})
	pushed.Versions = map[string]string{"v1": dg("a"), "v2": dg("b"), "v3": dg("c")}
	if got := refTypes(Diff(signed, pushed, now)); got != "version.created:v3: signature.added:v3:https://sigstore.dev/cosign/sign/v1" {
		t.Errorf("new signed version: %s", got)
	}
	if got := refTypes(Diff(nil, signed, now)); got != "version.created:v1: version.created:v2: signature.added:v1:https://sigstore.dev/cosign/sign/v1 signature.added:v2:https://sigstore.dev/cosign/sign/v1" {
		t.Errorf("new repository: %s", got)
	}
}

// TestSameReferrers decides whether an observation is written again.
func TestSameReferrers(t *testing.T) {
	a := map[string][]modelreg.ObservedReferrer{dg("a"): {{Key: dg("1"), Kind: "signature"}}}
	b := map[string][]modelreg.ObservedReferrer{dg("a"): {{Key: dg("1"), Kind: "signature", Verified: true}}}
	if !sameReferrers(a, a) || sameReferrers(a, b) || sameReferrers(a, nil) || !sameReferrers(nil, map[string][]modelreg.ObservedReferrer{}) {
		t.Error("sameReferrers")
	}
}

// TestReferrersInterval: a source lists every version's referrers every
// ten poll intervals unless it says otherwise; a bad value names its line.
func TestReferrersInterval(t *testing.T) {
	doc := func(src string) []byte {
		return []byte("apiVersion: modelreg.dev/v1\nkind: Automations\nsources:\n" + src +
			"automations:\n  - name: signed\n    on: {event: signature.added}\n    command: [\"true\"]\n")
	}
	cfg, err := Parse("a.yaml", doc("  - repository: r.example.com/a\n    poll: 30s\n  - repository: r.example.com/b\n    poll: 30s\n    referrers: 1m\n  - repository: r.example.com/c\n    poll: 0\n"), env())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{5 * time.Minute, time.Minute, 0} {
		if got := cfg.Sources[i].Referrers; got != want {
			t.Errorf("source %d: referrers %s; want %s", i, got, want)
		}
	}
	_, err = Parse("a.yaml", doc("  - repository: r.example.com/a\n    referrers: often\n"), env())
	if err == nil || !strings.Contains(err.Error(), "a.yaml:5") || !strings.Contains(err.Error(), "referrers") {
		t.Errorf("bad referrers: %v", err)
	}
}

// TestSummaryOfReferrerEvents: chat messages say what was added and
// whether a policy key verified it.
func TestSummaryOfReferrerEvents(t *testing.T) {
	yes, no := true, false
	s := Summary(Event{Type: SignatureAdded, Repository: "r.example.com/m", Version: "v2", KeyID: dg("k"), Verified: &yes})
	if s != "r.example.com/m: new signature of v2, verified by key sha256:kkkkkkkkkkkk" {
		t.Errorf("signature: %q", s)
	}
	e := Event{Type: AttestationAdded, Repository: "r.example.com/m", Version: "v2", PredicateType: "https://modelreg.dev/evaluation/v1", Verified: &no}
	if s := Summary(e); s != "r.example.com/m: new attestation https://modelreg.dev/evaluation/v1 of v2, not verified by a policy key" {
		t.Errorf("attestation: %q", s)
	}
	if f := facts(e); f[len(f)-1] != [2]string{"Verified", "false"} || f[len(f)-2] != [2]string{"Predicate type", "https://modelreg.dev/evaluation/v1"} {
		t.Errorf("facts: %v", f)
	}
}
