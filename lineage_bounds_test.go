package modelreg

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/modelreg/modelreg/oci"
)

// Anyone who may push to a dataset's repository can add link referrers
// to it: a link naming a host that accepts connections and never answers
// costs LinkTimeout, not the stall timeout, and a node's links past
// MaxLinks are dropped unread.
func TestLineageBoundsHostileLinks(t *testing.T) {
	g := newGate(t)
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			conn, err := hang.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, never answered
		}
	}()

	ds := g.repo("data/reviews")
	dsDigest := g.push(ds, g.model("dataset"))
	model := g.repo("team/sentiment")
	res, err := g.c.Push(g.ctx, model, g.model("model"), PushOptions{Datasets: []string{ds + "@" + dsDigest}})
	if err != nil {
		t.Fatal(err)
	}
	dsRef, err := oci.ParseReference(ds + "@" + dsDigest)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := oci.ParseReference(hang.Addr().String() + "/evil/model@" + res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var w LinkWrite
	if err := g.c.writeLink(g.ctx, upstreamRef{Relation: "dataset", Ref: dsRef}, forged, "v1", nil, &w); err != nil {
		t.Fatalf("writing the forged link: %v", err)
	}

	start := time.Now()
	lg, err := g.c.Lineage(g.ctx, ds+"@"+dsDigest, LineageOptions{Downstream: true, LinkTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("lineage took %s with a 500ms link timeout", took)
	}
	if !hasNode(lg, model+"@"+res.Digest) {
		t.Errorf("the real downstream model is missing: %+v", lg.Nodes)
	}
	if len(lg.Dropped) != 1 || !strings.Contains(lg.Dropped[0].Downstream, hang.Addr().String()) {
		t.Errorf("dropped = %+v, want the link to the silent host", lg.Dropped)
	}

	lg, err = g.c.Lineage(g.ctx, ds+"@"+dsDigest, LineageOptions{Downstream: true, LinkTimeout: 500 * time.Millisecond, MaxLinks: 1})
	if err != nil {
		t.Fatal(err)
	}
	capped := 0
	for _, d := range lg.Dropped {
		if strings.Contains(d.Reason, "more than 1 links") {
			capped++
		}
	}
	if capped != 1 || len(lg.Dropped) != 1 {
		t.Errorf("with MaxLinks 1, dropped = %+v, want the second link dropped unread", lg.Dropped)
	}
}

func hasNode(g *LineageGraph, id string) bool {
	for _, n := range g.Nodes {
		if n.ID == id {
			return true
		}
	}
	return false
}
