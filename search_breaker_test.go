package modelreg

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
)

// A catalog can list repositories the caller may not read (registries
// list every name to an administrator-scoped token, or keep the catalog
// stale): each is a failure entry and the others are still searched.
// olareg sits behind a handler that adds the catalog and refuses
// team/secret with 403 DENIED.
func TestSearchCatalogWithUnreadableRepository(t *testing.T) {
	reg := olareg.New(config.Config{Storage: config.ConfigStorage{StoreType: config.StoreMem}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/_catalog":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"repositories":["team/open","team/secret","team/Bad..Name"]}`))
		case strings.HasPrefix(r.URL.Path, "/v2/team/secret/"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`))
		default:
			reg.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(func() { srv.Close(); _ = reg.Close() })
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	c, err := New(Options{NoDigestCache: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, host+"/team/open", dir, PushOptions{Annotations: map[string]string{"org.opencontainers.image.description": "reviews"}}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(ctx, "reviews", SearchOptions{Registry: host})
	if err != nil {
		t.Fatalf("search aborted: %v", err)
	}
	if res.Source != SearchSourceCatalog || res.Searched != 1 || len(res.Hits) != 1 || res.Hits[0].Repository != host+"/team/open" {
		t.Errorf("search: %+v, want one hit in team/open from the catalog", res)
	}
	failed := map[string]string{}
	for _, f := range res.Failures {
		failed[strings.TrimPrefix(f.Repository, host+"/")] = f.Error
	}
	if len(failed) != 2 || !strings.Contains(failed["team/secret"], "denied") || failed["team/Bad..Name"] == "" {
		t.Errorf("failures %v, want team/secret (denied) and team/Bad..Name (not a repository name)", failed)
	}
}
