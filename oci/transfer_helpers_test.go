package oci

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/modelreg/modelreg/internal/faultproxy"
	"github.com/modelreg/modelreg/mediatypes"
)

// testRegistry is olareg in-process on 127.0.0.1 behind a fault proxy.
type testRegistry struct {
	addr  string // olareg itself
	proxy *faultproxy.Proxy
	root  string // storage folder for a StoreDir registry, "" for memory
}

// startRegistry starts olareg (in memory, or on disk when onDisk) and a
// fault proxy in front of it; both stop when the test ends.
func startRegistry(t *testing.T, onDisk bool, popts faultproxy.Options) *testRegistry {
	t.Helper()
	cfg := config.Config{Storage: config.ConfigStorage{StoreType: config.StoreMem}}
	tr := &testRegistry{}
	if onDisk {
		tr.root = t.TempDir()
		cfg.Storage = config.ConfigStorage{StoreType: config.StoreDir, RootDir: tr.root}
	}
	reg := olareg.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: reg}
	go srv.Serve(ln)
	tr.addr = ln.Addr().String()
	p, err := faultproxy.New("http://"+tr.addr, popts)
	if err != nil {
		t.Fatal(err)
	}
	tr.proxy = p
	t.Cleanup(func() {
		p.Close()
		srv.Close()
		reg.Close()
	})
	return tr
}

// repo opens REPO through the proxy with a retrying oras-go client, as
// the CLI does.
func (tr *testRegistry) repo(t *testing.T, name string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(tr.proxy.Addr() + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	r.Client = &auth.Client{Client: retry.DefaultClient, Cache: auth.NewCache()}
	return r
}

// direct opens REPO on olareg itself, bypassing the proxy.
func (tr *testRegistry) direct(t *testing.T, name string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(tr.addr + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	return r
}

// blobBytes fetches blob d of repository name directly from olareg.
func (tr *testRegistry) blobBytes(t *testing.T, name string, d digest.Digest) []byte {
	t.Helper()
	resp, err := http.Get("http://" + tr.addr + "/v2/" + name + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob %s of %s: %s", d, name, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hasBlob asks olareg directly whether repository name holds blob d.
func (tr *testRegistry) hasBlob(t *testing.T, name string, d digest.Digest) bool {
	t.Helper()
	resp, err := http.Head("http://" + tr.addr + "/v2/" + name + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// countRequests counts logged requests with method whose path contains
// part.
func (tr *testRegistry) countRequests(method, part string) int {
	n := 0
	for _, r := range tr.proxy.Requests() {
		if r.Method == method && strings.Contains(r.Path, part) {
			n++
		}
	}
	return n
}

// randomFile writes size random bytes to dir/name and returns the File.
func randomFile(t *testing.T, dir, name string, size int64) File {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return File{Path: name, Abs: p, Size: size, Mode: 0o644, Role: mediatypes.RoleOf(name)}
}

func fileDigest(t *testing.T, p string) digest.Digest {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(b)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fastRetry keeps tests quick.
var fastRetry = RetryOptions{MinWait: 5 * time.Millisecond, MaxAttempts: 6}

// recorder is a Progress that sums what it is told.
type recorder struct {
	mu      sync.Mutex
	started int
	total   int64
	files   map[string]*fileRec
	finish  []error
}

type fileRec struct {
	r       *recorder
	path    string
	size    int64
	bytes   int64
	skipped bool
	done    int
	err     error
}

func (r *recorder) Start(files int, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started++
	r.total += total
}

func (r *recorder) File(path string, size int64) FileProgress {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.files == nil {
		r.files = map[string]*fileRec{}
	}
	f := &fileRec{r: r, path: path, size: size}
	r.files[path] = f
	return f
}

func (r *recorder) Finish(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finish = append(r.finish, err)
}

func (f *fileRec) Add(n int64) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.bytes += n
}

func (f *fileRec) Skip() {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.skipped = true
}

func (f *fileRec) Done(err error) {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.done++
	f.err = err
}

// modelFiles turns pushed files into the ModelFiles of a pull.
func modelFiles(files []File) []ModelFile {
	var out []ModelFile
	for _, f := range files {
		out = append(out, ModelFile{Path: f.Path, Descriptor: ocispec.Descriptor{MediaType: f.Role.MediaType(), Digest: f.Digest, Size: f.Size}})
	}
	return out
}

// noLeftovers fails if dir or its parent holds a temporary pull folder.
func noLeftovers(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		ents, err := os.ReadDir(d)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.Contains(e.Name(), "modelreg-pull") || strings.Contains(e.Name(), "modelreg-replaced") {
				t.Errorf("temporary pull folder left behind: %s", filepath.Join(d, e.Name()))
			}
		}
	}
}

// sameContent fails unless the file at p holds want.
func sameContent(t *testing.T, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes (sha256 %s), want %d bytes (sha256 %s)", p, len(got), sha256Hex(got), len(want), sha256Hex(want))
	}
}

func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
