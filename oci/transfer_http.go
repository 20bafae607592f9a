package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// RetryOptions bound how the transfer engine retries a request that failed
// with a network error, 408, 429 or a 5xx answer (other than 501 and 505).
// Failures no retry heals (certificate and TLS errors, a host name that does
// not resolve, missing credentials, 401, 403 and other 4xx) fail at once,
// with advice on what to do (see heal.go). The zero value uses the defaults
// below.
type RetryOptions struct {
	// MaxAttempts is how many tries in a row may fail before the transfer
	// gives up. A try that moved bytes starts the count again, so a
	// connection that keeps breaking still finishes while it makes
	// progress (at most 100 tries per request in all). If ≤ 0, 6.
	MaxAttempts int
	// MinWait is the wait before the first retry; each further retry waits
	// twice as long (±20% jitter), at most 8 s. If ≤ 0, 250 ms.
	MinWait time.Duration
	// MaxWait caps a Retry-After the registry asks for. If ≤ 0, 60 s.
	MaxWait time.Duration
	// StallTimeout is how long a download may wait for the answer's
	// header or its next body byte, and an upload for the registry to take
	// its next body byte; a stalled request is dropped and retried like a
	// broken connection. If ≤ 0, 60 s.
	StallTimeout time.Duration
}

const (
	defaultMaxAttempts = 6
	maxTotalAttempts   = 100
	defaultMinWait     = 250 * time.Millisecond
	maxBackoff         = 8 * time.Second
	defaultMaxWait     = 60 * time.Second
	defaultStall       = 60 * time.Second
)

func (o RetryOptions) stallTimeout() time.Duration {
	if o.StallTimeout <= 0 {
		return defaultStall
	}
	return o.StallTimeout
}

func (o RetryOptions) maxAttempts() int {
	if o.MaxAttempts <= 0 {
		return defaultMaxAttempts
	}
	return o.MaxAttempts
}

func (o RetryOptions) minWait() time.Duration {
	if o.MinWait <= 0 {
		return defaultMinWait
	}
	return o.MinWait
}

func (o RetryOptions) maxWait() time.Duration {
	if o.MaxWait <= 0 {
		return defaultMaxWait
	}
	return o.MaxWait
}

// backoff counts the failed tries of one request and sleeps between them.
type backoff struct {
	opts    RetryOptions
	failed  int // tries in a row that failed without progress
	total   int // all tries
	lastErr error
}

// retry decides after a failed try: it sleeps and returns nil when another
// try is due, or returns the error to give up with.
func (b *backoff) retry(ctx context.Context, err error) error {
	b.total++
	b.lastErr = err
	if !retryable(err) {
		return withAdvice(err)
	}
	b.failed++
	if b.failed >= b.opts.maxAttempts() || b.total >= maxTotalAttempts {
		return &retriesExhaustedError{attempts: b.total, err: err}
	}
	wait := b.opts.minWait() << (b.failed - 1)
	if wait > maxBackoff || wait <= 0 {
		wait = maxBackoff
	}
	wait = time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
	var re *registryError
	if errors.As(err, &re) && re.RetryAfter > 0 {
		wait = min(re.RetryAfter, b.opts.maxWait())
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// progressed notes that the last try moved bytes: the count of failures
// in a row starts again.
func (b *backoff) progressed() { b.failed = 0 }

// retriesExhaustedError is the last error of a request tried too often.
type retriesExhaustedError struct {
	attempts int
	err      error
}

func (e *retriesExhaustedError) Error() string {
	return fmt.Sprintf("%v (gave up after %d tries)", e.err, e.attempts)
}

func (e *retriesExhaustedError) Unwrap() error { return e.err }

// localError marks a failure on this machine (reading or writing a file),
// which no retry can fix.
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }
func (e localError) Unwrap() error { return e.err }

// retryable reports whether err may go away on another try.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var le localError
	if errors.As(err, &le) {
		return false
	}
	var rt retryableError
	if errors.As(err, &rt) {
		return true
	}
	if p, _ := permanent(err); p {
		return false
	}
	var re *registryError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusRequestTimeout, re.StatusCode == http.StatusTooManyRequests:
			return true
		case re.StatusCode == http.StatusNotImplemented, re.StatusCode == http.StatusHTTPVersionNotSupported:
			return false
		default:
			return re.StatusCode >= 500
		}
	}
	var ie *integrityError
	if errors.As(err, &ie) {
		return false
	}
	// Network errors, broken connections, short bodies.
	return true
}

// registryError is an HTTP answer the transfer engine did not expect.
type registryError struct {
	Method     string
	URL        string // without query, which may hold signatures
	StatusCode int
	Status     string
	// Codes are the OCI error codes of the body (BLOB_UNKNOWN, ...).
	Codes   []string
	Message string
	// RetryAfter is the wait the registry asked for, 0 if none.
	RetryAfter time.Duration
}

func (e *registryError) Error() string {
	s := fmt.Sprintf("%s %s: %s", e.Method, e.URL, e.Status)
	if len(e.Codes) > 0 {
		s += ": " + strings.Join(e.Codes, ", ")
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *registryError) hasCode(codes ...string) bool {
	for _, c := range e.Codes {
		for _, w := range codes {
			if c == w {
				return true
			}
		}
	}
	return false
}

// newRegistryError reads (at most 64 KiB of) resp's body and closes it.
func newRegistryError(resp *http.Response) *registryError {
	defer resp.Body.Close()
	e := &registryError{StatusCode: resp.StatusCode, Status: resp.Status}
	if resp.Request != nil {
		e.Method = resp.Request.Method
		u := *resp.Request.URL
		u.RawQuery, u.User = "", nil
		e.URL = u.String()
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var oe struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &oe) == nil {
		var msgs []string
		for _, x := range oe.Errors {
			e.Codes = append(e.Codes, x.Code)
			if x.Message != "" {
				msgs = append(msgs, x.Message)
			}
		}
		e.Message = strings.Join(msgs, "; ")
	} else if s := strings.TrimSpace(string(body)); s != "" && len(s) < 200 && !strings.ContainsAny(s, "<>") {
		e.Message = s
	}
	return e
}

// integrityError says downloaded bytes do not match their descriptor.
type integrityError struct{ msg string }

func (e *integrityError) Error() string { return e.msg }

// transferClient speaks the blob API of one repository with its own
// retries: it shares credentials and the token cache with the oras-go
// client of the repository, but not its retrying transport, since a
// retried upload must continue where the registry stopped, not start over.
type transferClient struct {
	hc       remote.Client
	base     *url.URL // scheme://HOST/v2/REPO/
	registry string
	repo     string
	opts     TransferOptions
	noPatch  atomic.Bool  // the registry refused a PATCH: upload monolithically
	maxBody  atomic.Int64 // a body size the registry took for too large (413), 0 if none
}

var sharedTransport = sync.OnceValue(func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.ReadBufferSize = 64 << 10
	t.WriteBufferSize = 64 << 10
	t.DisableCompression = true
	return t
})

// transferHTTPClient returns hc without oras-go's retrying transport, and
// with a transport that keeps enough idle connections for parallel
// transfers when hc uses the default one.
func transferHTTPClient(hc *http.Client) *http.Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	rt := hc.Transport
	if r, ok := rt.(*retry.Transport); ok {
		rt = r.Base
	}
	if rt == nil || rt == http.DefaultTransport {
		rt = sharedTransport()
	}
	c := *hc
	c.Transport = rt
	return &c
}

func newTransferClient(repo *remote.Repository, opts TransferOptions) *transferClient {
	var hc remote.Client = repo.Client
	switch c := repo.Client.(type) {
	case nil:
		hc = &auth.Client{Client: transferHTTPClient(nil), Cache: auth.NewCache(), Header: http.Header{"User-Agent": {UserAgent}}}
	case *auth.Client:
		cp := *c
		cp.Client = transferHTTPClient(c.Client)
		hc = &cp
	case *http.Client:
		hc = transferHTTPClient(c)
	}
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	ref := repo.Reference
	return &transferClient{
		hc:       hc,
		base:     &url.URL{Scheme: scheme, Host: ref.Registry, Path: "/v2/" + ref.Repository + "/"},
		registry: ref.Registry,
		repo:     ref.Repository,
		opts:     opts,
	}
}

// scoped adds the token scopes the transfer needs, so token auth asks once.
func (t *transferClient) scoped(ctx context.Context, actions ...string) context.Context {
	return auth.AppendRepositoryScope(ctx, registry.Reference{Registry: t.registry, Repository: t.repo}, actions...)
}

// blobURL is the URL of blob d in the repository.
func (t *transferClient) blobURL(d string) string {
	return t.base.JoinPath("blobs", d).String()
}

// uploadsURL is the URL that starts an upload session.
func (t *transferClient) uploadsURL() *url.URL {
	u := t.base.JoinPath("blobs", "uploads")
	u.Path += "/"
	return u
}

// location resolves a Location header against the request URL. A location
// on another host or scheme is refused: credentials would follow it
// (GHSA-jxpm-75mh-9fp7).
func (t *transferClient) location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s %s: %s without a Location header", resp.Request.Method, redact(resp.Request.URL), resp.Status)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("%s %s: bad Location %q: %w", resp.Request.Method, redact(resp.Request.URL), loc, err)
	}
	if u.Scheme != t.base.Scheme || !strings.EqualFold(u.Host, t.base.Host) {
		return nil, fmt.Errorf("%s %s: the registry sent an upload location on %s://%s; refusing to send data or credentials off %s", resp.Request.Method, redact(resp.Request.URL), u.Scheme, u.Host, t.base.Host)
	}
	return u, nil
}

func redact(u *url.URL) string {
	c := *u
	c.RawQuery, c.User = "", nil
	return c.String()
}

// do sends req through the authenticating client.
func (t *transferClient) do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", UserAgent)
	}
	return t.hc.Do(req)
}

// stallError says a registry sent nothing for the stall timeout.
type stallError struct{ idle time.Duration }

func (e stallError) Error() string {
	return fmt.Sprintf("the registry sent nothing for %v", e.idle)
}

// watchdog cancels a request when neither its answer's header nor a body
// byte arrives for idle.
type watchdog struct {
	idle   time.Duration
	timer  *time.Timer
	cancel context.CancelFunc
	fired  atomic.Bool
}

func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel()
}

// doWatched sends req under a watchdog (RetryOptions.StallTimeout): a
// stall fails the request, or a later body read, with stallError, which
// is retried. Closing the body stops the watchdog.
func (t *transferClient) doWatched(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	w := &watchdog{idle: t.opts.Retry.stallTimeout(), cancel: cancel}
	w.timer = time.AfterFunc(w.idle, func() {
		w.fired.Store(true)
		cancel()
	})
	resp, err := t.do(req.WithContext(ctx))
	if err != nil {
		w.stop()
		if w.fired.Load() {
			return nil, stallError{w.idle}
		}
		return nil, err
	}
	w.timer.Reset(w.idle)
	resp.Body = &watchedBody{ReadCloser: resp.Body, w: w}
	return resp, nil
}

// watchedBody feeds the watchdog of its request on every byte read.
type watchedBody struct {
	io.ReadCloser
	w *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.timer.Reset(b.w.idle)
	}
	if err != nil && err != io.EOF && b.w.fired.Load() {
		err = stallError{b.w.idle}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.w.stop()
	return b.ReadCloser.Close()
}

// request builds a request with ctx and the standard headers.
func newRequest(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, localError{err}
	}
	return req, nil
}

// HTTPStatus returns the HTTP status code of the registry answer that err
// reports: the transfer engine's and the transport's own errors, and
// oras-go's errcode.ErrorResponse. ok is false when err carries no answer
// (a connection, TLS or local error).
func HTTPStatus(err error) (status int, ok bool) {
	var re *registryError
	if errors.As(err, &re) {
		return re.StatusCode, true
	}
	var er *errcode.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode, true
	}
	return 0, false
}
