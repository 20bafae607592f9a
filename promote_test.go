package modelreg

import (
	"testing"
)

// TestApprovalsBoundToRepository: approvals given in team-a for the
// digest both repositories hold count in team-a, and neither as given nor
// copied with the digest's attestations into team-b do they count there:
// the approval names team-a.
func TestApprovalsBoundToRepository(t *testing.T) {
	g := newGate(t)
	pol := g.policy("policy.yaml", `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    approvals: {keys: [keys/alice.pub, keys/bob.pub], min: 2}
    promoters: {keys: [keys/promoter.pub]}
`)
	// The repository's last path element is the model name in the
	// ModelPack config, so one folder pushed to both has one digest.
	a, b := g.repo("team-a/model"), g.repo("team-b/model")
	dir := g.model("shared")
	d := g.push(a, dir)
	if db := g.push(b, dir); db != d {
		t.Fatalf("premise: one folder pushed to two repositories has digests %s and %s", d, db)
	}
	for _, k := range []string{"alice", "bob"} {
		if _, err := g.c.Approve(g.ctx, a+"@"+d, g.key(k), []byte(keyPassword), ApproveOptions{Alias: "production", Approver: k}); err != nil {
			t.Fatal(err)
		}
	}

	_, err := g.promote(g.c, b+"@"+d, "production", pol, "promoter")
	wantDenied(t, "promote in team-b with approvals given in team-a", err, `approvals`, `0 of 2`)
	g.copyReferrers(a, b, d)
	res, err := g.promote(g.c, b+"@"+d, "production", pol, "promoter")
	wantDenied(t, "promote in team-b with team-a's approvals copied in", err, `approvals`, `0 of 2`)
	if res == nil || res.Moved {
		t.Fatalf("a refused promotion reports %+v", res)
	}
	if _, err := g.remote(b).Resolve(g.ctx, "production"); err == nil {
		t.Fatalf("team-b's production was set by a refused promotion")
	}

	// The same approvals pass where they were given.
	if _, err := g.promote(g.c, a+"@"+d, "production", pol, "promoter"); err != nil {
		t.Fatalf("promote in team-a with its own approvals: %v", err)
	}
}
