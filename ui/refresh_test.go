package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote"
)

// An alias moved by another client (oras-go, as `oras tag` does) shows on
// the model page once Refresh has passed, and not before; the version
// rows' manifests are not read again for it.
func TestMovedAliasSeenAfterOneRefresh(t *testing.T) {
	const refresh = 500 * time.Millisecond
	cl, repo, cnt := benchModel(t, 3)
	ctx := context.Background()
	rc, err := remote.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	rc.PlainHTTP = true
	tag := func(version, alias string) {
		t.Helper()
		d, err := rc.Resolve(ctx, version)
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Tag(ctx, d, alias); err != nil {
			t.Fatal(err)
		}
	}
	tag("v1", "production")
	s, err := New(cl, Options{Repositories: []string{repo}, Refresh: refresh})
	if err != nil {
		t.Fatal(err)
	}
	productionAt := func() string {
		t.Helper()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/model?repo="+url.QueryEscape(repo), nil))
		if w.Code != http.StatusOK {
			t.Fatalf("GET /api/model: %d %s", w.Code, w.Body)
		}
		var mp ModelPage
		if err := json.Unmarshal(w.Body.Bytes(), &mp); err != nil {
			t.Fatal(err)
		}
		for _, v := range mp.Versions {
			if slices.Contains(v.Aliases, "production") {
				return v.Version
			}
		}
		return ""
	}
	read := time.Now()
	if got := productionAt(); got != "v1" {
		t.Fatalf("production is at %q on the first view, want v1", got)
	}
	tag("v2", "production")
	if got := productionAt(); got != "v1" {
		t.Errorf("production is at %q right after the move, %s after the tags were read; want v1 until Refresh (%s) has passed", got, time.Since(read), refresh)
	}
	time.Sleep(refresh - time.Since(read) + 50*time.Millisecond)
	cnt.reset()
	if got := productionAt(); got != "v2" {
		t.Errorf("production is at %q one Refresh after the move, want v2", got)
	}
	cnt.mu.Lock()
	defer cnt.mu.Unlock()
	if n := cnt.n["GET manifest by digest"] + cnt.n["GET blob"]; n != 0 {
		t.Errorf("the refreshed page read %d manifests or blobs by digest again, want 0 (content addressed, cached): %v", n, cnt.n)
	}
	if n := cnt.n["HEAD manifest by tag"]; n != 2 {
		t.Errorf("the refresh resolved %d tags, want 2 (the aliases latest and production; version tags do not move)", n)
	}
}

// Concurrent page loads share the cache while entries expire under them
// (run with -race): every load answers 200 with the whole page.
func TestConcurrentPageLoads(t *testing.T) {
	cl, repo, _ := benchModel(t, 60)
	s, err := New(cl, Options{Repositories: []string{repo}, Refresh: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	q := url.QueryEscape(repo)
	pages := []string{"/", "/model?repo=" + q, "/model?repo=" + q + "&page=2", "/api/model?repo=" + q, "/version?repo=" + q + "&v=v7",
		"/history?repo=" + q, "/compare?repo=" + q + "&a=v1&b=v2"}
	errs := make(chan string, 8*len(pages))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range pages {
				u := pages[(i+j)%len(pages)]
				w := httptest.NewRecorder()
				s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, u, nil))
				if w.Code != http.StatusOK {
					errs <- u + ": " + w.Body.String()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
