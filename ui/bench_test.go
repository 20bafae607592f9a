package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg"
)

// benchVersions is the size of the model the issue asks the page time of.
const benchVersions = 1000

// benchModel serves an in-memory olareg holding one model of n versions:
// v1 pushed by Client.Push, v2…vn copies of its manifest that differ in
// one annotation (so each is its own digest), tagged with oras-go.
func benchModel(b *testing.B, n int) (*modelreg.Client, string) {
	b.Helper()
	reg := olareg.New(config.Config{Storage: config.ConfigStorage{StoreType: config.StoreMem}})
	srv := httptest.NewServer(reg)
	b.Cleanup(func() { srv.Close(); _ = reg.Close() })
	repo := strings.TrimPrefix(srv.URL, "http://") + "/bench/model"
	cl, err := modelreg.New(modelreg.Options{PlainHTTP: true})
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
	return cl, repo
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
// versions) of a model with 1,000 versions: cold (a new Server, nothing
// cached) and warm (the second view within Refresh).
//
//	go test -run '^$' -bench ModelPage -benchtime 3x ./ui/
func BenchmarkModelPage(b *testing.B) {
	cl, repo := benchModel(b, benchVersions)
	u := "/model?repo=" + url.QueryEscape(repo)
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			s, err := New(cl, Options{Repositories: []string{repo}})
			if err != nil {
				b.Fatal(err)
			}
			getPage(b, s, u)
		}
	})
	b.Run("warm", func(b *testing.B) {
		s, err := New(cl, Options{Repositories: []string{repo}})
		if err != nil {
			b.Fatal(err)
		}
		getPage(b, s, u)
		for b.Loop() {
			getPage(b, s, u)
		}
	})
}
