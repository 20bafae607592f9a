package ui

import (
	"context"
	"embed"
	"net/http"
	"path"
	"time"

	"github.com/modelreg/modelreg"
)

// assetFS holds the dashboard's only JavaScript: the vendored Mermaid
// release that draws the lineage graph, and the script that calls it (see
// assets/README.md for the version and licence).
//
//go:embed assets/mermaid.min.js assets/lineage.js
var assetFS embed.FS

// VersionLineage is the lineage section of the version page: what the
// version was built from, what was built from it (trusted link referrers,
// see modelreg.Client.Lineage) and both as one Mermaid flowchart.
type VersionLineage struct {
	Upstream   *modelreg.LineageGraph `json:"upstream"`
	Downstream *modelreg.LineageGraph `json:"downstream"`
	// Mermaid is the flowchart of both graphs (modelreg.LineageGraph.Mermaid).
	Mermaid string `json:"mermaid"`
	// Error says why the lineage could not be read; the rest of the page
	// is still shown.
	Error string `json:"error,omitempty"`
}

// Bounds of the version page's lineage section: links are written by
// anyone who may push to a dataset's repository, so one page load spends
// at most lineageTimeout on them, linkTimeout on one link and reads at
// most maxLinks links of a node.
const (
	lineageTimeout = 15 * time.Second
	linkTimeout    = 3 * time.Second
	maxLinks       = 200
)

// lineage reads the upstream and downstream lineage of repo@dg, cached
// like the rest of the page. Downstream links are kept when the version
// they name really names this digest; the dashboard does not require them
// to be signed.
func (s *Server) lineage(ctx context.Context, repo, dg string) *VersionLineage {
	v, err := s.cached(ctx, "lineage "+repo+"@"+dg, func(ctx context.Context) (any, error) {
		ref := repo + "@" + dg
		ctx, cancel := context.WithTimeout(ctx, lineageTimeout)
		defer cancel()
		up, err := s.cl.Lineage(ctx, ref, modelreg.LineageOptions{LinkTimeout: linkTimeout, MaxLinks: maxLinks})
		if err != nil {
			return nil, err
		}
		down, err := s.cl.Lineage(ctx, ref, modelreg.LineageOptions{Downstream: true, LinkTimeout: linkTimeout, MaxLinks: maxLinks})
		if err != nil {
			return nil, err
		}
		both := &modelreg.LineageGraph{Root: up.Root, Nodes: append([]modelreg.LineageNode(nil), up.Nodes...), Edges: append([]modelreg.LineageEdge(nil), up.Edges...)}
		both.Nodes = append(both.Nodes, down.Nodes[1:]...)
		both.Edges = append(both.Edges, down.Edges...)
		return &VersionLineage{Upstream: up, Downstream: down, Mermaid: both.Mermaid()}, nil
	})
	if err != nil {
		return &VersionLineage{Error: err.Error()}
	}
	return v.(*VersionLineage)
}

// serveAsset serves a file of assetFS under /assets/.
func serveAsset(w http.ResponseWriter, r *http.Request) {
	b, err := assetFS.ReadFile("assets/" + path.Base(r.URL.Path))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(b)
}

func init() {
	// node finds a node of a lineage graph by ID, for the version page.
	funcs["node"] = func(g *modelreg.LineageGraph, id string) *modelreg.LineageNode {
		for i := range g.Nodes {
			if g.Nodes[i].ID == id {
				return &g.Nodes[i]
			}
		}
		return nil
	}
}
