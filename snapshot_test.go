package modelreg

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/modelreg/modelreg/errdef"
)

// History over a snapshot (the dashboard's path, which skips the .att
// and referrers index lookups the listing shows absent) answers exactly
// what History that lists the tags itself does, with records stored as
// bundle referrers and as cosign v2 .att tags and an alias moved by hand;
// a snapshot of another repository is refused.
func TestHistoryOverSnapshot(t *testing.T) {
	g := newGate(t)
	pol := g.policy("policy.yaml", `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    promoters: {keys: [keys/promoter.pub]}
  staging:
    promoters: {keys: [keys/promoter.pub]}
`)
	repo := g.repo("team/snap")
	d1 := g.push(repo, g.model("one"))
	d2 := g.push(repo, g.model("two"))
	d3 := g.push(repo, g.model("three"))
	legacy, err := New(Options{LegacyTags: true})
	if err != nil {
		t.Fatal(err)
	}
	g.promoteOK(g.c, repo+"@"+d1, "production", pol, "promoter")
	g.promoteOK(legacy, repo+"@"+d2, "production", pol, "promoter")
	g.promoteOK(g.c, repo+"@"+d2, "staging", pol, "promoter")
	if _, err := g.c.SetAlias(g.ctx, repo+"@"+d3, "staging", SetAliasOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	opts := HistoryOptions{Policy: pol}
	want, err := g.c.History(g.ctx, repo, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := g.c.Snapshot(g.ctx, repo, SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Tags = snap
	got, err := g.c.History(g.ctx, repo, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	wj, _ := json.MarshalIndent(want, "", " ")
	gj, _ := json.MarshalIndent(got, "", " ")
	if string(wj) != string(gj) {
		t.Fatalf("History over a snapshot:\n%s\nwant (listing itself):\n%s", gj, wj)
	}
	records := 0
	for _, a := range got.Aliases {
		records += len(a.Records)
		if a.Alias == "staging" && a.Explained {
			t.Errorf("staging, moved by hand to v3, is explained: %+v", a)
		}
	}
	if records != 3 {
		t.Errorf("%d records over the snapshot, want 3 (two bundles, one .att layer)", records)
	}

	other, err := g.c.Snapshot(g.ctx, repo, SnapshotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other.Repository = g.repo("team/other")
	if _, err := g.c.History(g.ctx, repo, "", HistoryOptions{Tags: other}); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("History of %s over a snapshot of team/other: %v, want errdef.ErrInvalidInput", repo, err)
	}
}
