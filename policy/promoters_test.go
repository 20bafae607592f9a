package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/modelreg/modelreg/errdef"
)

func TestPromoterKeys(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/ci.pub, keys/release.pub]}
  staging: {}
`)
	got := p.PromoterKeys("production")
	if len(got) != 2 || got[0].ID != td.ids["ci"] || got[1].ID != td.ids["release"] {
		t.Fatalf("PromoterKeys(production) = %+v, want ci and release", got)
	}
	// No fallback to the signature keys, and nothing for unknown aliases.
	if got := p.PromoterKeys("staging"); len(got) != 0 {
		t.Errorf("PromoterKeys(staging) = %+v, want none", got)
	}
	if got := p.PromoterKeys("qa"); got != nil {
		t.Errorf("PromoterKeys(qa) = %+v, want nil", got)
	}
	// Promoter keys are policy keys, so evidence gathering verifies them.
	found := false
	for _, k := range p.Keys() {
		found = found || k.ID == td.ids["ci"]
	}
	if !found {
		t.Errorf("Keys() lacks the promoter key ci")
	}
}

func TestPromotersErrors(t *testing.T) {
	td := newTestDir(t)
	for name, src := range map[string]string{
		"missing key file": "    promoters: {keys: [keys/nope.pub]}\n",
		"no keys":          "    promoters: {keys: []}\n",
		"unknown field":    "    promoters: {keys: [keys/ci.pub], min: 1}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte("apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n"+src), "policy.yaml", td.dir)
			if !errors.Is(err, errdef.ErrInvalidInput) || !strings.Contains(err.Error(), "policy.yaml:5: aliases.production.promoters") {
				t.Fatalf("err = %v, want a load error at policy.yaml:5 naming aliases.production.promoters", err)
			}
		})
	}
}

func TestPromotionMaxAge(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, "apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n    promoters: {keys: [keys/ci.pub], maxAge: 30d}\n  staging:\n    promoters: {keys: [keys/ci.pub], maxAge: 90m}\n  qa:\n    promoters: {keys: [keys/ci.pub]}\n")
	for alias, want := range map[string]string{"production": "720h0m0s", "staging": "1h30m0s", "qa": "0s", "none": "0s"} {
		if got := p.PromotionMaxAge(alias).String(); got != want {
			t.Errorf("PromotionMaxAge(%s) = %s, want %s", alias, got, want)
		}
	}
	for _, bad := range []string{"-1h", "soon", "0s", "1.5d"} {
		_, err := Parse([]byte("apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n    promoters: {keys: [keys/ci.pub], maxAge: "+bad+"}\n"), "policy.yaml", td.dir)
		if !errors.Is(err, errdef.ErrInvalidInput) || !strings.Contains(err.Error(), "policy.yaml:5: aliases.production.promoters.maxAge") {
			t.Errorf("maxAge %q: err = %v, want a load error naming policy.yaml:5 and the field", bad, err)
		}
	}
}

func TestPromotionMinSequence(t *testing.T) {
	td := newTestDir(t)
	p := td.parse(t, "apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n    promoters: {keys: [keys/ci.pub], minSequence: 12}\n  qa:\n    promoters: {keys: [keys/ci.pub]}\n")
	for alias, want := range map[string]int64{"production": 12, "qa": 0, "none": 0} {
		if got := p.PromotionMinSequence(alias); got != want {
			t.Errorf("PromotionMinSequence(%s) = %d, want %d", alias, got, want)
		}
	}
	for _, bad := range []string{"0", "-3", "twelve", "1.5"} {
		_, err := Parse([]byte("apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n    promoters: {keys: [keys/ci.pub], minSequence: "+bad+"}\n"), "policy.yaml", td.dir)
		if !errors.Is(err, errdef.ErrInvalidInput) || !strings.Contains(err.Error(), "policy.yaml:5: aliases.production.promoters.minSequence") {
			t.Errorf("minSequence %q: err = %v, want a load error naming policy.yaml:5 and the field", bad, err)
		}
	}
}
