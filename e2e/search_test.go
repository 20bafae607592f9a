package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// searchJSON is what `modelreg search -o json` prints.
type searchJSON struct {
	Query    string `json:"query"`
	Source   string `json:"source"`
	Searched int    `json:"searched"`
	Hits     []struct {
		Repository string `json:"repository"`
		Version    string `json:"version"`
		Matches    []struct{ Field, Value string }
	} `json:"hits"`
	Error *struct{ Code, Message string } `json:"error"`
}

func (s searchJSON) repos() []string {
	var out []string
	for _, h := range s.Hits {
		out = append(out, h.Repository)
	}
	return out
}

// TestSearch runs `modelreg search` on registries with a catalog
// (distribution v3, docker-registry 2.8), without one (olareg) and behind
// a proxy that refuses it (403, as Docker Hub and the clouds do).
func TestSearch(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		// A word no other test's model holds, in the description of the
		// latest version of model a only; b has it in an older version.
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		word := "okapi" + hex.EncodeToString(b)
		name := repoName(t)
		a, other := r.ref(name+"-a", ""), r.ref(name+"-b", "")
		push := func(repo, label string, flags ...string) {
			dir := filepath.Join(t.TempDir(), label)
			writeFile(t, filepath.Join(dir, "README.md"), []byte("# "+label+"\n"))
			c.ok(append([]string{"push", repo, dir}, flags...)...)
		}
		push(a, "a1")
		push(a, "a2", "--annotation", "org.opencontainers.image.description=Sentiment of "+word+" reviews",
			"--annotation", "org.opencontainers.image.licenses=Apache-2.0")
		push(other, "b1", "--annotation", "org.opencontainers.image.description=old "+word)
		push(other, "b2", "--annotation", "org.opencontainers.image.description=a newer model")

		check := func(t *testing.T, s searchJSON, source string, want ...string) {
			t.Helper()
			if s.Source != source || !slices.Equal(s.repos(), want) {
				t.Fatalf("search %q: source %s, hits %v; want %s, %v", s.Query, s.Source, s.repos(), source, want)
			}
		}
		var s searchJSON
		if r.name == regOlareg {
			res := c.fails([]int{exitError}, "search", word, "--registry", r.host, "-o", "json")
			decodeJSON(t, res, &s)
			if s.Error == nil || s.Error.Code != "unsupported" || !strings.Contains(s.Error.Message, "no catalog") || !strings.Contains(s.Error.Message, "--repo") {
				t.Fatalf("search on olareg without --repo: %+v, want code unsupported saying to name --repo", s.Error)
			}
			wantIn(t, "stderr", res.stderr, "has no catalog API", "--repo "+r.host+"/REPO")
			s = searchJSON{}
			c.okJSON(&s, "search", word, "--registry", r.host, "--repo", a, "--repo", other)
			check(t, s, "repositories", a)
		} else {
			c.okJSON(&s, "search", word, "--registry", r.host)
			check(t, s, "catalog", a)
		}
		if h := s.Hits[0]; h.Version != "v2" || len(h.Matches) != 1 || h.Matches[0].Field != "org.opencontainers.image.description" {
			t.Errorf("hit %+v, want v2 matched by its description only", h)
		}
		// Every word must match, in any field, in any case.
		s = searchJSON{}
		c.okJSON(&s, "search", strings.ToUpper(word)+" apache", "--repo", a, "--repo", other)
		check(t, s, "repositories", a)
		s = searchJSON{}
		c.okJSON(&s, "search", word+" nosuchword", "--repo", a, "--repo", other)
		check(t, s, "repositories")
		// The name matches too; repositories also come from the environment.
		s = searchJSON{}
		c.withEnv("MODELREG_SEARCH_REPOS="+a+","+other).okJSON(&s, "search", name+"-b")
		check(t, s, "repositories", other)
		out := c.ok("search", word, "--repo", a, "--repo", other).stdout
		wantIn(t, "text output", out, "MODEL", a, "v2", "org.opencontainers.image.description=Sentiment of "+word)
		c.fails([]int{exitUsage}, "search", word)

		if r.name == regDistribution {
			t.Run("catalog refused", func(t *testing.T) {
				proxy := refusingCatalog(t, r.host)
				var s searchJSON
				res := c.fails([]int{exitError}, "search", word, "--registry", proxy, "-o", "json")
				decodeJSON(t, res, &s)
				if s.Error == nil || s.Error.Code != "unsupported" || !strings.Contains(s.Error.Message, "refuses its catalog") {
					t.Fatalf("search behind a refused catalog: %+v, want code unsupported", s.Error)
				}
				s = searchJSON{}
				viaProxy := strings.Replace(a, r.host, proxy, 1)
				c.okJSON(&s, "search", word, "--registry", proxy, "--repo", viaProxy)
				check(t, s, "repositories", viaProxy)
			})
		}
	}, regOlareg, regDistribution, regDocker28)
}

// refusingCatalog is a proxy in front of host that answers /v2/_catalog
// with 403 DENIED and passes everything else on; it returns its
// 127.0.0.1:PORT, stopped by the test's cleanup.
func refusingCatalog(t *testing.T, host string) string {
	t.Helper()
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/_catalog" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"catalog is for administrators"}]}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestServeUI starts `modelreg serve --ui` and reads the dashboard of the
// repositories its embedded registry holds, one pushed after the first
// view included.
func TestServeUI(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	regHost, base := startServeUI(t, c, "--root", filepath.Join(t.TempDir(), "data"))
	dir := filepath.Join(t.TempDir(), "model")
	writeFile(t, filepath.Join(dir, "README.md"), []byte("# served\n\n- one\n"))
	writeFile(t, filepath.Join(dir, "model.safetensors"), safetensorsF16(t, 64))
	first := regHost + "/team/served"
	c.ok("push", first, dir)

	models := func() []string {
		var ms []struct {
			Repository string `json:"repository"`
			Latest     *struct{ Version string }
		}
		getJSON(t, base+"/api/models", &ms)
		var out []string
		for _, m := range ms {
			if m.Latest == nil {
				t.Fatalf("/api/models: %s without a latest version: %+v", m.Repository, ms)
			}
			out = append(out, m.Repository+":"+m.Latest.Version)
		}
		return out
	}
	if got := models(); !slices.Equal(got, []string{first + ":v1"}) {
		t.Fatalf("/api/models lists %v, want [%s:v1]", got, first)
	}
	var v struct {
		Card *struct{ Path string } `json:"card"`
	}
	getJSON(t, base+"/api/version?repo="+url.QueryEscape(first)+"&v=v1", &v)
	if v.Card == nil || v.Card.Path != "README.md" {
		t.Errorf("/api/version: card %+v, want README.md", v.Card)
	}
	resp, err := http.Get(base + "/api/model?repo=" + url.QueryEscape(regHost+"/team/absent"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a repository the registry does not hold: status %d, want 404", resp.StatusCode)
	}

	// A model pushed now shows after the dashboard's refresh (10 s).
	second := regHost + "/team/nested/later"
	c.ok("push", second, dir)
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(models(), second+":v1") {
		if time.Now().After(deadline) {
			t.Fatalf("/api/models still lists %v 30 s after %s was pushed", models(), second)
		}
		time.Sleep(time.Second)
	}
}

// startServeUI starts `modelreg serve --addr 127.0.0.1:0 --ui --ui-addr
// 127.0.0.1:0 ARGS...` and returns the registry's HOST:PORT and the
// dashboard's base URL from what it prints; the test's cleanup stops it.
func startServeUI(t *testing.T, c *cli, args ...string) (regHost, base string) {
	t.Helper()
	got := startPrinting(t, c, append([]string{"serve", "--addr", "127.0.0.1:0", "--ui", "--ui-addr", "127.0.0.1:0"}, args...),
		`listening on (\S+),`, `dashboard at (http://\S+)/`)
	if _, _, err := net.SplitHostPort(got[0]); err != nil {
		t.Fatalf("registry address %q: %v", got[0], err)
	}
	return got[0], got[1]
}
