package ui

import (
	"encoding/json"
	"html"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/modelreg/modelreg"
)

// An evaluation may carry any JSON number: values near ±MaxFloat64 must
// still give a drawable chart (no NaN or Inf in the SVG), and a value
// that is not finite (NaN, ±Inf) is left out rather than breaking the
// polyline and the JSON of /api/model.
func TestChartHugeAndNonFiniteValues(t *testing.T) {
	for name, vals := range map[string][]float64{
		"huge both signs":  {1.7e308, -1.7e308, 0},
		"huge equal":       {1.75e308, 1.75e308},
		"negative":         {-3, -1, -2},
		"with NaN and Inf": {0.5, math.NaN(), math.Inf(1), math.Inf(-1), 0.7},
	} {
		var rows []VersionRow
		for i, v := range vals {
			rows = append(rows, VersionRow{Version: "v" + string(rune('1'+i)), Metrics: map[string]float64{"acc": v}})
		}
		c := buildChart(rows, []string{"acc"}, "acc")
		svg := c.Line
		for _, tk := range c.Ticks {
			svg += " " + tk.Label
			if math.IsNaN(tk.Y) || math.IsInf(tk.Y, 0) {
				t.Errorf("%s: tick at y=%v", name, tk.Y)
			}
		}
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Errorf("%s: chart has non-finite coordinates or labels: %s", name, svg)
		}
		for _, p := range c.Points {
			if p.Y < c.Y1-0.01 || p.Y > c.Y0+0.01 {
				t.Errorf("%s: point %s=%v at y=%v, outside the plot [%v,%v]", name, p.Version, p.Value, p.Y, c.Y1, c.Y0)
			}
		}
		if _, err := json.Marshal(c); err != nil {
			t.Errorf("%s: /api/model could not encode the chart: %v", name, err)
		}
	}
}

// Every /api/ answer is JSON, also the ones the router makes: an unknown
// API path (404) and a method other than GET/HEAD (405); and every answer
// carries the Content-Security-Policy.
func TestAPIRouterErrorsAreJSON(t *testing.T) {
	cl, err := modelreg.New(modelreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cl, Options{Repositories: []string{"registry.invalid/team/m"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/api/nope", http.StatusNotFound},
		{http.MethodPost, "/api/models", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/api/model?repo=registry.invalid/team/m", http.StatusMethodNotAllowed},
	} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		var body map[string]string
		if w.Code != c.code || json.Unmarshal(w.Body.Bytes(), &body) != nil || body["error"] == "" ||
			!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %q %q, want %d with a JSON error", c.method, c.path, w.Code, w.Header().Get("Content-Type"), w.Body.String(), c.code)
		}
		if w.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s %s: no Content-Security-Policy", c.method, c.path)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(m, "/", nil))
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s /: %d, want 405", m, w.Code)
		}
	}
}

// Every link the pages draw leads to a page that answers 200: the query
// values are escaped once (html/template escapes them; escaping them
// before as well gave repo=127.0.0.1%253A… and a 404 on every click).
func TestPageLinksResolve(t *testing.T) {
	cl, repo, _ := benchModel(t, 2)
	s, err := New(cl, Options{Repositories: []string{repo}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) (int, string) {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, u, nil))
		return w.Code, w.Body.String()
	}
	href := regexp.MustCompile(`href="(/[^"]*)"`)
	seen := map[string]bool{}
	todo := []string{"/"}
	for len(todo) > 0 && len(seen) < 40 {
		u := todo[0]
		todo = todo[1:]
		if seen[u] {
			continue
		}
		seen[u] = true
		code, body := get(u)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", u, code)
			continue
		}
		for _, m := range href.FindAllStringSubmatch(body, -1) {
			todo = append(todo, html.UnescapeString(m[1]))
		}
	}
	if len(seen) < 4 {
		t.Errorf("followed %d links (%v), want the model, version and history pages at least", len(seen), seen)
	}
}

// The router's path-cleaning redirects stay on the dashboard: a Location
// never starts with // or /\ (which browsers read as another host).
func TestNoOpenRedirect(t *testing.T) {
	cl, err := modelreg.New(modelreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cl, Options{Repositories: []string{"registry.invalid/team/m"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"//evil.example/", "///evil.example/x/..", "/.//evil.example", "/%5Cevil.example/..", "/\\evil.example/./",
		"/./\\/evil.example", "/api/..//evil.example", "/assets/../..//evil.example", "/model/..//evil.example?repo=x"} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		loc := w.Header().Get("Location")
		if strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") || strings.Contains(loc, "://") {
			t.Errorf("GET %s: %d Location %q leaves the dashboard", target, w.Code, loc)
		}
	}
}
