package oci

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
)

// EmbeddedRegistry is the registry of `modelreg serve`: olareg v0.2.2
// in-process, one OCI image layout per repository under a root folder, so
// data survives restarts. It supports the referrers API and tag deletion.
// Requests pass through repoGate, which orders a data race in olareg
// v0.2.2's directory store (see serve_gate.go).
type EmbeddedRegistry struct {
	// Addr is the address it listens on, e.g. 127.0.0.1:5000.
	Addr string
	root string
	srv  *http.Server
	reg  *olareg.Server
	ln   net.Listener

	closeOnce sync.Once
	closeErr  error
}

// NewEmbeddedRegistry listens on addr (port 0 picks a free one) and keeps
// its data under root (created if missing). Call Serve, then Close.
func NewEmbeddedRegistry(addr, root string) (*EmbeddedRegistry, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("registry root %s: %w", root, err)
	}
	yes := true
	reg := olareg.New(config.Config{
		Storage: config.ConfigStorage{StoreType: config.StoreDir, RootDir: root},
		API:     config.ConfigAPI{DeleteEnabled: &yes},
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		reg.Close()
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return &EmbeddedRegistry{
		Addr: ln.Addr().String(),
		root: root,
		srv:  &http.Server{Handler: newRepoGate(reg), ReadHeaderTimeout: 30 * time.Second},
		reg:  reg,
		ln:   ln,
	}, nil
}

// Serve answers requests until ctx ends, then shuts down gracefully.
func (e *EmbeddedRegistry) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- e.srv.Serve(e.ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil // Close was called
		}
		e.Close()
		return err
	case <-ctx.Done():
		return e.Close()
	}
}

// Close stops the server, waiting up to 10 s for requests in flight, and
// releases the storage. It is safe to call more than once.
func (e *EmbeddedRegistry) Close() error {
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := e.srv.Shutdown(ctx)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		if cerr := e.reg.Close(); err == nil {
			err = cerr
		}
		e.closeErr = err
	})
	return e.closeErr
}

// Wrap puts mw around the registry's HTTP handler, e.g. to notice the
// manifests it accepts (olareg has no notification hook). Call it before
// Serve.
func (e *EmbeddedRegistry) Wrap(mw func(http.Handler) http.Handler) {
	e.srv.Handler = mw(e.srv.Handler)
}
