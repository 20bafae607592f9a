package faultproxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// backend is a small HTTP server on 127.0.0.1: GET /blob serves blob,
// PUT /upload reads the body and records how much arrived, GET /host
// echoes the Host header.
type backend struct {
	url  string
	blob []byte

	mu       sync.Mutex
	received []int64
	readErr  []error
}

func startBackend(t *testing.T, size int) *backend {
	t.Helper()
	b := &backend{blob: make([]byte, size)}
	rand.Read(b.blob)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /blob", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(b.blob)))
		w.Write(b.blob)
	})
	mux.HandleFunc("PUT /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.received = append(b.received, n)
		b.readErr = append(b.readErr, err)
		b.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /host", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	b.url = "http://" + ln.Addr().String()
	return b
}

func startProxy(t *testing.T, target string, opts Options) *Proxy {
	t.Helper()
	p, err := New(target, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// client never reuses connections across tests and never retries.
func client() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true}}
}

func TestForwardsAndKeepsHost(t *testing.T) {
	b := startBackend(t, 100000)
	p := startProxy(t, b.url, Options{})
	resp, err := client().Get(p.URL() + "/blob")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, b.blob) {
		t.Fatalf("GET through the proxy: %d bytes, err %v", len(got), err)
	}
	resp, err = client().Get(p.URL() + "/host")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(host) != p.Addr() {
		t.Errorf("backend saw Host %q, want the proxy's %q", host, p.Addr())
	}
	s := p.Stats()
	if s.Requests != 2 || s.BytesToClients < 100000 || s.BytesFromClients == 0 {
		t.Errorf("stats %+v", s)
	}
	if _, err := New("ftp://x", Options{}); err == nil {
		t.Error("New accepted a non-http target")
	}
}

func TestBandwidthCapAndDelay(t *testing.T) {
	b := startBackend(t, 2<<20)
	p := startProxy(t, b.url, Options{BytesPerSecond: 8 << 20, Delay: 40 * time.Millisecond})
	c := client()
	start := time.Now()
	resp, err := c.Get(p.URL() + "/blob")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	el := time.Since(start)
	// 2 MiB at 8 MiB/s is 250 ms, plus 40 ms handshake and 40 ms request.
	if n != 2<<20 || el < 300*time.Millisecond || el > 3*time.Second {
		t.Errorf("2 MiB at 8 MiB/s with 40 ms delay: %d bytes in %v", n, el)
	}
	// Upload direction: 1 MiB at 8 MiB/s is 125 ms, plus the request delay.
	start = time.Now()
	req, _ := http.NewRequest(http.MethodPut, p.URL()+"/upload", bytes.NewReader(make([]byte, 1<<20)))
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("1 MiB upload at 8 MiB/s took %v", el)
	}
	// A request on a kept connection pays the request delay only.
	start = time.Now()
	resp, err = c.Get(p.URL() + "/host")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if el := time.Since(start); el < 40*time.Millisecond || el > time.Second {
		t.Errorf("small request took %v, want about 40 ms", el)
	}
}

func TestStatusFaults(t *testing.T) {
	b := startBackend(t, 1000)
	p := startProxy(t, b.url, Options{})
	p.Inject(Fault{Kind: Status, Status: 429, RetryAfter: "3", Method: "GET", PathContains: "/blob", Times: 2})
	p.Inject(Fault{Kind: Status, Status: 503, Method: "PUT"})
	c := client()
	for i, want := range []int{429, 429, 200} {
		resp, err := c.Get(p.URL() + "/blob")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %d: %d, want %d", i, resp.StatusCode, want)
		}
		if want == 429 && resp.Header.Get("Retry-After") != "3" {
			t.Errorf("GET %d: Retry-After %q", i, resp.Header.Get("Retry-After"))
		}
	}
	if got := p.Pending(); got != 1 {
		t.Errorf("%d faults pending, want the unlimited 503", got)
	}
	resp, err := c.Get(p.URL() + "/host")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("unmatched request: %d", resp.StatusCode)
	}
	log := p.Requests()
	if len(log) != 4 || log[0].Fault != "status" || log[0].Status != 429 || log[2].Fault != "" {
		t.Errorf("request log %+v", log)
	}
	if s := p.Stats(); s.Faults != 2 {
		t.Errorf("stats %+v", s)
	}
	p.Clear()
	if p.Pending() != 0 {
		t.Error("Clear left faults armed")
	}
}

func TestCutResponse(t *testing.T) {
	b := startBackend(t, 4<<20)
	p := startProxy(t, b.url, Options{})
	p.Inject(Fault{Kind: CutResponse, Method: "GET", AfterBytes: 1 << 20, Times: 1})
	resp, err := client().Get(p.URL() + "/blob")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("read %d bytes of a cut response without an error", len(got))
	}
	if len(got) > 1<<20 || len(got) < 512<<10 || !bytes.Equal(got, b.blob[:len(got)]) {
		t.Errorf("cut after 1 MiB: got %d bytes", len(got))
	}
	// Spent: the next request is whole.
	resp, err = client().Get(p.URL() + "/blob")
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(got) != 4<<20 {
		t.Errorf("after the cut: %d bytes, %v", len(got), err)
	}
}

func TestTruncateResponse(t *testing.T) {
	b := startBackend(t, 1<<20)
	p := startProxy(t, b.url, Options{})
	p.Inject(Fault{Kind: TruncateResponse, AfterBytes: 1000})
	resp, err := client().Get(p.URL() + "/blob")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(got) != 1000 || resp.ContentLength != -1 {
		t.Errorf("truncated body: %d bytes, err %v, Content-Length %d", len(got), err, resp.ContentLength)
	}
}

func TestCutRequest(t *testing.T) {
	b := startBackend(t, 10)
	p := startProxy(t, b.url, Options{})
	p.Inject(Fault{Kind: CutRequest, Method: "PUT", AfterBytes: 256 << 10, Times: 1})
	req, _ := http.NewRequest(http.MethodPut, p.URL()+"/upload", bytes.NewReader(make([]byte, 4<<20)))
	resp, err := client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("cut upload answered %s", resp.Status)
	}
	// The backend saw a broken body of at most the bytes let through.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.received)
		b.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.received) != 1 || b.received[0] > 256<<10 || b.readErr[0] == nil {
		t.Errorf("backend received %v with errors %v, want a broken body of at most 256 KiB", b.received, b.readErr)
	}
	if errors.Is(b.readErr[0], io.EOF) {
		t.Errorf("backend saw a clean end of body")
	}
}
