package oci

import (
	"net/http"
	"slices"
	"strings"
	"sync"
)

// repoGate works around a data race in olareg v0.2.2's directory store
// (internal/store/dir.go): the field dirRepo.exists is written under
// dirRepo.mu by repoInit (the first blob upload POST or manifest PUT of a
// repository) and by indexLoad (whenever index.json is (re)parsed, e.g. the
// first manifest, tag or referrers request of a repository in a process),
// but read without that lock by BlobCreate, blobGet, blobMeta and
// blobDelete. `go test -race` reports it on two concurrent first uploads to
// one repository.
//
// The gate orders those accesses with a read-write lock per repository:
// requests that may write the field (manifest, tag-list and referrers
// requests, upload POSTs) hold it exclusively, blob GET, HEAD and DELETE
// (which only read it) hold it shared; upload PATCH, PUT, GET and DELETE
// touch the field only under dirRepo.mu and pass freely. olareg makes its
// store calls before it answers, so a request releases its lock as soon as
// it writes its response header: a multi-GB blob streams without holding
// anything, and a lock is held for milliseconds. A cross-repository mount
// (POST ?mount=&from=) also reads the source repository's field, so it
// holds the source shared, locks taken in name order so two mounts in
// opposite directions cannot deadlock.
//
// Remove it when olareg reads the field under its lock (or makes it atomic).
type repoGate struct {
	next http.Handler

	mu    sync.Mutex
	repos map[string]*sync.RWMutex
}

func newRepoGate(next http.Handler) *repoGate {
	return &repoGate{next: next, repos: map[string]*sync.RWMutex{}}
}

func (g *repoGate) lock(repo string) *sync.RWMutex {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.repos[repo]
	if !ok {
		l = &sync.RWMutex{}
		g.repos[repo] = l
	}
	return l
}

// gateLock is one lock a request holds: exclusive or shared.
type gateLock struct {
	repo      string
	exclusive bool
}

// locksFor classifies a request as olareg's router does (olareg.go,
// ServeHTTP) and returns the locks it needs.
func locksFor(r *http.Request) []gateLock {
	el := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	n := len(el)
	if n < 3 || el[0] != "v2" {
		return nil
	}
	repoOf := func(tail int) string { return strings.Join(el[1:n-tail], "/") }
	switch {
	case el[n-2] == "manifests", el[n-2] == "referrers", el[n-2] == "tags" && el[n-1] == "list":
		return []gateLock{{repoOf(2), true}}
	case el[n-2] == "blobs" && el[n-1] == "uploads" && r.Method == http.MethodPost:
		locks := []gateLock{{repoOf(2), true}}
		if from := r.URL.Query().Get("from"); from != "" && r.URL.Query().Get("mount") != "" && from != locks[0].repo {
			locks = append(locks, gateLock{from, false})
		}
		return locks
	case el[n-2] == "blobs":
		return []gateLock{{repoOf(2), false}}
	}
	return nil // upload sessions, /v2/, unknown paths
}

func (g *repoGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	locks := locksFor(r)
	if len(locks) == 0 {
		g.next.ServeHTTP(w, r)
		return
	}
	slices.SortFunc(locks, func(a, b gateLock) int { return strings.Compare(a.repo, b.repo) })
	var held []func()
	for _, l := range locks {
		m := g.lock(l.repo)
		if l.exclusive {
			m.Lock()
			held = append(held, m.Unlock)
		} else {
			m.RLock()
			held = append(held, m.RUnlock)
		}
	}
	gw := &gateWriter{ResponseWriter: w, held: held}
	defer gw.release()
	g.next.ServeHTTP(gw, r)
}

// gateWriter releases the request's locks when the handler starts its
// response, which olareg does only after its last store call.
type gateWriter struct {
	http.ResponseWriter
	held []func()
}

func (w *gateWriter) release() {
	for i := len(w.held) - 1; i >= 0; i-- {
		w.held[i]()
	}
	w.held = nil
}

func (w *gateWriter) WriteHeader(code int) {
	w.release()
	w.ResponseWriter.WriteHeader(code)
}

func (w *gateWriter) Write(b []byte) (int, error) {
	w.release()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *gateWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
