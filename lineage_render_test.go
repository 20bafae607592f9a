package modelreg

import (
	"strings"
	"testing"

	"gonum.org/v1/gonum/graph/formats/dot"
)

// A graph whose labels hold every character DOT and Mermaid treat
// specially: DOT escapes them and still parses; Mermaid keeps none.
func TestLineageRenderingEscapes(t *testing.T) {
	hostile := `r"e\p]; x -> y [label="z"] #quot; <b>|`
	g := &LineageGraph{Root: "a", Direction: "downstream",
		Nodes: []LineageNode{{ID: "a", Repository: hostile, Digest: "sha256:aa", Kind: KindDataset}, {ID: hostile, Repository: "b", Version: "v2", Kind: KindModel, Depth: 1}},
		Edges: []LineageEdge{{From: "a", To: hostile, Relation: RelationDataset}}}
	f, err := dot.ParseString(g.DOT())
	if err != nil {
		t.Fatalf("DOT does not parse: %v\n%s", err, g.DOT())
	}
	if n := len(f.Graphs[0].Stmts); n != 5 { // rankdir, node defaults, 2 nodes, 1 edge
		t.Errorf("DOT has %d statements, want 5:\n%s", n, g.DOT())
	}
	m := g.Mermaid()
	for _, bad := range []string{`r"e`, "<b>", "#quot;", "x ->", "[label"} {
		if strings.Contains(m, bad) {
			t.Errorf("Mermaid keeps %q:\n%s", bad, m)
		}
	}
	if !strings.Contains(m, `n0 -->|"dataset"| n1`) || !strings.Contains(m, `n0[("r_e_p__ x -_ y _label__z__ _quot_ _b__@sha256:aa")]`) {
		t.Errorf("Mermaid:\n%s", m)
	}
	if txt := g.Text(); !strings.Contains(txt, "└── dataset: b:v2 (model") {
		t.Errorf("text:\n%s", txt)
	}
}
