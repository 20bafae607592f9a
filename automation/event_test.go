package automation

import (
	"strings"
	"testing"
	"time"

	"github.com/modelreg/modelreg"
)

func dg(c string) string { return "sha256:" + strings.Repeat(c, 64) }

func rec(alias, d, recordDigest string, seq int64) modelreg.PromotionRecord {
	return modelreg.PromotionRecord{PromotionPredicate: modelreg.PromotionPredicate{Alias: alias, Digest: d, Sequence: seq},
		RecordDigest: recordDigest, Verified: true}
}

func types(es []Event) string {
	var s []string
	for _, e := range es {
		s = append(s, e.Type+":"+e.Alias+e.Version)
	}
	return strings.Join(s, " ")
}

func TestDiffLifeOfAModel(t *testing.T) {
	now := time.Unix(1700000000, 0)
	base := &modelreg.Observation{Repository: "r.example.com/m", Protected: []string{"production"},
		Versions: map[string]string{"v1": dg("a")}, Aliases: map[string]string{"latest": dg("a")}, Records: []modelreg.PromotionRecord{}}

	pushed := &modelreg.Observation{Repository: base.Repository, Protected: base.Protected,
		Versions: map[string]string{"v1": dg("a"), "v2": dg("b"), "v10": dg("c")}, Aliases: map[string]string{"latest": dg("c")}, Records: []modelreg.PromotionRecord{}}
	if got := types(Diff(base, pushed, now)); got != "version.created:v2 version.created:v10 alias.moved:latestv10" {
		t.Errorf("push: %s", got)
	}

	promoted := *pushed
	promoted.Aliases = map[string]string{"latest": dg("c"), "production": dg("b")}
	promoted.Records = []modelreg.PromotionRecord{rec("production", dg("b"), dg("r"), 1)}
	es := Diff(pushed, &promoted, now)
	if got := types(es); got != "promotion.recorded:productionv2 alias.moved:productionv2" {
		t.Fatalf("promote: %s", got)
	}
	if es[1].Record == nil || es[1].OldDigest != "" || es[1].NewDigest != dg("b") {
		t.Errorf("alias.moved = %+v", es[1])
	}

	hand := promoted
	hand.Aliases = map[string]string{"latest": dg("c"), "production": dg("a")}
	es = Diff(&promoted, &hand, now)
	if got := types(es); got != "alias.untracked:productionv1" {
		t.Fatalf("hand move: %s", got)
	}
	if es[0].Expected != dg("b") || es[0].OldDigest != dg("b") || es[0].NewDigest != dg("a") {
		t.Errorf("alias.untracked = %+v", es[0])
	}
	// A record signed by a key that may not promote explains nothing.
	forged := hand
	forged.Records = append([]modelreg.PromotionRecord{{PromotionPredicate: modelreg.PromotionPredicate{Alias: "production", Digest: dg("a"), Sequence: 2}, RecordDigest: dg("f")}}, hand.Records...)
	if got := types(Diff(&promoted, &forged, now)); got != "alias.untracked:productionv1" {
		t.Errorf("unverified record: %s", got)
	}
	if got := types(Diff(&hand, &hand, now)); got != "" {
		t.Errorf("no change: %s", got)
	}
}

func TestEventIDsAreStable(t *testing.T) {
	a := &modelreg.Observation{Repository: "r.example.com/m", Versions: map[string]string{}, Aliases: map[string]string{}}
	b := &modelreg.Observation{Repository: "r.example.com/m", Versions: map[string]string{"v1": dg("a")}, Aliases: map[string]string{"latest": dg("a")}}
	x := Diff(a, b, time.Unix(1, 0))
	y := Diff(a, b, time.Unix(99999, 0))
	if len(x) != 2 || x[0].ID != y[0].ID || x[1].ID != y[1].ID || x[0].ID == x[1].ID || len(x[0].ID) != 32 {
		t.Errorf("ids %v / %v", x, y)
	}
	other := *b
	other.Repository = "r.example.com/n"
	if z := Diff(a, &other, time.Unix(1, 0)); z[0].ID == x[0].ID {
		t.Error("the same change in another repository has the same id")
	}
}
