package automation

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"time"

	"encoding/json"
	"github.com/modelreg/modelreg/errdef"
	"io"
	"net/http"
	"strings"
)

// maxNotificationBody bounds a notification request; distribution sends
// envelopes of a few events (threshold 10 by default), a few KB.
const maxNotificationBody = 1 << 20

// NotificationHandler answers distribution's notifications.endpoints POSTs
// (an envelope of media type application/vnd.docker.distribution.events.v2+json,
// https://distribution.github.io/distribution/about/notifications/). A
// request without "Authorization: Bearer TOKEN" is refused with 401. Each
// manifest push or delete wakes the watcher for the repository the event
// names, under the host of every source whose pattern matches it; nothing
// else of the envelope is believed, since the repository is read back from
// the registry.
func (w *Watcher) NotificationHandler(token string) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			http.Error(rw, "POST registry notifications here", http.StatusMethodNotAllowed)
			return
		}
		if token == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(rw, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		var env struct {
			Events []struct {
				Action string `json:"action"`
				Target struct {
					MediaType  string `json:"mediaType"`
					Repository string `json:"repository"`
					Tag        string `json:"tag"`
				} `json:"target"`
			} `json:"events"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, maxNotificationBody)).Decode(&env); err != nil {
			http.Error(rw, "want a distribution events envelope: "+err.Error(), http.StatusBadRequest)
			return
		}
		for _, e := range env.Events {
			t := e.Target
			if e.Action != "push" && e.Action != "delete" || t.Repository == "" {
				continue
			}
			if e.Action == "push" && t.Tag == "" && !strings.Contains(t.MediaType, "manifest") && !strings.Contains(t.MediaType, "index") {
				continue // a blob: the manifest that uses it follows
			}
			w.wakeName(t.Repository)
		}
		rw.WriteHeader(http.StatusOK)
	})
}

// wakeName wakes HOST/name for every source whose pattern matches it.
func (w *Watcher) wakeName(name string) {
	for _, src := range w.cfg.Sources {
		host, _, _ := strings.Cut(src.Repository, "/")
		if repo := host + "/" + name; src.Matches(repo) {
			w.Wake(repo)
		}
	}
}

// ServeHook wraps the HTTP handler of an embedded registry (`modelreg
// serve --automations`): each manifest PUT or DELETE the registry accepts
// (2xx) wakes the watcher for its repository. olareg has no notification
// hook of its own, so this is it.
func (w *Watcher) ServeHook(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut && r.Method != http.MethodDelete {
			next.ServeHTTP(rw, r)
			return
		}
		sw := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		p := strings.TrimPrefix(r.URL.Path, "/v2/")
		if i := strings.LastIndex(p, "/manifests/"); i > 0 && sw.status/100 == 2 {
			w.wakeName(p[:i])
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ServeNotifications listens on addr for registry notifications (see
// NotificationHandler) until ctx ends. ready, if not nil, receives the
// address bound (port 0 picks a free one).
func (w *Watcher) ServeNotifications(ctx context.Context, addr, token string, ready func(string)) error {
	if token == "" {
		return fmt.Errorf("%w: --listen needs the bearer token registries send in the environment variable %s (distribution: notifications.endpoints[].headers.Authorization: [Bearer TOKEN])", errdef.ErrInvalidInput, TokenEnv)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	srv := &http.Server{Handler: w.NotificationHandler(token), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// TokenEnv is the environment variable holding the bearer token of the
// notifications endpoint.
const TokenEnv = "MODELREG_WATCH_TOKEN"
