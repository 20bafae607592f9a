package ui

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/errdef"
)

func TestNewRefusesBadRepositories(t *testing.T) {
	cl, err := modelreg.New(modelreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, repos := range [][]string{nil, {"sentiment"}, {"localhost:5000/"}, {"localhost:5000/team/m:v1"}, {"localhost:5000/team/m@sha256:00"}} {
		if _, err := New(cl, Options{Repositories: repos}); !errors.Is(err, errdef.ErrInvalidInput) {
			t.Errorf("New(%q): %v, want errdef.ErrInvalidInput", repos, err)
		}
	}
}

// A repository the dashboard was not given is 404 on every page and API,
// without a registry request (the host here does not exist).
func TestOnlyConfiguredRepositories(t *testing.T) {
	cl, err := modelreg.New(modelreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cl, Options{Repositories: []string{"registry.invalid/team/m"}})
	if err != nil {
		t.Fatal(err)
	}
	other := url.QueryEscape("registry.invalid/team/other")
	for _, u := range []string{"/model?repo=" + other, "/version?repo=" + other + "&v=v1", "/history?repo=" + other,
		"/compare?repo=" + other + "&a=v1&b=v2", "/api/model?repo=" + other, "/api/version?repo=" + other + "&v=v1"} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, u, nil))
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "is not one this dashboard shows") {
			t.Errorf("GET %s: %d %s, want 404 naming the repository", u, w.Code, w.Body.String())
		}
	}
}
