package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// allocators is how many AllocateVersion calls race for version tags.
const allocators = 12

// TestAllocateVersionConcurrent starts allocators goroutines at once, each
// allocating a version for its own manifest in one repository: every one
// gets its own vN, v1..v12, and each tag names the manifest of the caller
// it was given to. It runs on olareg as `modelreg serve` keeps it (on
// disk); behind a handler that applies each tag PUT 30 ms after it
// arrives (a pusher whose check-to-write window is 30 ms: the settle must
// outlast it, or two pushers are both given the tag); and behind one that
// hides each tag PUT from reads for 300 ms, six times MinSettle, as an
// eventually consistent registry does (the read-back must wait for the
// write to show before settling).
func TestAllocateVersionConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name            string
		writeDelay, lag time.Duration
	}{
		{"read-your-write", 0, 0},
		{"writes land 30ms late", 30 * time.Millisecond, 0},
		{"reads lag writes by 300ms", 0, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startLaggingRegistry(t, tc.writeDelay, tc.lag)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			repo := func() *remote.Repository {
				r, err := remote.NewRepository(addr + "/alloc/model")
				if err != nil {
					t.Fatal(err)
				}
				r.PlainHTTP = true
				return r
			}
			type manifest struct {
				desc ocispec.Descriptor
				b    []byte
			}
			ms := make([]manifest, allocators)
			for i := range ms {
				r := repo()
				cfg := []byte(fmt.Sprintf(`{"push":%d}`, i))
				cdesc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageConfig, cfg)
				if err := r.Push(ctx, cdesc, strings.NewReader(string(cfg))); err != nil {
					t.Fatal(err)
				}
				m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cdesc, Layers: []ocispec.Descriptor{}}
				b, _ := json.Marshal(m)
				ms[i] = manifest{content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, b), b}
			}
			got := make([]string, allocators)
			errs := make([]error, allocators)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range ms {
				wg.Go(func() {
					<-start
					got[i], errs[i] = AllocateVersion(ctx, repo(), ms[i].desc, ms[i].b, VersionAllocation{})
				})
			}
			close(start)
			wg.Wait()
			byTag := map[string]int{}
			for i, v := range got {
				if errs[i] != nil {
					t.Fatalf("allocator %d: %v", i, errs[i])
				}
				if j, dup := byTag[v]; dup {
					t.Fatalf("allocators %d and %d were both given %s", j, i, v)
				}
				byTag[v] = i
			}
			time.Sleep(tc.lag) // let the last writes show
			r := repo()
			for n := 1; n <= allocators; n++ {
				v := VersionTag(n)
				i, ok := byTag[v]
				if !ok {
					t.Errorf("no allocator was given %s: %v", v, got)
					continue
				}
				d, err := r.Resolve(ctx, v)
				if err != nil {
					t.Fatalf("resolving %s: %v", v, err)
				}
				if d.Digest != ms[i].desc.Digest {
					t.Errorf("%s names %s, but it was given to allocator %d, whose manifest is %s", v, d.Digest, i, ms[i].desc.Digest)
				}
			}
		})
	}
}

// startLaggingRegistry serves olareg on disk on 127.0.0.1 and returns its
// address. A manifest PUT waits writeDelay before olareg applies it; with
// lag > 0, a manifest PUT is hidden from reads of its tag (GET, HEAD,
// tags/list) for lag after the registry answered it.
func startLaggingRegistry(t *testing.T, writeDelay, lag time.Duration) string {
	t.Helper()
	reg := olareg.New(config.Config{Storage: config.ConfigStorage{StoreType: config.StoreDir, RootDir: filepath.Join(t.TempDir(), "registry")}})
	var mu sync.Mutex
	hidden := map[string]time.Time{} // tag → when it shows
	isHidden := func(tag string) bool {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Before(hidden[tag])
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, tag, isManifest := strings.Cut(r.URL.Path, "/manifests/")
		if isManifest && r.Method == http.MethodPut {
			time.Sleep(writeDelay)
		}
		switch {
		case lag > 0 && isManifest && r.Method == http.MethodPut:
			rec := &statusRecorder{ResponseWriter: w}
			reg.ServeHTTP(rec, r)
			if rec.code/100 == 2 {
				mu.Lock()
				hidden[tag] = time.Now().Add(lag)
				mu.Unlock()
			}
		case lag > 0 && isManifest && isHidden(tag):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
		case lag > 0 && strings.HasSuffix(r.URL.Path, "/tags/list"):
			rec := &bodyRecorder{header: http.Header{}}
			reg.ServeHTTP(rec, r)
			var list struct {
				Name string   `json:"name"`
				Tags []string `json:"tags"`
			}
			if rec.code != http.StatusOK || json.Unmarshal(rec.body, &list) != nil {
				copyHeader(w.Header(), rec.header)
				w.WriteHeader(rec.code)
				w.Write(rec.body)
				return
			}
			shown := list.Tags[:0]
			for _, tg := range list.Tags {
				if !isHidden(tg) {
					shown = append(shown, tg)
				}
			}
			list.Tags = shown
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(list)
		default:
			reg.ServeHTTP(w, r)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		reg.Close()
	})
	return ln.Addr().String()
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// bodyRecorder keeps a whole response in memory.
type bodyRecorder struct {
	header http.Header
	code   int
	body   []byte
}

func (b *bodyRecorder) Header() http.Header { return b.header }
func (b *bodyRecorder) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}
func (b *bodyRecorder) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	b.body = append(b.body, p...)
	return len(p), nil
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}
