package oci

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// kindCounter counts the requests olareg answers by method and path kind.
type kindCounter struct {
	next http.Handler
	mu   sync.Mutex
	n    map[string]int
}

func (c *kindCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := r.Method + " tag"
	if byDigestPath().MatchString(r.URL.Path) {
		k = r.Method + " digest"
	}
	c.mu.Lock()
	c.n[k]++
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

func (c *kindCounter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// Manifests and blobs read by digest are answered from the read cache
// after the first read; reads by tag always reach the registry; with no
// ReadCache every read does.
func TestReadCacheKeepsDigestReadsOnly(t *testing.T) {
	reg := olareg.New(config.Config{Storage: config.ConfigStorage{StoreType: config.StoreMem}})
	cnt := &kindCounter{next: reg, n: map[string]int{}}
	srv := httptest.NewServer(cnt)
	t.Cleanup(func() { srv.Close(); _ = reg.Close() })
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	for _, size := range []int64{64 << 20, 0} {
		c, err := NewClient(ClientOptions{PlainHTTP: true, ReadCache: size})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := ParseReference(host + "/cache/test:v1")
		if err != nil {
			t.Fatal(err)
		}
		repo, err := c.Repository(ref)
		if err != nil {
			t.Fatal(err)
		}
		cfg := []byte(`{"config":{}}`)
		cfgDesc := content.NewDescriptorFromBytes("application/vnd.cncf.model.config.v1+json", cfg)
		if err := repo.Push(ctx, cfgDesc, strings.NewReader(string(cfg))); err != nil && !strings.Contains(err.Error(), "exists") {
			t.Fatal(err)
		}
		man, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.cncf.model.manifest.v1+json",
			oras.PackManifestOptions{ConfigDescriptor: &cfgDesc})
		if err != nil {
			t.Fatal(err)
		}
		if err := repo.Tag(ctx, man, "v1"); err != nil {
			t.Fatal(err)
		}
		cnt.mu.Lock()
		cnt.n = map[string]int{}
		cnt.mu.Unlock()
		for range 3 {
			if _, err := content.FetchAll(ctx, repo, man); err != nil {
				t.Fatal(err)
			}
			if _, err := content.FetchAll(ctx, repo.Blobs(), cfgDesc); err != nil {
				t.Fatal(err)
			}
			if _, err := repo.Resolve(ctx, man.Digest.String()); err != nil {
				t.Fatal(err)
			}
			if d, err := repo.Resolve(ctx, "v1"); err != nil || d.Digest != man.Digest {
				t.Fatalf("resolving v1: %v %v", d.Digest, err)
			}
		}
		// Only the first blob GET: Tag's own GET of the manifest filled
		// the cache, and a HEAD is answered from a kept GET.
		wantDigest := 1
		if size == 0 {
			wantDigest = 3 * 3
		}
		if got := cnt.get("GET digest") + cnt.get("HEAD digest"); got != wantDigest {
			t.Errorf("ReadCache %d: %d reads by digest reached the registry, want %d", size, got, wantDigest)
		}
		if got := cnt.get("HEAD tag"); got != 3 {
			t.Errorf("ReadCache %d: %d HEADs of v1 reached the registry, want all 3 (a tag can move)", size, got)
		}
	}
}

// A body larger than the whole budget is passed through and not kept.
func TestReadCacheBudget(t *testing.T) {
	rc := newReadCache(10)
	rc.add("a", &cachedResponse{header: http.Header{}, body: make([]byte, 11)})
	if rc.entries.Len() != 0 || rc.size.Load() != 0 {
		t.Fatalf("an 11-byte body in a 10-byte cache was kept: %d entries, %d bytes", rc.entries.Len(), rc.size.Load())
	}
	rc.add("b", &cachedResponse{header: http.Header{}, body: make([]byte, 6)})
	rc.add("c", &cachedResponse{header: http.Header{}, body: make([]byte, 6)})
	if rc.entries.Contains("b") || !rc.entries.Contains("c") || rc.size.Load() != 6 {
		t.Fatalf("after two 6-byte bodies in 10 bytes: b kept %v, c kept %v, %d bytes; want only c, 6 bytes",
			rc.entries.Contains("b"), rc.entries.Contains("c"), rc.size.Load())
	}
}
