package oci

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/opencontainers/go-digest"
)

// Limits of the read cache (ClientOptions.ReadCache).
const (
	// readCacheMaxEntry is the largest response body kept: manifests,
	// config blobs, signature bundles and model cards are a few KiB;
	// weights are never kept.
	readCacheMaxEntry = 1 << 20
	// readCacheMaxEntries bounds the number of responses whatever their
	// size (golang-lru needs a count).
	readCacheMaxEntries = 1 << 16
)

// byDigestPath matches the distribution-spec paths whose content is named
// by its digest: /v2/<name>/manifests/<digest> and /v2/<name>/blobs/<digest>.
var byDigestPath = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^/v2/.+/(manifests|blobs)/(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$`)
})

// readCache keeps GET and HEAD answers (200) of manifests and blobs
// fetched by digest, keyed by URL: their content cannot change, so an entry
// never expires, it is only evicted (least recently used first) to stay
// under a byte budget. A body is kept only when it hashes to the digest of
// its URL, a HEAD answer only when its Docker-Content-Digest is that
// digest. Safe for concurrent use.
type readCache struct {
	entries *lru.Cache[string, *cachedResponse]
	size    atomic.Int64 // bytes of bodies held
	max     int64
	hits    atomic.Int64
}

type cachedResponse struct {
	header http.Header
	body   []byte // nil for an answer to HEAD
	head   bool   // only the headers are known (a HEAD was cached)
}

func newReadCache(maxBytes int64) *readCache {
	c := &readCache{max: maxBytes}
	c.entries, _ = lru.NewWithEvict(readCacheMaxEntries, func(_ string, v *cachedResponse) {
		c.size.Add(-int64(len(v.body)))
	})
	return c
}

// wrap returns next with the cache in front of it.
func (c *readCache) wrap(next http.RoundTripper) http.RoundTripper {
	return &cachingTransport{cache: c, next: next}
}

type cachingTransport struct {
	cache *readCache
	next  http.RoundTripper
}

// RoundTrip answers a GET or HEAD by digest from the cache, else asks next
// and keeps a 200 answer that verifies.
func (t *cachingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if (req.Method != http.MethodGet && req.Method != http.MethodHead) || req.Header.Get("Range") != "" {
		return t.next.RoundTrip(req)
	}
	m := byDigestPath().FindStringSubmatch(req.URL.Path)
	if m == nil {
		return t.next.RoundTrip(req)
	}
	key := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	if e, ok := t.cache.entries.Get(key); ok && (req.Method == http.MethodHead || !e.head) {
		t.cache.hits.Add(1)
		return e.response(req), nil
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	if req.Method == http.MethodHead {
		// A HEAD has no body to hash: it is kept only when the registry
		// names the digest asked for, so a wrong answer is not believed
		// after the registry answers right again.
		if _, ok := t.cache.entries.Peek(key); !ok && resp.Header.Get("Docker-Content-Digest") == m[2] {
			t.cache.entries.Add(key, &cachedResponse{header: resp.Header.Clone(), head: true})
		}
		return resp, nil
	}
	if resp.ContentLength > readCacheMaxEntry {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, readCacheMaxEntry+1))
	if err != nil || len(body) > readCacheMaxEntry {
		// Hand back what was read followed by the rest (or the error).
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), errReader{err}, resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if digest.Digest(m[2]).Validate() == nil && digest.Digest(m[2]).Algorithm().FromBytes(body) == digest.Digest(m[2]) {
		t.cache.add(key, &cachedResponse{header: resp.Header.Clone(), body: body})
	}
	return resp, nil
}

func (c *readCache) add(key string, e *cachedResponse) {
	if int64(len(e.body)) > c.max {
		return
	}
	c.entries.Add(key, e)
	c.size.Add(int64(len(e.body)))
	for c.size.Load() > c.max {
		if _, _, ok := c.entries.RemoveOldest(); !ok {
			break
		}
	}
}

// response rebuilds a 200 answer to req from the entry.
func (e *cachedResponse) response(req *http.Request) *http.Response {
	h := e.header.Clone()
	var body io.ReadCloser = http.NoBody
	n := int64(0)
	if req.Method == http.MethodGet {
		body, n = io.NopCloser(bytes.NewReader(e.body)), int64(len(e.body))
		h.Set("Content-Length", strconv.FormatInt(n, 10))
	} else if cl := h.Get("Content-Length"); cl != "" {
		n, _ = strconv.ParseInt(cl, 10, 64)
	} else if e.body != nil {
		n = int64(len(e.body))
		h.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	return &http.Response{Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: body, ContentLength: n, Request: req}
}

// errReader returns err once the bytes before it are read (nil: EOF).
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	return 0, io.EOF
}
