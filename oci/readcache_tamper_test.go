package oci

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// tamperer sits in front of olareg and, while on, answers reads by digest
// with wrong content: GET bodies with one byte flipped (same length), HEAD
// with a wrong Docker-Content-Digest and Content-Length.
type tamperer struct {
	next http.Handler
	on   atomic.Bool
}

type flipWriter struct {
	http.ResponseWriter
	done bool
}

func (w *flipWriter) Write(b []byte) (int, error) {
	if !w.done && len(b) > 0 {
		c := append([]byte(nil), b...)
		c[0] ^= 0x20
		w.done = true
		return w.ResponseWriter.Write(c)
	}
	return w.ResponseWriter.Write(b)
}

func (t *tamperer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !t.on.Load() || !byDigestPath().MatchString(r.URL.Path) {
		t.next.ServeHTTP(w, r)
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("ab", 32))
		w.Header().Set("Content-Length", strconv.Itoa(7))
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.WriteHeader(http.StatusOK)
		return
	}
	t.next.ServeHTTP(&flipWriter{ResponseWriter: w}, r)
}

// A registry that answers a digest with other bytes (or, to HEAD, other
// headers) is not believed for ever: the wrong answer is not kept, and
// once the registry answers right, reads by that digest succeed.
func TestReadCacheKeepsNoWrongAnswer(t *testing.T) {
	reg := olareg.New(config.Config{Storage: config.ConfigStorage{StoreType: config.StoreMem}})
	tp := &tamperer{next: reg}
	srv := httptest.NewServer(tp)
	t.Cleanup(func() { srv.Close(); _ = reg.Close() })
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	c, err := NewClient(ClientOptions{PlainHTTP: true, ReadCache: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ParseReference(host + "/cache/tamper:v1")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := c.Repository(ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte(`{"config":{"format":"safetensors"}}`)
	cfgDesc := content.NewDescriptorFromBytes("application/vnd.cncf.model.config.v1+json", cfg)
	if err := repo.Push(ctx, cfgDesc, strings.NewReader(string(cfg))); err != nil {
		t.Fatal(err)
	}
	man, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.cncf.model.manifest.v1+json",
		oras.PackManifestOptions{ConfigDescriptor: &cfgDesc})
	if err != nil {
		t.Fatal(err)
	}
	tp.on.Store(true)
	for range 2 {
		if _, err := content.FetchAll(ctx, repo.Blobs(), cfgDesc); err == nil {
			t.Error("a blob with a flipped byte was accepted")
		}
		if _, err := content.FetchAll(ctx, repo, man); err == nil {
			t.Error("a manifest with a flipped byte was accepted")
		}
		_, _ = repo.Resolve(ctx, man.Digest.String())
		_, _ = repo.Blobs().Resolve(ctx, cfgDesc.Digest.String())
	}
	tp.on.Store(false)
	if b, err := content.FetchAll(ctx, repo.Blobs(), cfgDesc); err != nil || string(b) != string(cfg) {
		t.Errorf("config blob once the registry is right: %q %v", b, err)
	}
	if d, err := repo.Resolve(ctx, man.Digest.String()); err != nil || d.Digest != man.Digest || d.Size != man.Size {
		t.Errorf("HEAD of the manifest once the registry is right: %+v %v, want %s (%d bytes)", d, err, man.Digest, man.Size)
	}
	if d, err := repo.Blobs().Resolve(ctx, cfgDesc.Digest.String()); err != nil || d.Size != cfgDesc.Size {
		t.Errorf("HEAD of the config blob once the registry is right: %+v %v, want %d bytes", d, err, cfgDesc.Size)
	}
	if _, err := content.FetchAll(ctx, repo, man); err != nil {
		t.Errorf("manifest once the registry is right: %v", err)
	}
}
