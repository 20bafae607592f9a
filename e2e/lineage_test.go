package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"gonum.org/v1/gonum/graph/formats/dot"
	"gonum.org/v1/gonum/graph/formats/dot/ast"

	"github.com/modelreg/modelreg"
)

// The lineage tests of issue 12: link referrers written at push into the
// dataset's and parent's repositories, `lineage` upstream and downstream,
// forged and wrongly signed links, backfill, and the graph formats parsed
// by real parsers (gonum's DOT parser, Mermaid in headless Chromium).

type lineageNodeJSON struct {
	ID, Repository, Digest, Version, Kind string
	RunID                                 string `json:"runId"`
	Revision                              string
}

type lineageJSON struct {
	Root, Direction string
	Nodes           []lineageNodeJSON
	Edges           []struct{ From, To, Relation string }
	Dropped         []struct{ Subject, Link, Downstream, Reason string }
}

type linkWriteJSON struct {
	Subject, Relation, Downstream, Version, Status, Link, Error, Backfill string
	Signed                                                                bool
}

type pushLinksJSON struct {
	pushJSON
	Links []linkWriteJSON `json:"links"`
}

type backfillJSON struct {
	Versions, Written, Present, Failed int
	Links                              []linkWriteJSON
}

// repos returns the repositories of the graph's nodes other than the root.
func (g lineageJSON) repos() []string {
	var out []string
	for _, n := range g.Nodes {
		if n.ID != g.Root && !slices.Contains(out, n.Repository) {
			out = append(out, n.Repository)
		}
	}
	slices.Sort(out)
	return out
}

// ids returns the node IDs other than the root, sorted.
func (g lineageJSON) ids() []string {
	var out []string
	for _, n := range g.Nodes {
		if n.ID != g.Root {
			out = append(out, n.ID)
		}
	}
	slices.Sort(out)
	return out
}

func (g lineageJSON) edgeSet() []string {
	var out []string
	for _, e := range g.Edges {
		out = append(out, e.From+" -"+e.Relation+"-> "+e.To)
	}
	slices.Sort(out)
	return out
}

// lineageFixture is a dataset, a base model and fine-tuned models built
// from them on one registry.
type lineageFixture struct {
	p                *promo
	data, base       string // HOST/REPO
	ftA, ftB         string
	dataV1, baseV1   pushLinksJSON
	a1, a2, b1, b2   pushLinksJSON
	dataRef, baseRef string // HOST/REPO@DIGEST
	a2dir            string
}

func pushDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		writeFile(t, filepath.Join(dir, name), []byte(body))
	}
	return dir
}

func newLineageFixture(t *testing.T, r *registry) *lineageFixture {
	p := newPromo(t, r)
	f := &lineageFixture{p: p, data: p.repository + "-data", base: p.repository + "-base", ftA: p.repository + "-fta", ftB: p.repository + "-ftb"}
	p.c.okJSON(&f.dataV1, "push", f.data, pushDir(t, map[string]string{"train.csv": "text,label\ngood,1\n" + t.Name() + "\n"}))
	p.c.okJSON(&f.baseV1, "push", f.base, pushDir(t, map[string]string{"README.md": "# base " + t.Name(), "model.safetensors": string(randomBytes(t, 512))}))
	f.dataRef, f.baseRef = f.data+"@"+f.dataV1.Digest, f.base+"@"+f.baseV1.Digest
	model := func(label string) string {
		return pushDir(t, map[string]string{"README.md": "# " + label, "model.safetensors": string(randomBytes(t, 512))})
	}
	key := p.key("release")
	p.c.okJSON(&f.a1, "push", f.ftA, model("a1"), "--dataset", f.data+":v1", "--run-id", "run-a1", "--key", key)
	f.a2dir = model("a2")
	p.c.okJSON(&f.a2, "push", f.ftA, f.a2dir, "--dataset", f.data+":v1", "--run-id", "run-a2", "--key", key)
	p.c.okJSON(&f.b1, "push", f.ftB, model("b1"), "--dataset", f.data+":v1", "--parent", f.base+":v1", "--revision", "0123abcd", "--key", key)
	// v2 of ftB skips its links: backfill writes them.
	p.c.okJSON(&f.b2, "push", f.ftB, model("b2"), "--dataset", f.data+":v1", "--parent", f.base+":v1", "--no-links")
	for _, pr := range []pushLinksJSON{f.a1, f.a2, f.b1} {
		for _, l := range pr.Links {
			if l.Status != "written" || !l.Signed || l.Link == "" {
				t.Errorf("push %s: link %+v, want written and signed", pr.Reference, l)
			}
		}
	}
	if len(f.a1.Links) != 1 || len(f.b1.Links) != 2 || len(f.b2.Links) != 0 {
		t.Fatalf("links of the pushes: a1 %d, b1 %d, b2 %d; want 1, 2, 0", len(f.a1.Links), len(f.b1.Links), len(f.b2.Links))
	}
	return f
}

func (f *lineageFixture) lineage(t *testing.T, args ...string) lineageJSON {
	t.Helper()
	var g lineageJSON
	f.p.c.with(t).okJSON(&g, "lineage", args...)
	return g
}

func TestLineageDownstreamAndUpstream(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		f := newLineageFixture(t, r)
		p := f.p
		at := func(repo, d string) string { return repo + "@" + d }

		// Before backfill: ftB v2 has no link, so only three versions.
		g := f.lineage(t, f.data+":v1", "--downstream")
		if want := []string{at(f.ftA, f.a1.Digest), at(f.ftA, f.a2.Digest), at(f.ftB, f.b1.Digest)}; !slices.Equal(g.ids(), sorted(want)) {
			t.Errorf("downstream of the dataset before backfill: %v, want %v", g.ids(), sorted(want))
		}

		var bf backfillJSON
		p.c.okJSON(&bf, "lineage backfill", f.ftB, f.ftA, "--key", p.key("release"))
		if bf.Versions != 4 || bf.Written != 2 || bf.Present != 4 || bf.Failed != 0 {
			t.Errorf("first backfill: %+v, want 4 versions, 2 written (ftB v2), 4 present", bf)
		}
		p.c.okJSON(&bf, "lineage backfill", f.ftB, f.ftA, "--key", p.key("release"))
		if bf.Written != 0 || bf.Present != 6 || bf.Failed != 0 {
			t.Errorf("second backfill: %+v, want 0 written, 6 present", bf)
		}

		// Downstream of the dataset: both fine-tuned models, and only them.
		g = f.lineage(t, f.data+":v1", "--downstream", "--key", p.pub("release"))
		if got, want := g.repos(), sorted([]string{f.ftA, f.ftB}); !slices.Equal(got, want) {
			t.Errorf("downstream repositories of the dataset: %v, want %v", got, want)
		}
		wantIDs := sorted([]string{at(f.ftA, f.a1.Digest), at(f.ftA, f.a2.Digest), at(f.ftB, f.b1.Digest), at(f.ftB, f.b2.Digest)})
		if !slices.Equal(g.ids(), wantIDs) {
			t.Errorf("downstream of the dataset: %v, want %v", g.ids(), wantIDs)
		}
		if g.Root != f.dataRef || g.Direction != "downstream" || len(g.Dropped) != 0 {
			t.Errorf("downstream graph: root %s direction %s dropped %v", g.Root, g.Direction, g.Dropped)
		}
		for _, n := range g.Nodes {
			if n.ID == at(f.ftB, f.b2.Digest) && (n.Version != "v2" || n.Kind != "model") {
				t.Errorf("node %+v: want version v2, kind model", n)
			}
			if n.ID == g.Root && n.Kind != "dataset" {
				t.Errorf("root %+v: want kind dataset", n)
			}
		}
		// Downstream of the base: ftB only.
		g = f.lineage(t, f.base+":v1", "--downstream")
		if want := sorted([]string{at(f.ftB, f.b1.Digest), at(f.ftB, f.b2.Digest)}); !slices.Equal(g.ids(), want) {
			t.Errorf("downstream of the base: %v, want %v", g.ids(), want)
		}
		for _, e := range g.Edges {
			if e.Relation != "parent" || e.From != f.baseRef {
				t.Errorf("downstream edge of the base %+v: want parent from %s", e, f.baseRef)
			}
		}

		// Upstream of a fine-tuned version: the dataset and the base.
		g = f.lineage(t, f.ftB+":v2")
		wantEdges := sorted([]string{f.dataRef + " -dataset-> " + at(f.ftB, f.b2.Digest), f.baseRef + " -parent-> " + at(f.ftB, f.b2.Digest)})
		if !slices.Equal(g.edgeSet(), wantEdges) || !slices.Equal(g.ids(), sorted([]string{f.dataRef, f.baseRef})) {
			t.Errorf("upstream of ftB:v2: edges %v nodes %v, want %v", g.edgeSet(), g.ids(), wantEdges)
		}
		text := p.c.ok("lineage", f.ftB+":v1").stdout
		wantIn(t, "upstream text", text, "dataset: "+f.data+":v1 (dataset", "parent: "+f.base+":v1 (model", "commit 0123abcd")

		// -o dot parses with gonum's DOT parser and has the edges.
		out := p.c.ok("lineage", f.data+":v1", "--downstream", "-o", "dot").stdout
		file, err := dot.ParseString(out)
		if err != nil {
			t.Fatalf("lineage -o dot does not parse: %v\n%s", err, out)
		}
		if got, want := dotEdges(file), sorted([]string{
			f.dataRef + " -> " + at(f.ftA, f.a1.Digest), f.dataRef + " -> " + at(f.ftA, f.a2.Digest),
			f.dataRef + " -> " + at(f.ftB, f.b1.Digest), f.dataRef + " -> " + at(f.ftB, f.b2.Digest)}); !slices.Equal(got, want) {
			t.Errorf("dot edges %v, want %v", got, want)
		}

		// Identical re-push writes no second link.
		dataRepo := repoClient(t, r, strings.TrimPrefix(f.data, r.host+"/"))
		before := len(referrersOf(t, dataRepo, f.dataV1.Digest))
		var again pushLinksJSON
		p.c.okJSON(&again, "push", f.ftA, f.a2dir, "--dataset", f.data+":v1", "--run-id", "run-a2", "--key", p.key("release"))
		if again.Created || len(again.Links) != 1 || again.Links[0].Status != "present" || again.Links[0].Link != f.a2.Links[0].Link {
			t.Errorf("identical re-push: created %v, links %+v; want the present link %s", again.Created, again.Links, f.a2.Links[0].Link)
		}
		if after := len(referrersOf(t, dataRepo, f.dataV1.Digest)); after != before {
			t.Errorf("referrers of the dataset: %d before an identical re-push, %d after", before, after)
		}

		// A forged link, attached with the oras CLI, naming the base
		// model, which does not name the dataset: not listed.
		forged := t.TempDir()
		writeFile(t, filepath.Join(forged, "link.json"), []byte(`{"relation":"dataset","subject":"`+f.dataRef+`","repository":"`+f.base+`","digest":"`+f.baseV1.Digest+`","version":"v1"}`))
		p.c.in(forged).toolOK("oras", "attach", "--plain-http", "--artifact-type", "application/vnd.modelreg.link.v1+json",
			"--annotation", "dev.modelreg.link.relation=dataset", "--annotation", "dev.modelreg.link.repository="+f.base,
			"--annotation", "dev.modelreg.link.digest="+f.baseV1.Digest, f.dataRef, "link.json:application/vnd.modelreg.link.v1+json")
		// A link signed by the wrong key: ftC pushed with the rogue key.
		var c1 pushLinksJSON
		ftC := p.repository + "-ftc"
		p.c.okJSON(&c1, "push", ftC, pushDir(t, map[string]string{"README.md": "# c1", "model.safetensors": string(randomBytes(t, 512))}),
			"--dataset", f.dataRef, "--key", p.key("rogue"))
		res := p.c.ok(jsonArgs("lineage", []string{f.data + ":v1", "--downstream", "--key", p.pub("release")})...)
		decodeJSON(t, res, &g)
		if !slices.Equal(g.ids(), wantIDs) {
			t.Errorf("downstream with --key after a forged and a rogue link: %v, want %v", g.ids(), wantIDs)
		}
		reasons := map[string]string{}
		for _, d := range g.Dropped {
			reasons[d.Downstream] = d.Reason
		}
		if !strings.Contains(reasons[f.baseRef], "do not name") || !strings.Contains(reasons[at(ftC, c1.Digest)], "no valid signature") || len(g.Dropped) != 2 {
			t.Errorf("dropped links %+v: want the forged one (annotations do not name the dataset) and ftC's (no valid signature)", g.Dropped)
		}
		wantStderr(t, res, "dropped link")
		// Without --key the rogue-signed but true link counts; the forged one never.
		g = f.lineage(t, f.data+":v1", "--downstream")
		if got, want := g.repos(), sorted([]string{f.ftA, f.ftB, ftC}); !slices.Equal(got, want) {
			t.Errorf("downstream without --key: %v, want %v", got, want)
		}
	}, regOlareg, regDistribution, regDocker28)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// dotEdges lists "FROM -> TO" for every edge statement of a DOT file.
func dotEdges(f *ast.File) []string {
	var out []string
	unq := func(v ast.Vertex) string { return strings.Trim(v.String(), `"`) }
	for _, g := range f.Graphs {
		for _, s := range g.Stmts {
			if e, ok := s.(*ast.EdgeStmt); ok {
				out = append(out, unq(e.From)+" -> "+unq(e.To.Vertex))
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestLineageLinkRefused pushes through a proxy in front of distribution
// that refuses every write to the dataset's repository (403, as a
// registry answers a pusher without push rights there): the model
// version is pushed, the link is reported failed with the backfill
// command, and backfill through the registry itself writes it.
func TestLineageLinkRefused(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		dataRepo := p.repo + "-data"
		var ds pushLinksJSON
		p.c.okJSON(&ds, "push", r.ref(dataRepo, ""), pushDir(t, map[string]string{"train.csv": "a,b\n1,2\n"}))

		target, err := url.Parse("http://" + r.host)
		if err != nil {
			t.Fatal(err)
		}
		rp := httputil.NewSingleHostReverseProxy(target)
		var granted atomic.Bool // push rights on the dataset repository
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if !granted.Load() && req.Method != http.MethodGet && req.Method != http.MethodHead && strings.HasPrefix(req.URL.Path, "/v2/"+dataRepo+"/") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"no push rights on ` + dataRepo + `"}]}`))
				return
			}
			rp.ServeHTTP(w, req)
		}))
		t.Cleanup(proxy.Close)
		host := strings.TrimPrefix(proxy.URL, "http://")

		var pr pushLinksJSON
		res := p.c.ok(jsonArgs("push", []string{host + "/" + p.repo, pushDir(t, map[string]string{"README.md": "# m", "model.safetensors": string(randomBytes(t, 256))}),
			"--dataset", host + "/" + dataRepo + ":v1"})...)
		decodeJSON(t, res, &pr)
		if !pr.Created || pr.Version != "v1" || len(pr.Links) != 1 || pr.Links[0].Status != "failed" ||
			pr.Links[0].Backfill != "modelreg lineage backfill "+host+"/"+p.repo || !strings.Contains(pr.Links[0].Error, "403") {
			t.Fatalf("push through the refusing proxy: %+v", pr)
		}
		text := p.c.ok("push", host+"/"+p.repo, pushDir(t, map[string]string{"README.md": "# m2"}), "--dataset", host+"/"+dataRepo+":v1")
		wantStderr(t, text, "lineage link was not written", "modelreg lineage backfill "+host+"/"+p.repo)

		var g lineageJSON
		p.c.okJSON(&g, "lineage", r.ref(dataRepo, ":v1"), "--downstream")
		if len(g.Edges) != 0 {
			t.Errorf("downstream before backfill: %v, want none", g.edgeSet())
		}
		var bf backfillJSON
		res = p.c.fails([]int{1}, jsonArgs("lineage backfill", []string{host + "/" + p.repo})...)
		decodeJSON(t, res, &bf)
		if bf.Failed != 2 || bf.Written != 0 {
			t.Errorf("backfill through the proxy: %+v, want 2 failed", bf)
		}
		// Once the pusher may write there, the command push printed
		// writes both links.
		granted.Store(true)
		p.c.okJSON(&bf, "lineage backfill", strings.TrimPrefix(pr.Links[0].Backfill, "modelreg lineage backfill "))
		if bf.Written != 2 || bf.Failed != 0 {
			t.Errorf("backfill: %+v, want 2 written", bf)
		}
		p.c.okJSON(&g, "lineage", host+"/"+dataRepo+":v1", "--downstream")
		if len(g.Edges) != 2 {
			t.Errorf("downstream after backfill: %v, want both versions", g.edgeSet())
		}
	}, regDistribution)
}

// TestLineageMermaidAndDashboard renders `lineage -o mermaid` with the
// vendored mermaid.min.js in headless Chromium (mermaid.parse, then
// render to SVG), and loads the dashboard's version page of the dataset,
// which lists the downstream models and draws the graph as SVG.
func TestLineageMermaidAndDashboard(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		f := newLineageFixture(t, r)
		p := f.p
		p.c.ok("lineage", "backfill", f.ftB)
		src := p.c.ok("lineage", f.data+":v1", "--downstream", "-o", "mermaid").stdout
		up := p.c.ok("lineage", f.ftB+":v1", "-o", "mermaid").stdout
		// Labels with every character Mermaid treats specially, as the
		// Go API escapes them.
		hostile := `evil"]; click n0 "javascript:alert(1)" #quot; <b>x</b> |rel| ` + "`md`" + ` & \`
		tricky := (&modelreg.LineageGraph{Root: "a", Nodes: []modelreg.LineageNode{
			{ID: "a", Repository: hostile, Version: "v1", Kind: "dataset"}, {ID: "b", Repository: "b", Version: "v2", Kind: "model"}},
			Edges: []modelreg.LineageEdge{{From: "a", To: "b", Relation: "dataset|x"}}}).Mermaid()

		js, err := os.ReadFile(filepath.Join("..", "ui", "assets", "mermaid.min.js"))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "mermaid.min.js"), js)
		quote := func(s string) string {
			return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`", "$", "\\$").Replace(s) + "`"
		}
		page := `<!doctype html><html><body><div id="out"></div><div id="up"></div><div id="tricky"></div><script src="mermaid.min.js"></script><script>
mermaid.initialize({startOnLoad: false});
(async () => {
  const res = [];
  for (const [id, src] of [["out", ` + quote(src) + `], ["up", ` + quote(up) + `], ["tricky", ` + quote(tricky) + `]]) {
    try {
      const ok = await mermaid.parse(src);
      const {svg} = await mermaid.render("g" + id, src);
      document.getElementById(id).innerHTML = svg;
      res.push(id + ":parsed=" + (ok ? ok.diagramType : ok));
    } catch (e) { res.push(id + ":error=" + e); }
  }
  document.body.setAttribute("data-result", res.join(" "));
})();
</script></body></html>`
		writeFile(t, filepath.Join(dir, "page.html"), []byte(page))
		dom := chromium(t, "--virtual-time-budget=20000", "--dump-dom", "file://"+filepath.Join(dir, "page.html"))
		wantIn(t, "mermaid page", dom, `data-result="out:parsed=flowchart-v2 up:parsed=flowchart-v2 tricky:parsed=flowchart-v2"`, `<svg`)
		trickySVG := element(t, dom, `div id="tricky"`, "</svg>")
		wantIn(t, "rendered hostile label", trickySVG, `<p>evil___ click n0 _javascript:alert_1__ _quot_ _b_x_/b_ _rel_ _md_ _ `, "<p>dataset_x</p>", "<p>b:v2</p>")
		wantNotIn(t, "rendered hostile label", trickySVG, "<b>", `"javascript`)
		out := element(t, dom, `div id="out"`, "</svg>")
		for _, l := range []string{f.ftA + ":v1", f.ftA + ":v2", f.ftB + ":v1", f.ftB + ":v2", "dataset"} {
			wantIn(t, "rendered downstream graph", out, l)
		}

		base := startUI(t, p.c, f.data, f.ftA, f.ftB, f.base)
		vdom := chromium(t, "--virtual-time-budget=20000", "--dump-dom", base+"/version?repo="+url.QueryEscape(f.data)+"&v=v1")
		down := element(t, vdom, `ul id="downstream"`, "</ul>")
		wantIn(t, "downstream list", down, f.ftA+":v1", f.ftA+":v2", f.ftB+":v1", f.ftB+":v2")
		graph := element(t, vdom, `pre class="mermaid" id="lineage-mermaid"`, "</pre>")
		wantIn(t, "lineage graph", graph, `data-rendered="svg"`, "<svg", f.ftB+":v2")
		udom := chromium(t, "--dump-dom", base+"/version?repo="+url.QueryEscape(f.ftB)+"&v=v1")
		wantIn(t, "upstream list", element(t, udom, `ul id="upstream"`, "</ul>"), f.data+":v1", f.base+":v1", `data-kind="dataset">`+f.data+`:v1</a>`, `<a href="/version?repo=`)
	}, regOlareg)
}
