// Package faultproxy is a loopback HTTP reverse proxy for tests and
// benchmarks of registry clients. It can make a local registry look far
// away (each connection capped to a bandwidth, a round-trip delay per
// connection and per request, like a registry behind a CDN in another
// region) and inject faults: an answer such as 503, or 429 with
// Retry-After, instead of forwarding; a connection cut part way through a
// response or a request body; a response body that ends early.
//
// It listens on 127.0.0.1 on a free port; whoever starts it closes it:
//
//	p, err := faultproxy.New("http://127.0.0.1:5000", faultproxy.Options{BytesPerSecond: 50e6, Delay: 20 * time.Millisecond})
//	defer p.Close()
//	p.Inject(faultproxy.Fault{Kind: faultproxy.CutResponse, Method: "GET", PathContains: "/blobs/sha256:", AfterBytes: size / 2, Times: 1})
//	... point the client at p.Addr() ...
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options shape the traffic of every client connection. The zero value
// forwards at full speed.
type Options struct {
	// BytesPerSecond caps each client connection's throughput, in each
	// direction separately. 0 means no cap.
	BytesPerSecond int64
	// Delay is added once when a connection opens (its handshake) and
	// once per request before it is forwarded (its round trip).
	Delay time.Duration
	// MaxLog is how many requests Requests keeps (the most recent). If
	// 0, 10,000.
	MaxLog int
}

// Kind is a kind of fault.
type Kind int

const (
	// Status answers with Fault.Status (and Fault.RetryAfter as the
	// Retry-After header) without forwarding the request.
	Status Kind = iota
	// CutResponse forwards the request, then breaks the client connection
	// after Fault.AfterBytes bytes of the response body.
	CutResponse
	// CutRequest forwards the request but breaks both connections (client
	// and upstream) after Fault.AfterBytes bytes of the request body, as a
	// network failure would during an upload: the registry keeps what it
	// received.
	CutRequest
	// TruncateResponse forwards the request and ends the response body
	// cleanly after Fault.AfterBytes bytes, dropping its Content-Length.
	TruncateResponse
	// StallRequest forwards the request but stops reading its body after
	// Fault.AfterBytes bytes, with both connections open, as a registry
	// that hangs mid-upload; after Fault.Hold (or when the proxy closes)
	// it breaks both connections like CutRequest.
	StallRequest
	// RewriteStatus forwards the request and hands the client the
	// registry's answer with its status code replaced by Fault.Status, as
	// a registry with a quirk would answer (201 for a chunk PATCH).
	RewriteStatus
)

// String names the kind, as Request.Fault does.
func (k Kind) String() string {
	switch k {
	case Status:
		return "status"
	case CutResponse:
		return "cut-response"
	case CutRequest:
		return "cut-request"
	case TruncateResponse:
		return "truncate-response"
	case StallRequest:
		return "stall-request"
	case RewriteStatus:
		return "rewrite-status"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Fault describes one fault and the requests it hits.
type Fault struct {
	Kind Kind
	// Method selects requests by HTTP method; "" matches any.
	Method string
	// PathContains selects requests whose URL path contains it; "" matches
	// any.
	PathContains string
	// Status is the status code a Status fault answers with.
	Status int
	// RetryAfter is the Retry-After header of a Status fault ("" for none).
	RetryAfter string
	// Header holds further headers of a Status fault's answer, such as
	// WWW-Authenticate.
	Header map[string]string
	// Body is the body of a Status fault's answer (sent as text/plain
	// unless it starts with "{"); "" sends an OCI error of code
	// UNAVAILABLE.
	Body string
	// MinBodyBytes selects only requests whose Content-Length is at least
	// this, as a proxy that refuses large bodies (413) would; 0 matches
	// any.
	MinBodyBytes int64
	// AfterBytes is how many body bytes pass before a cut, truncation or
	// stall.
	AfterBytes int64
	// Hold is how long a StallRequest stalls; 0 until the proxy closes.
	Hold time.Duration
	// Times is how many matching requests the fault hits, then it is
	// spent; 0 means every matching request.
	Times int
}

// Request is one request the proxy saw.
type Request struct {
	Method, Path string
	// Range and ContentRange are the request's headers of these names.
	Range, ContentRange string
	// Status is the status code the client got (0 if the connection was
	// cut before an answer); Fault the kind of fault injected, if any.
	Status int
	Fault  string
}

// Stats count the traffic of client connections, headers included.
type Stats struct {
	// BytesToClients and BytesFromClients are bytes written to and read
	// from client connections.
	BytesToClients, BytesFromClients int64
	// Requests is how many requests arrived; Faults how many were hit by
	// a fault.
	Requests, Faults int64
}

// Proxy is a running proxy. Its methods are safe for concurrent use.
type Proxy struct {
	opts     Options
	target   *url.URL
	ln       net.Listener
	srv      *http.Server
	rp       *httputil.ReverseProxy
	upstream *http.Transport

	out, in, requests, faultsHit atomic.Int64

	mu     sync.Mutex
	faults []*armedFault
	log    []Request

	closed    chan struct{} // closed by Close: stalls end
	closeOnce sync.Once
}

type armedFault struct {
	Fault
	left int // remaining hits; -1 for unlimited
}

// New starts a proxy on 127.0.0.1 (a free port) in front of target, an
// http:// URL such as "http://127.0.0.1:5000". Close it when done.
func New(target string, opts Options) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q: want http://HOST:PORT", target)
	}
	if opts.MaxLog <= 0 {
		opts.MaxLog = 10000
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{opts: opts, target: u, closed: make(chan struct{})}
	p.ln = &listener{Listener: ln, p: p}
	p.upstream = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Keep the client's Host: registries build absolute Location
			// URLs from it, and those must point at the proxy.
			pr.Out.Host = pr.In.Host
		},
		Transport:      p.upstream,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       discardLogger(),
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second, ErrorLog: discardLogger()}
	go p.srv.Serve(p.ln)
	return p, nil
}

// Addr is the proxy's HOST:PORT on 127.0.0.1.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is "http://" + Addr().
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Close stops the proxy and breaks its open connections.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	err := p.srv.Close()
	p.upstream.CloseIdleConnections()
	return err
}

// Inject arms f. Faults are tried in the order they were injected; the
// first that matches a request hits it.
func (p *Proxy) Inject(f Fault) {
	left := f.Times
	if left <= 0 {
		left = -1
	}
	p.mu.Lock()
	p.faults = append(p.faults, &armedFault{Fault: f, left: left})
	p.mu.Unlock()
}

// Clear disarms every fault.
func (p *Proxy) Clear() {
	p.mu.Lock()
	p.faults = nil
	p.mu.Unlock()
}

// Pending reports how many faults are still armed (not spent).
func (p *Proxy) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.faults {
		if f.left != 0 {
			n++
		}
	}
	return n
}

// Stats returns the traffic counts since the start or the last ResetStats.
func (p *Proxy) Stats() Stats {
	return Stats{BytesToClients: p.out.Load(), BytesFromClients: p.in.Load(), Requests: p.requests.Load(), Faults: p.faultsHit.Load()}
}

// ResetStats sets the counts to zero and empties the request log.
func (p *Proxy) ResetStats() {
	p.out.Store(0)
	p.in.Store(0)
	p.requests.Store(0)
	p.faultsHit.Store(0)
	p.mu.Lock()
	p.log = nil
	p.mu.Unlock()
}

// Requests returns the most recent requests (see Options.MaxLog), oldest
// first, with the status each got.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.log...)
}

// match picks and spends the first armed fault matching r.
func (p *Proxy) match(r *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.faults {
		if f.left == 0 {
			continue
		}
		if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
			continue
		}
		if f.PathContains != "" && !strings.Contains(r.URL.Path, f.PathContains) {
			continue
		}
		if f.MinBodyBytes > 0 && r.ContentLength < f.MinBodyBytes {
			continue
		}
		if f.left > 0 {
			f.left--
		}
		ff := f.Fault
		return &ff
	}
	return nil
}

type ctxKey struct{}

// reqState travels with a request through the reverse proxy.
type reqState struct {
	fault *Fault
	cut   atomic.Bool // the request body was cut
}

// errCut is the error a cut body returns.
var errCut = errors.New("faultproxy: connection cut")

// ServeHTTP logs the request, waits the request delay, then answers it
// with the first matching fault or forwards it to the target.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	rec := Request{Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range"), ContentRange: r.Header.Get("Content-Range")}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		rec.Status = sw.status
		p.mu.Lock()
		p.log = append(p.log, rec)
		if len(p.log) > p.opts.MaxLog {
			p.log = p.log[len(p.log)-p.opts.MaxLog:]
		}
		p.mu.Unlock()
	}()
	if p.opts.Delay > 0 {
		t := time.NewTimer(p.opts.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	st := &reqState{fault: p.match(r)}
	if f := st.fault; f != nil {
		p.faultsHit.Add(1)
		rec.Fault = f.Kind.String()
		switch f.Kind {
		case Status:
			if f.RetryAfter != "" {
				sw.Header().Set("Retry-After", f.RetryAfter)
			}
			for k, v := range f.Header {
				sw.Header().Set(k, v)
			}
			if f.MinBodyBytes > 0 {
				// A proxy that buffers the body before it refuses it:
				// the client reads the answer, not a broken pipe.
				io.Copy(io.Discard, r.Body)
			}
			code := f.Status
			if code == 0 {
				code = http.StatusServiceUnavailable
			}
			switch {
			case f.Body == "":
				sw.Header().Set("Content-Type", "application/json")
				sw.WriteHeader(code)
				fmt.Fprintf(sw, `{"errors":[{"code":"UNAVAILABLE","message":"faultproxy: injected %d"}]}`+"\n", code)
			case strings.HasPrefix(f.Body, "{"):
				sw.Header().Set("Content-Type", "application/json")
				sw.WriteHeader(code)
				io.WriteString(sw, f.Body)
			default:
				sw.Header().Set("Content-Type", "text/plain; charset=utf-8")
				sw.WriteHeader(code)
				io.WriteString(sw, f.Body)
			}
			return
		case CutRequest, StallRequest:
			if r.Body != nil && r.Body != http.NoBody {
				cr := &cutReader{r: r.Body, left: f.AfterBytes, onCut: func() { st.cut.Store(true) }}
				if f.Kind == StallRequest {
					hold := f.Hold
					cr.stall = func() {
						var after <-chan time.Time
						if hold > 0 {
							t := time.NewTimer(hold)
							defer t.Stop()
							after = t.C
						}
						select {
						case <-after:
						case <-p.closed:
						}
					}
				}
				r.Body = cr
			}
		}
	}
	p.rp.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, st)))
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	st, _ := resp.Request.Context().Value(ctxKey{}).(*reqState)
	if st == nil || st.fault == nil {
		return nil
	}
	switch st.fault.Kind {
	case CutResponse:
		resp.Body = &cutReader{r: resp.Body, left: st.fault.AfterBytes}
	case RewriteStatus:
		resp.StatusCode = st.fault.Status
		resp.Status = fmt.Sprintf("%d %s", st.fault.Status, http.StatusText(st.fault.Status))
	case TruncateResponse:
		resp.Body = &truncReader{ReadCloser: resp.Body, left: st.fault.AfterBytes}
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
	}
	return nil
}

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if st, _ := r.Context().Value(ctxKey{}).(*reqState); st != nil && st.cut.Load() {
		// Break the client connection, as the network would.
		panic(http.ErrAbortHandler)
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	w.WriteHeader(http.StatusBadGateway)
}

// cutReader returns errCut once left bytes were read, after stall
// returns when there is one.
type cutReader struct {
	r     io.ReadCloser
	left  int64
	onCut func()
	stall func()
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		if c.stall != nil {
			c.stall()
			c.stall = nil
		}
		if c.onCut != nil {
			c.onCut()
		}
		return 0, errCut
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cutReader) Close() error { return c.r.Close() }

// truncReader ends cleanly after left bytes.
type truncReader struct {
	io.ReadCloser
	left int64
}

func (t *truncReader) Read(p []byte) (int, error) {
	if t.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > t.left {
		p = p[:t.left]
	}
	n, err := t.ReadCloser.Read(p)
	t.left -= int64(n)
	return n, err
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets the reverse proxy flush through the wrapper.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
