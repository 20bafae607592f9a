package automation

import (
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/modelreg/modelreg"
)

func testWatcher(t *testing.T, sources ...string) *Watcher {
	t.Helper()
	cfg := &Config{Automations: []Automation{{Name: "a", On: Filter{Event: VersionCreated}, Command: []string{"true"}}}}
	for _, s := range sources {
		cfg.Sources = append(cfg.Sources, Source{Repository: s})
	}
	cl, err := modelreg.New(modelreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Options{Config: cfg, Client: cl, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func woken(w *Watcher) string {
	w.wakeMu.Lock()
	defer w.wakeMu.Unlock()
	var out []string
	for r := range w.woken {
		out = append(out, r)
	}
	sort.Strings(out)
	w.woken = map[string]bool{}
	return strings.Join(out, " ")
}

// envelope is shaped like distribution's (docs "Notifications", Envelope).
const envelope = `{"events":[
 {"id":"1","timestamp":"2026-12-02T06:00:00Z","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","repository":"team/m","url":"http://registry:5000/v2/team/m/manifests/sha256:aa","tag":"v1"},"request":{"host":"registry:5000","method":"PUT"}},
 {"id":"2","action":"push","target":{"mediaType":"application/octet-stream","digest":"sha256:bb","repository":"team/blobs-only"}},
 {"id":"3","action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"team/pulled","tag":"v1"}},
 {"id":"4","action":"delete","target":{"digest":"sha256:cc","repository":"team/deleted"}},
 {"id":"5","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"other/x","tag":"v1"}}
]}`

func TestNotificationHandler(t *testing.T) {
	w := testWatcher(t, "registry.example.com/team/*")
	h := w.NotificationHandler("tok")
	post := func(auth, body string) int {
		req := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if c := post("", envelope); c != http.StatusUnauthorized {
		t.Errorf("no token: %d", c)
	}
	if c := post("Bearer wrong", envelope); c != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", c)
	}
	if got := woken(w); got != "" {
		t.Errorf("refused requests woke %s", got)
	}
	if c := post("Bearer tok", envelope); c != http.StatusOK {
		t.Errorf("good request: %d", c)
	}
	// The source's host, not the envelope's: the registry may call itself
	// by another name than the watcher does.
	if got, want := woken(w), "registry.example.com/team/deleted registry.example.com/team/m"; got != want {
		t.Errorf("woken %q; want %q", got, want)
	}
	if c := post("Bearer tok", "{not json"); c != http.StatusBadRequest {
		t.Errorf("bad body: %d", c)
	}
}

func TestServeHookWakesOnAcceptedManifests(t *testing.T) {
	w := testWatcher(t, "127.0.0.1:5000/team/*")
	status := http.StatusCreated
	h := w.ServeHook(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { rw.WriteHeader(status) }))
	do := func(method, path string) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil))
	}
	do(http.MethodPut, "/v2/team/m/manifests/v1")
	do(http.MethodPut, "/v2/team/m/blobs/uploads/x")
	do(http.MethodGet, "/v2/team/g/manifests/v1")
	do(http.MethodDelete, "/v2/team/d/manifests/sha256:aa")
	status = http.StatusBadRequest
	do(http.MethodPut, "/v2/team/refused/manifests/v1")
	if got, want := woken(w), "127.0.0.1:5000/team/d 127.0.0.1:5000/team/m"; got != want {
		t.Errorf("woken %q; want %q", got, want)
	}
}
