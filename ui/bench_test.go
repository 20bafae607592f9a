package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/internal/distconfig"
)

// benchVersions is the size of the model the issue asks the page time of.
const benchVersions = 1000

// benchModel serves an in-memory olareg holding one model of n versions
// (see modelOn).
func benchModel(b testing.TB, n int) (*modelreg.Client, string, *counter) {
	b.Helper()
	reg := olareg.New(config.Config{Storage: config.ConfigStorage{StoreType: config.StoreMem}})
	b.Cleanup(func() { _ = reg.Close() })
	return modelOn(b, n, reg)
}

// distributionModel starts CNCF distribution v3 (.tools/bin/registry,
// built by `make tools`) on a free port, on disk under a temporary
// folder, and puts one model of n versions in it (see modelOn); the
// registry is stopped when b ends.
func distributionModel(b testing.TB, n int) (*modelreg.Client, string, *counter) {
	b.Helper()
	bin, err := filepath.Abs("../.tools/bin/registry")
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		b.Skipf("distribution v3 not built (%v): run make tools", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(distconfig.YAML(addr, filepath.Join(dir, "data"))), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	for _, kv := range os.Environ() { // distribution reads REGISTRY_* as configuration
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("distribution on %s not ready after 10 s: %v", addr, err)
		}
	}
	u, _ := url.Parse("http://" + addr)
	return modelOn(b, n, httputil.NewSingleHostReverseProxy(u))
}

// modelOn serves registry (through a request counter, on a free port of
// 127.0.0.1) holding one model of n versions: v1 pushed by Client.Push,
// v2…vn copies of its manifest that differ in one annotation (so each is
// its own digest), tagged with oras-go. It returns a Client with a read
// cache, the repository and the counter.
func modelOn(b testing.TB, n int, registry http.Handler) (*modelreg.Client, string, *counter) {
	b.Helper()
	cnt := &counter{next: registry}
	srv := httptest.NewServer(cnt)
	b.Cleanup(srv.Close)
	repo := strings.TrimPrefix(srv.URL, "http://") + "/bench/model"
	cl, err := modelreg.New(modelreg.Options{PlainHTTP: true, ReadCache: DefaultReadCache})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for name, data := range map[string]string{"README.md": "# bench\n", "model.safetensors": strings.Repeat("w", 4096), "config.json": "{}"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := cl.Push(ctx, repo, dir, modelreg.PushOptions{}); err != nil {
		b.Fatal(err)
	}
	rc, err := remote.NewRepository(repo)
	if err != nil {
		b.Fatal(err)
	}
	rc.PlainHTTP = true
	desc, rd, err := rc.FetchReference(ctx, "v1")
	if err != nil {
		b.Fatal(err)
	}
	raw, err := content.ReadAll(rd, desc)
	rd.Close()
	if err != nil {
		b.Fatal(err)
	}
	for i := 2; i <= n; i++ {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			b.Fatal(err)
		}
		ann, _ := m["annotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
		}
		ann["dev.modelreg.lineage.run.id"] = fmt.Sprintf("run-%d", i)
		m["annotations"] = ann
		data, err := json.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if err := rc.PushReference(ctx, d, strings.NewReader(string(data)), fmt.Sprintf("v%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	cnt.reset()
	return cl, repo, cnt
}

func getPage(b *testing.B, s *Server, u string) {
	b.Helper()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, u, nil))
	if w.Code != http.StatusOK {
		body, _ := io.ReadAll(w.Body)
		b.Fatalf("GET %s: %d\n%s", u, w.Code, body)
	}
}

// BenchmarkModelPage is the time of the model page (first page of 50
// versions) of a model with 1,000 versions: cold (a new Server and a new
// Client, nothing cached), warm (the second view within Refresh) and
// refreshed (every view after Refresh: tags and the rows' referrers read
// again, manifests and configs from the read cache), with the registry
// requests of one page load.
//
//	go test -run '^$' -bench ModelPage -benchtime 3x ./ui/
func BenchmarkModelPage(b *testing.B) {
	cl, repo, cnt := benchModel(b, benchVersions)
	modelPage(b, cl, repo, cnt)
}

// BenchmarkModelPageDistribution is BenchmarkModelPage on CNCF
// distribution v3 (filesystem storage, through a local reverse proxy that
// counts requests).
func BenchmarkModelPageDistribution(b *testing.B) {
	cl, repo, cnt := distributionModel(b, benchVersions)
	modelPage(b, cl, repo, cnt)
}

func modelPage(b *testing.B, cl *modelreg.Client, repo string, cnt *counter) {
	u := "/model?repo=" + url.QueryEscape(repo)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			cl, err := modelreg.New(modelreg.Options{PlainHTTP: true, ReadCache: DefaultReadCache})
			if err != nil {
				b.Fatal(err)
			}
			s, err := New(cl, Options{Repositories: []string{repo}})
			if err != nil {
				b.Fatal(err)
			}
			cnt.reset()
			getPage(b, s, u)
		}
		b.ReportMetric(float64(cnt.total()), "requests/op")
		b.Logf("cold: %s", cnt)
	})
	b.Run("warm", func(b *testing.B) {
		s, err := New(cl, Options{Repositories: []string{repo}})
		if err != nil {
			b.Fatal(err)
		}
		getPage(b, s, u)
		for b.Loop() {
			cnt.reset()
			getPage(b, s, u)
		}
		b.ReportMetric(float64(cnt.total()), "requests/op")
		b.Logf("warm: %s", cnt)
	})
	b.Run("refreshed", func(b *testing.B) {
		const refresh = 200 * time.Millisecond
		s, err := New(cl, Options{Repositories: []string{repo}, Refresh: refresh})
		if err != nil {
			b.Fatal(err)
		}
		getPage(b, s, u)
		for b.Loop() {
			b.StopTimer()
			time.Sleep(refresh) // the tags and rows expire, not the history (no tag moved)
			b.StartTimer()
			cnt.reset()
			getPage(b, s, u)
		}
		b.ReportMetric(float64(cnt.total()), "requests/op")
		b.Logf("refreshed: %s", cnt)
	})
}

// counter counts the requests a registry answers, by kind, for the
// requests-per-page numbers of the benchmark.
type counter struct {
	next http.Handler
	mu   sync.Mutex
	n    map[string]int
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[requestKind(r)]++
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

// requestKind names a registry request by method and API: "GET tags",
// "HEAD manifest by tag", "GET referrers", …
func requestKind(r *http.Request) string {
	p := r.URL.Path
	kind := "other"
	switch {
	case p == "/v2/" || p == "/v2":
		kind = "ping"
	case strings.HasSuffix(p, "/tags/list"):
		kind = "tags"
	case strings.Contains(p, "/referrers/"):
		kind = "referrers"
	case strings.Contains(p, "/manifests/sha256:"):
		kind = "manifest by digest"
	case strings.Contains(p, "/manifests/"):
		kind = "manifest by tag"
	case strings.Contains(p, "/blobs/"):
		kind = "blob"
	}
	return r.Method + " " + kind
}

func (c *counter) reset() {
	c.mu.Lock()
	c.n = map[string]int{}
	c.mu.Unlock()
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := 0
	for _, v := range c.n {
		t += v
	}
	return t
}

// String lists the counts by kind, sorted.
func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ks []string
	for k := range c.n {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var sb strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&sb, "%s: %d; ", k, c.n[k])
	}
	return sb.String()
}
