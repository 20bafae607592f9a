package e2e

import (
	"strings"
	"testing"
)

// aliasPolicy protects production with a signature rule and a promoter.
const aliasPolicy = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]}
`

// TestAliasSetProtected (issue 10, item 11): `alias set` on an alias that
// promote moved refuses without --force, changing nothing; with --force it
// moves and warns (stderr and JSON); moving it back to what its newest
// record names needs no force. A promote after such a hand move says
// which previous version it records and where the tag was, and the two
// agree.
func TestAliasSetProtected(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		pol := p.policy("policy.yaml", aliasPolicy)
		v1, v2 := p.push("one"), p.push("two")
		p.sign(v1.Digest)
		p.sign(v2.Digest)
		p.promoteOK(p.ref(":v1"), "production", pol)

		res := p.c.fails([]int{exitError}, "alias", "set", p.ref(":v2"), "production")
		wantStderr(t, res, `promotion record`, `pull --policy`, `--force`, `modelreg promote`)
		p.assertAlias("production", v1.Digest)
		failsJSON(t, p.c, exitError, "invalid_input", "alias set", p.ref(":v2"), "production")
		p.assertAlias("production", v1.Digest)

		var set struct{ Alias, Digest, Warning string }
		res = p.c.okJSON(&set, "alias set", p.ref(":v2"), "production", "--force")
		if set.Alias != "production" || set.Digest != v2.Digest || !strings.Contains(set.Warning, "refuse") {
			t.Errorf("alias set --force: %+v, want production at %s with a warning that deploys refuse it", set, v2.Digest)
		}
		wantStderr(t, res, `warning`, `refuse`)
		p.assertAlias("production", v2.Digest)

		// Back to the digest the newest record names: nothing to warn of.
		res = p.c.ok("alias", "set", p.ref(":v1"), "production")
		if strings.Contains(res.stderr, "warning") {
			t.Errorf("moving production back to its promoted version warns:\n%s", res)
		}
		p.assertAlias("production", v1.Digest)

		// A hand move, then promote: the warning and "(was …)" agree.
		p.c.ok("alias", "set", p.ref(":v2"), "production", "--force")
		res = p.promote(p.ref(":v2"), "production", pol)
		if res.code != exitOK {
			t.Fatalf("promote after a hand move:\n%s", res)
		}
		var warn, was string
		for _, line := range strings.Split(res.stdout, "\n") {
			switch {
			case strings.HasPrefix(line, "Warning: "):
				warn = line
			case strings.HasPrefix(line, "Promoted "):
				was = line[strings.Index(line, "(was"):]
			}
		}
		for _, d := range []string{v1.Digest, v2.Digest} {
			if !strings.Contains(warn, d) || !strings.Contains(was, d) {
				t.Errorf("promote after a hand move: the warning and the (was …) do not both name %s:\n%s", d, res.stdout)
			}
		}
		if !strings.Contains(was, "by the promotion records") || strings.Index(was, v1.Digest) > strings.Index(was, v2.Digest) {
			t.Errorf("(was …) does not say v1 %s is what the records name and v2 %s where the tag was: %s", v1.Digest, v2.Digest, was)
		}

		// The same in JSON: previous is the records' digest, tagPrevious the tag's.
		p.c.ok("alias", "set", p.ref(":v1"), "production", "--force")
		var pr struct {
			Previous    string  `json:"previous"`
			TagPrevious *string `json:"tagPrevious"`
			Warning     string  `json:"warning"`
		}
		p.c.okJSON(&pr, "promote", p.ref(":v1"), "--to", "production", "--policy", pol, "--key", p.key("promoter"))
		if pr.Previous != v2.Digest || pr.TagPrevious == nil || *pr.TagPrevious != v1.Digest || pr.Warning == "" {
			t.Errorf("promote -o json after a hand move: previous %s tagPrevious %v warning %q; want %s, %s and a warning", pr.Previous, pr.TagPrevious, pr.Warning, v2.Digest, v1.Digest)
		}
	})
}
