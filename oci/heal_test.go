package oci

import (
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/modelreg/modelreg/internal/faultproxy"
)

// Tests of the retry policy (heal.go): what cannot heal fails at the first
// try, with advice; what can heal is retried. Attempts are counted, not
// timed, so a slow machine cannot make them pass or fail.

// A TLS registry whose certificate no trusted authority signed fails after
// one handshake, and the error says how to trust the CA or speak HTTP.
func TestUploadUnknownCAFailsAtOnce(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request got through TLS: %s %s", r.Method, r.URL)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = discardLog()
	srv.StartTLS()
	defer srv.Close()
	repo, err := remote.NewRepository(srv.Listener.Addr().String() + "/m/tls")
	if err != nil {
		t.Fatal(err)
	}
	repo.Client = &auth.Client{Client: retry.DefaultClient, Cache: auth.NewCache()}
	// The first request of pull, inspect and verify (through oras-go).
	_, rerr := Resolve(bg(t), repo, Reference{Registry: repo.Reference.Registry, Repository: "m/tls", Tag: "v1"})
	if rerr == nil || !strings.Contains(rerr.Error(), "SSL_CERT_FILE") {
		t.Errorf("Resolve: error %v does not say how to trust the CA", rerr)
	}
	conns.Store(0)
	files := []File{randomFile(t, t.TempDir(), "config.json", 100)}
	_, err = UploadFiles(bg(t), repo, files, TransferOptions{Retry: fastRetry})
	if err == nil {
		t.Fatal("an upload to a registry with an untrusted certificate succeeded")
	}
	var ua x509.UnknownAuthorityError
	if !errors.As(err, &ua) {
		t.Errorf("error %v is not x509.UnknownAuthorityError", err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d TLS connections, want 1: an unknown certificate authority was retried", n)
	}
	for _, want := range []string{"SSL_CERT_FILE", "--plain-http"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// A registry asking for credentials nobody configured fails after one
// request, and the error says to log in.
func TestUploadUnauthorizedFailsAtOnce(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: http.StatusUnauthorized,
		Header: map[string]string{"WWW-Authenticate": `Basic realm="modelreg-test"`},
		Body:   `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`})
	files := []File{randomFile(t, t.TempDir(), "config.json", 100)}
	_, err := UploadFiles(bg(t), tr.repo(t, "m/auth"), files, TransferOptions{Retry: fastRetry})
	if err == nil {
		t.Fatal("an upload without credentials to a registry that wants them succeeded")
	}
	if n := tr.proxy.Stats().Requests; n != 1 {
		t.Errorf("%d requests, want 1: a 401 without credentials was retried", n)
	}
	if !strings.Contains(err.Error(), "log in") {
		t.Errorf("error %q does not say to log in", err)
	}
}

// 403 and other 4xx answers fail at once; a 503 heals on the next try.
func TestUploadRetriesOnlyWhatHeals(t *testing.T) {
	for _, tc := range []struct {
		status   int
		heals    bool
		requests int64 // HEADs seen
	}{
		{http.StatusForbidden, false, 1},
		{http.StatusBadRequest, false, 1},
		{http.StatusServiceUnavailable, true, 2},
		{http.StatusTooManyRequests, true, 2},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			tr := startRegistry(t, false, faultproxy.Options{})
			tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: tc.status, Method: "HEAD", Times: 1})
			files := []File{randomFile(t, t.TempDir(), "config.json", 100)}
			_, err := UploadFiles(bg(t), tr.repo(t, "m/heal"), files, TransferOptions{Retry: fastRetry})
			if tc.heals && err != nil {
				t.Fatalf("a single %d did not heal: %v", tc.status, err)
			}
			if !tc.heals && err == nil {
				t.Fatalf("a %d answer was retried until it went away", tc.status)
			}
			if n := int64(tr.countRequests("HEAD", "/blobs/")); n != tc.requests {
				t.Errorf("%d HEAD requests, want %d", n, tc.requests)
			}
		})
	}
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// A token service that refuses the token (here: 404 for the realm) fails
// after one challenge and one token request.
func TestUploadTokenRefusedFailsAtOnce(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: http.StatusUnauthorized, PathContains: "/v2/",
		Header: map[string]string{"WWW-Authenticate": `Bearer realm="` + tr.proxy.URL() + `/token",service="modelreg-test"`},
		Body:   `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`})
	files := []File{randomFile(t, t.TempDir(), "config.json", 100)}
	_, err := UploadFiles(bg(t), tr.repo(t, "m/token"), files, TransferOptions{Retry: fastRetry})
	if err == nil {
		t.Fatal("an upload whose token was refused succeeded")
	}
	if n := tr.proxy.Stats().Requests; n != 2 {
		t.Errorf("%d requests, want 2 (the challenge and the token request): a refused token was retried", n)
	}
}

// A plain-HTTP registry spoken to over TLS fails after one connection,
// and the error names --plain-http.
func TestUploadPlainHTTPRegistryOverTLSFailsAtOnce(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = discardLog()
	srv.Start()
	defer srv.Close()
	repo, err := remote.NewRepository(srv.Listener.Addr().String() + "/m/plain")
	if err != nil {
		t.Fatal(err)
	}
	repo.Client = &auth.Client{Client: retry.DefaultClient, Cache: auth.NewCache()}
	files := []File{randomFile(t, t.TempDir(), "config.json", 100)}
	_, err = UploadFiles(bg(t), repo, files, TransferOptions{Retry: fastRetry})
	if err == nil {
		t.Fatal("a TLS upload to a plain-HTTP server succeeded")
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	if !strings.Contains(err.Error(), "pass --plain-http") {
		t.Errorf("error %q does not name --plain-http", err)
	}
}
