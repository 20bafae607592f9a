package e2e

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The dashboard tests of issue 12: `modelreg ui` over a real registry
// holding a dataset and a model with three versions, signatures,
// evaluations, a promotion and a hand-moved alias, loaded by headless
// Chromium.

// uiPolicy protects production: a release signature, promoted by the
// promoter key.
const uiPolicy = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub], minSigners: 1}
    promoters: {keys: [keys/promoter.pub]}
`

// chromiumBin is Debian's chromium, installed by .ci/run.
const chromiumBin = "/usr/bin/chromium"

// pageTimeout bounds one headless Chromium run (start, load, dump); a
// page renders in well under a second, Chromium's start takes a few on
// a loaded host.
const pageTimeout = 90 * time.Second

func TestUIDashboard(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		pol := p.policy("policy.yaml", uiPolicy)

		// The dataset the versions were trained on, in its own repository.
		dataDir := filepath.Join(t.TempDir(), "data")
		writeFile(t, filepath.Join(dataDir, "train.csv"), []byte("text,label\ngood,1\nbad,0\n"))
		var ds pushJSON
		p.c.okJSON(&ds, "push", p.repository+"-data", dataDir)
		dataset := p.repository + "-data@" + ds.Digest

		// extra are more files of a version, by name: v2 has a LICENSE
		// that v3 drops, v3 adds a tokenizer.
		extra := map[string]string{"two": "LICENSE", "three": "tokenizer.json"}
		// cards are the README.md model cards: v2's has a heading and a
		// list, v3's is hostile.
		cards := map[string]string{
			"two":   "---\nlicense: apache-2.0\n---\n# Sentiment two\n\nTrained on reviews.\n\n- fast\n- small\n",
			"three": "# Sentiment three\n\n<script>document.title='pwned'</script>\n\n<img src=x onerror=\"alert(1)\">\n\n[docs](javascript:alert(2))\n",
		}
		pushWith := func(label string, flags ...string) pushJSON {
			t.Helper()
			dir := filepath.Join(t.TempDir(), label)
			writeFile(t, filepath.Join(dir, "README.md"), []byte(cmp.Or(cards[label], "# "+label+"\n")))
			// v1's weights are not safetensors (no paramSize or dtype);
			// v2's and v3's are: 2048 float16 parameters.
			if label == "one" {
				writeFile(t, filepath.Join(dir, "model.safetensors"), randomBytes(t, 4096))
			} else {
				writeFile(t, filepath.Join(dir, "model.safetensors"), safetensorsF16(t, 2048))
			}
			writeFile(t, filepath.Join(dir, "config.json"), []byte(`{"hidden_size": 8}`))
			if name, ok := extra[label]; ok {
				writeFile(t, filepath.Join(dir, name), []byte(name+" of "+label+"\n"))
			}
			var out pushJSON
			p.c.okJSON(&out, "push", append([]string{p.repository, dir}, flags...)...)
			return out
		}
		v1 := pushWith("one", "--dataset", dataset, "--run-id", "run-1")
		v2 := pushWith("two", "--dataset", dataset, "--parent", p.ref(":v1"), "--run-id", "run-2",
			"--source", "https://git.example.com/team/sentiment", "--revision", "0123abcd")
		v3 := pushWith("three", "--parent", p.ref(":v2"), "--run-id", "run-3",
			"--annotation", "org.opencontainers.image.description=Reads the mood of product reviews; zebrafish edition",
			"--annotation", "org.opencontainers.image.created=2026-11-30T12:00:00Z")
		if v1.Version != "v1" || v2.Version != "v2" || v3.Version != "v3" {
			t.Fatalf("versions %s %s %s, want v1 v2 v3", v1.Version, v2.Version, v3.Version)
		}
		p.sign(v2.Digest)
		p.sign(v3.Digest)
		// A signature and an evaluation of v1 by a key the dashboard does
		// not trust: neither may count.
		p.c.ok("sign", p.byDigest(v1.Digest), "--key", p.key("rogue"))
		p.c.ok("attest", p.byDigest(v1.Digest), "--key", p.key("rogue"), "--metric", "accuracy=0.99")
		p.c.ok("attest", p.byDigest(v2.Digest), "--key", p.key("eval"), "--metric", "accuracy=0.91", "--metric", "f1=0.87")
		p.c.ok("attest", p.byDigest(v3.Digest), "--key", p.key("eval"), "--metric", "accuracy=0.95")
		p.promoteOK(p.ref(":v2"), "production", pol)
		// Approvals of v2: alice's (trusted) for production, and rogue's,
		// which the dashboard does not trust.
		p.c.ok("approve", p.byDigest(v2.Digest), "--key", p.key("alice"), "--for", "production", "--approver", "alice@example.com", "--comment", "looks good")
		p.c.ok("approve", p.byDigest(v2.Digest), "--key", p.key("rogue"), "--approver", "mallory@example.com")
		p.c.ok("alias", "set", p.ref(":v3"), "candidate")
		// production moved to v3 outside `modelreg promote`.
		p.orasTag("v3", "production")

		base := startUI(t, p.c, "--key", p.pub("release"), "--key", p.pub("eval"), "--key", p.pub("alice"), "--policy", pol,
			p.repository, p.repository+"-data")
		q := url.QueryEscape(p.repository)
		shots := artifactDir(t)

		t.Run("models", func(t *testing.T) {
			dom := loadPage(t, base+"/", filepath.Join(shots, "models.png"))
			row := element(t, dom, `tr data-repo="`+p.repository+`"`, "</tr>")
			wantIn(t, "models row", row, `>v3</a>`, `data-alias="latest"`, `data-alias="candidate"`, `production → v3`)
			wantIn(t, "models page", dom, `data-repo="`+p.repository+`-data"`)
			wantIn(t, "models row", row, `class="size">`)
			wantIn(t, "search box", dom, `form method="get" action="/" id="search"`, `name="q"`)
		})
		t.Run("models search", func(t *testing.T) {
			// "zebrafish" is only in v3's description, not in a name.
			dom := loadPage(t, base+"/?q=ZebraFish", filepath.Join(shots, "models-search.png"))
			row := element(t, dom, `tr data-repo="`+p.repository+`"`, "</tr>")
			wantIn(t, "search hit", row, `data-match="org.opencontainers.image.description"`, "zebrafish edition")
			wantNotIn(t, "search hit", row, `data-match="name"`)
			wantNotIn(t, "search results", dom, `data-repo="`+p.repository+`-data"`)
			wantIn(t, "search box", dom, `value="ZebraFish"`)
			dom = loadPage(t, base+"/?q=zebrafish+nosuchword", filepath.Join(shots, "models-search-none.png"))
			wantNotIn(t, "search without hits", dom, `data-repo="`)
			wantIn(t, "search without hits", dom, "No model matches.")
		})
		t.Run("model", func(t *testing.T) {
			dom := loadPage(t, base+"/model?repo="+q, filepath.Join(shots, "model.png"))
			wantIn(t, "versions header", element(t, dom, `table id="versions"`, "</tr>"), `>accuracy</th>`, `>f1</th>`, `>Format</th>`)
			r1 := element(t, dom, `tr data-version="v1"`, "</tr>")
			r2 := element(t, dom, `tr data-version="v2"`, "</tr>")
			r3 := element(t, dom, `tr data-version="v3"`, "</tr>")
			wantIn(t, "v2 row", r2, `data-badge="signed"`, `data-badge="attested"`, `promoted: production`, `data-metric="accuracy">0.91<`, `data-metric="f1">0.87<`, `>safetensors<`)
			wantNotIn(t, "v2 row", r2, `data-badge="hand-moved"`)
			wantIn(t, "v3 row", r3, `data-badge="signed"`, `hand-moved: production`, `data-alias="candidate"`, `data-alias="production"`, `data-alias="latest"`, `data-metric="accuracy">0.95<`)
			wantNotIn(t, "v3 row", r3, `data-badge="promoted"`)
			wantNotIn(t, "v1 row", r1, `data-badge=`)
			wantIn(t, "versions header", element(t, dom, `table id="versions"`, "</tr>"), `>Created</th>`, `>Params</th>`, `>Dtype</th>`)
			wantIn(t, "v3 row", r3, `data-col="created">2026-11-30T12:00:00Z<`, `data-col="format">safetensors<`, `data-col="params">2K<`, `data-col="dtype">float16<`)
			wantIn(t, "v1 row", r1, `data-col="created">—<`, `data-col="params">—<`, `data-col="dtype">—<`)
			// The chart: accuracy of v2 and v3 (v1's rogue 0.99 does not count).
			svg := element(t, dom, `svg id="chart"`, "</svg>")
			wantIn(t, "chart", svg, `data-metric="accuracy"`,
				`data-version="v2" data-value="0.91"><title>v2: accuracy = 0.91</title>`,
				`data-version="v3" data-value="0.95"><title>v3: accuracy = 0.95</title>`, `>v2</text>`, `>v3</text>`)
			if n := strings.Count(svg, `<g class="point"`); n != 2 {
				t.Errorf("chart has %d points, want 2 (v2, v3):\n%s", n, svg)
			}
			wantNotIn(t, "chart", svg, `data-version="v1"`, "0.99")
			domF1 := loadPage(t, base+"/model?repo="+q+"&metric=f1", filepath.Join(shots, "model-f1.png"))
			svg = element(t, domF1, `svg id="chart"`, "</svg>")
			if n := strings.Count(svg, `<g class="point"`); n != 1 || !strings.Contains(svg, `data-version="v2" data-value="0.87"`) {
				t.Errorf("f1 chart, want one point v2 = 0.87:\n%s", svg)
			}
			if !(strings.Index(dom, r3) < strings.Index(dom, r2) && strings.Index(dom, r2) < strings.Index(dom, r1)) {
				t.Errorf("versions are not listed newest first")
			}
		})
		t.Run("version", func(t *testing.T) {
			dom := loadPage(t, base+"/version?repo="+q+"&v=v2", filepath.Join(shots, "version.png"))
			wantIn(t, "digest", dom, `id="digest">`+v2.Digest+`<`)
			wantIn(t, "files", element(t, dom, `table id="files"`, "</table>"),
				`data-file="model.safetensors"><td>model.safetensors</td><td>weight</td>`,
				`data-file="README.md"><td>README.md</td><td>doc</td>`,
				`data-file="config.json"><td>config.json</td><td>weight.config</td>`)
			lin := element(t, dom, `table id="lineage"`, "</table>")
			wantIn(t, "lineage", lin, dataset, p.repository+"@"+v1.Digest, "run-2", "https://git.example.com/team/sentiment", "0123abcd")
			refs := element(t, dom, `table id="referrers"`, "</table>")
			wantIn(t, "referrers", refs, `data-kind="signature"`, p.keyID("release"), `data-kind="evaluation"`, "https://modelreg.dev/evaluation/v1", p.keyID("eval"), `data-kind="promotion"`)
			wantIn(t, "promotion records", element(t, dom, `table id="promotions"`, "</table>"), `data-alias="production"`)
			wantIn(t, "evaluations", element(t, dom, `table id="evaluations"`, "</table>"), `data-metric="accuracy">accuracy = 0.91<`)
			card := element(t, dom, `article class="card" id="model-card"`, "</article>")
			wantIn(t, "model card", card, `<h1>Sentiment two</h1>`, `<li>fast</li>`, `<li>small</li>`)
			wantNotIn(t, "model card", card, "license: apache-2.0") // front matter is not rendered as text
			wantIn(t, "card metadata", dom, "license: apache-2.0")
			appr := element(t, dom, `table id="approvals"`, "</table>")
			wantIn(t, "approvals", appr, `data-approver="alice@example.com"`, `<td>production</td>`, "looks good", p.keyID("alice"))
			wantNotIn(t, "approvals", appr, "mallory")
			wantIn(t, "referrers", refs, `data-kind="approval"`)
		})
		t.Run("hostile model card", func(t *testing.T) {
			dom := loadPage(t, base+"/version?repo="+q+"&v=v3", filepath.Join(shots, "version-hostile.png"))
			card := element(t, dom, `article class="card" id="model-card"`, "</article>")
			wantIn(t, "hostile card", card, `<h1>Sentiment three</h1>`, `>docs</a>`)
			wantNotIn(t, "hostile card", strings.ToLower(card), "<script", "onerror", "javascript:", "<img")
			wantNotIn(t, "hostile page", dom, "pwned", "<script")
		})
		t.Run("alias history", func(t *testing.T) {
			dom := loadPage(t, base+"/history?repo="+q, filepath.Join(shots, "history.png"))
			sec := element(t, dom, `section class="alias-history" data-alias="production"`, "</section>")
			wantIn(t, "production history", sec, `data-unexplained="production"`, `data-seq="1"`, `>v2</a>`, "keys/promoter.pub")
		})
		t.Run("compare", func(t *testing.T) {
			dom := loadPage(t, base+"/compare?repo="+q+"&a=v2&b=v3", filepath.Join(shots, "compare.png"))
			files := element(t, dom, `table id="file-changes"`, "</table>")
			wantIn(t, "file changes", files, `data-added="tokenizer.json"`, `data-removed="LICENSE"`, `data-changed="README.md"`, `data-changed="model.safetensors"`)
			wantNotIn(t, "file changes", files, `config.json`)
			wantIn(t, "metric changes", element(t, dom, `table id="metric-changes"`, "</table>"),
				`data-metric="accuracy"><td>accuracy</td><td>0.91</td><td>0.95</td>`, `data-metric="f1"><td>f1</td><td>0.87</td><td>–</td>`)
			wantIn(t, "annotation changes", element(t, dom, `table id="value-changes"`, "</table>"),
				`data-annotation="dev.modelreg.lineage.run.id"><td><code>dev.modelreg.lineage.run.id</code></td><td><code>run-2</code></td><td><code>run-3</code></td>`,
				`data-annotation="dev.modelreg.lineage.datasets"`, `data-annotation="dev.modelreg.lineage.parent"`)
		})
		t.Run("diff", func(t *testing.T) {
			var d struct {
				Added, Removed []struct{ Path string }
				Changed        []struct{ Path string }
				Unchanged      int
				Annotations    []struct{ Key, From, To string }
				Metrics        []struct {
					Name     string
					From, To *float64
				}
			}
			p.c.okJSON(&d, "diff", p.ref(":v2"), p.ref(":production"), "--key", p.pub("eval"))
			paths := func(fs []struct{ Path string }) string {
				var out []string
				for _, f := range fs {
					out = append(out, f.Path)
				}
				return strings.Join(out, ",")
			}
			if got := paths(d.Added); got != "tokenizer.json" {
				t.Errorf("diff added %q, want tokenizer.json", got)
			}
			if got := paths(d.Removed); got != "LICENSE" {
				t.Errorf("diff removed %q, want LICENSE", got)
			}
			if got := paths(d.Changed); got != "README.md,model.safetensors" {
				t.Errorf("diff changed %q, want README.md,model.safetensors", got)
			}
			if d.Unchanged != 1 {
				t.Errorf("diff unchanged %d, want 1 (config.json)", d.Unchanged)
			}
			var metrics []string
			for _, m := range d.Metrics {
				s := m.Name + ":"
				if m.From != nil {
					s += strconv.FormatFloat(*m.From, 'g', -1, 64)
				}
				s += ">"
				if m.To != nil {
					s += strconv.FormatFloat(*m.To, 'g', -1, 64)
				}
				metrics = append(metrics, s)
			}
			if got := strings.Join(metrics, " "); got != "accuracy:0.91>0.95 f1:0.87>" {
				t.Errorf("diff metrics %q, want accuracy:0.91>0.95 f1:0.87>", got)
			}
			var keys []string
			for _, a := range d.Annotations {
				keys = append(keys, a.Key)
			}
			want := "dev.modelreg.lineage.datasets,dev.modelreg.lineage.parent,dev.modelreg.lineage.run.id," +
				"org.opencontainers.image.base.digest,org.opencontainers.image.created,org.opencontainers.image.description," +
				"org.opencontainers.image.revision,org.opencontainers.image.source"
			if got := strings.Join(keys, ","); got != want {
				t.Errorf("diff annotations %s, want %s", got, want)
			}
			// Text output names the same changes.
			out := p.c.ok("diff", p.ref(":v2"), p.ref(":v3"), "--key", p.pub("eval")).stdout
			wantIn(t, "diff text", out, "+ tokenizer.json", "- LICENSE", "~ README.md", "~ accuracy: 0.91 → 0.95", "1 unchanged")
			// The same digest twice differs in nothing.
			var same struct{ Same bool }
			p.c.okJSON(&same, "diff", p.ref(":v3"), p.ref(":production"))
			if !same.Same {
				t.Errorf("diff of v3 and production (the same digest): same false")
			}
		})
		t.Run("api", func(t *testing.T) {
			var m struct {
				Versions []struct {
					Version string             `json:"version"`
					Metrics map[string]float64 `json:"metrics"`
					Badges  struct {
						Signed, Attested    bool
						Promoted, HandMoved []string
					} `json:"badges"`
				} `json:"versions"`
			}
			getJSON(t, base+"/api/model?repo="+q, &m)
			if len(m.Versions) != 3 {
				t.Fatalf("/api/model lists %d versions, want 3: %+v", len(m.Versions), m)
			}
			v3, v2, v1 := m.Versions[0], m.Versions[1], m.Versions[2]
			if v2.Version != "v2" || !v2.Badges.Signed || !v2.Badges.Attested || strings.Join(v2.Badges.Promoted, ",") != "production" || len(v2.Badges.HandMoved) != 0 || v2.Metrics["accuracy"] != 0.91 {
				t.Errorf("/api/model v2: %+v", v2)
			}
			if v3.Version != "v3" || strings.Join(v3.Badges.HandMoved, ",") != "production" || len(v3.Badges.Promoted) != 0 {
				t.Errorf("/api/model v3: %+v", v3)
			}
			if v1.Badges.Signed || v1.Badges.Attested || len(v1.Metrics) != 0 {
				t.Errorf("/api/model v1: %+v", v1)
			}
			resp, err := http.Get(base + "/api/model?repo=" + url.QueryEscape(r.host+"/not/configured"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("a repository the dashboard was not given: status %d, want 404", resp.StatusCode)
			}
		})
	}, regOlareg, regDistribution)
}

// startUI starts `modelreg ui --addr 127.0.0.1:0 ARGS...` and returns its
// base URL from the address it prints; the test's cleanup stops it.
func startUI(t *testing.T, c *cli, args ...string) string {
	t.Helper()
	return startPrinting(t, c, append([]string{"ui", "--addr", "127.0.0.1:0"}, args...), `dashboard at (http://\S+)/`)[0]
}

// startPrinting starts modelreg with args, waits until its stderr has
// matched each pattern (the first submatch of each, in order of patterns,
// is returned) and stops it with SIGINT (then SIGKILL after stopTimeout)
// in the test's cleanup. The test fails if modelreg exits first, with its
// stderr, or prints not all within readyTimeout.
func startPrinting(t *testing.T, c *cli, args []string, patterns ...string) []string {
	t.Helper()
	needModelreg(t)
	cmd := exec.Command(modelregBin, args...)
	cmd.Dir, cmd.Env, cmd.SysProcAttr = c.dir, c.env, childAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	res := make([]*regexp.Regexp, len(patterns))
	for i, p := range patterns {
		res[i] = regexp.MustCompile(p)
	}
	found := make(chan []string, 1)
	var log strings.Builder
	go func() {
		got, left, sent := make([]string, len(res)), len(res), false
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			for i, re := range res {
				if m := re.FindStringSubmatch(sc.Text()); m != nil && got[i] == "" {
					got[i] = m[1]
					left--
				}
			}
			if left == 0 && !sent {
				found <- got
				sent = true
			}
		}
		close(found)
	}()
	select {
	case got, ok := <-found:
		if !ok {
			t.Fatalf("modelreg %s exited before listening:\n%s", args[0], log.String())
		}
		return got
	case <-time.After(readyTimeout):
		t.Fatalf("modelreg %s did not print %q within %s", args[0], patterns, readyTimeout)
	}
	return nil
}

// artifactDir is where the screenshots go: t.ArtifactDir (kept with go
// test -artifacts).
func artifactDir(t *testing.T) string {
	return t.ArtifactDir()
}

// loadPage loads u in headless Chromium and returns the DOM after load,
// then saves a screenshot of the page to shot.
func loadPage(t *testing.T, u, shot string) string {
	t.Helper()
	dom := chromium(t, "--dump-dom", u)
	chromium(t, "--screenshot="+shot, "--window-size=1280,900", u)
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("no screenshot of %s at %s: %v", u, shot, err)
	} else {
		t.Logf("screenshot of %s: %s", u, shot)
	}
	if strings.Contains(dom, `id="error"`) {
		t.Fatalf("%s shows an error:\n%s", u, dom)
	}
	return dom
}

func chromium(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pageTimeout)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-proxy-server",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromiumBin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 4000))
	}
	return string(out)
}

// element returns the text of dom from the first occurrence of start to
// the next end, inclusive.
func element(t *testing.T, dom, start, end string) string {
	t.Helper()
	i := strings.Index(dom, "<"+start)
	if i < 0 {
		t.Fatalf("the page has no <%s…>:\n%s", start, tail(dom, 6000))
	}
	j := strings.Index(dom[i:], end)
	if j < 0 {
		t.Fatalf("<%s…> does not end with %s", start, end)
	}
	return dom[i : i+j+len(end)]
}

func wantIn(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not show %q:\n%s", what, sub, s)
		}
	}
}

func wantNotIn(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			t.Errorf("%s shows %q:\n%s", what, sub, s)
		}
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// safetensorsF16 is a valid safetensors file of one float16 tensor of n
// random parameters: push reads paramSize and precision from its header.
func safetensorsF16(t *testing.T, n int) []byte {
	t.Helper()
	hdr := []byte(`{"w":{"dtype":"F16","shape":[` + strconv.Itoa(n) + `],"data_offsets":[0,` + strconv.Itoa(2*n) + `]}}`)
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	out = append(out, hdr...)
	return append(out, randomBytes(t, 2*n)...)
}
