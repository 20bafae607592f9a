package oci

import (
	"fmt"
	"io"
	"net/http"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// UserAgent is sent with every registry request.
const UserAgent = "modelreg"

// ClientOptions configure a [Client]. The zero value is usable.
type ClientOptions struct {
	// PlainHTTP speaks HTTP instead of HTTPS to every registry. If false,
	// only loopback registries (localhost, 127.0.0.0/8, ::1) use HTTP,
	// unless LoopbackTLS.
	PlainHTTP bool
	// LoopbackTLS speaks HTTPS to loopback registries too, which
	// otherwise get plain HTTP (the CLI's explicit --plain-http=false),
	// for a TLS registry reached through a port-forward or a tunnel.
	LoopbackTLS bool
	// TLS holds the CA certificates, client certificates and the
	// verification switch for HTTPS registries; the zero value uses the
	// system roots and the certs.d folders of DefaultCertsDirs.
	TLS TLSOptions
	// Mirrors and the registries.conf file say where manifests and blobs
	// may be fetched by digest (see MirrorOptions).
	Mirror MirrorOptions
	// Warnings receives warnings (TLS verification off, a mirror refused).
	// If nil, os.Stderr.
	Warnings io.Writer
	// DockerConfig is the docker config file to read credentials from. If
	// empty, $DOCKER_CONFIG/config.json or ~/.docker/config.json is used,
	// with its credential helpers, as docker, oras and cosign do; a
	// $DOCKER_CONFIG folder holding only .dockerconfigjson (a mounted
	// kubernetes.io/dockerconfigjson Secret) is read from that file.
	DockerConfig string
	// HTTPClient is the underlying client. If nil, oras-go's retrying
	// client is used (5xx, 429 and connection resets are retried with
	// backoff, at most 5 times).
	HTTPClient *http.Client
	// ReadCache is how many bytes of manifests and blobs fetched by
	// digest are kept in memory and answered from there (GET and HEAD of
	// /v2/<name>/manifests|blobs/<digest>, bodies up to 1 MiB, least
	// recently used evicted first). Content addressed, they never go
	// stale. For long-running readers (the dashboard); 0, the default,
	// keeps nothing.
	ReadCache int64
}

// Client reaches registries with credentials from the docker config.
type Client struct {
	opts      ClientOptions
	auth      *auth.Client
	transport http.RoundTripper
	mirrors   *mirrorConfig
}

// NewClient returns a client. It fails only when the docker config exists
// but cannot be read.
func NewClient(opts ClientOptions) (*Client, error) {
	var (
		store credentials.Store
		err   error
	)
	if opts.DockerConfig != "" {
		store, err = credentials.NewStore(opts.DockerConfig, credentials.StoreOptions{})
	} else {
		store, err = dockerStore() // also a mounted pull Secret; see dockerconfig.go
	}
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials from the docker config: %w", err)
	}
	mirrors, err := loadMirrors(opts.Mirror, opts.Warnings)
	if err != nil {
		return nil, err
	}
	ht, err := newHostTransport(opts.TLS, mirrors.insecure)
	if err != nil {
		return nil, err
	}
	if opts.TLS.Insecure {
		fmt.Fprintln(warnings(opts.Warnings), "modelreg: warning: --insecure: registry TLS certificates are not verified; anyone on the network path can read and change what is sent")
	}
	cred := credentials.Credential(store)
	var transport http.RoundTripper = ht
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: retry.NewTransport(credentialsRefused{next: ht, cred: cred})}
	}
	if opts.ReadCache > 0 {
		rc := newReadCache(opts.ReadCache)
		transport = rc.wrap(ht)
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		cp := *hc
		cp.Transport = rc.wrap(base)
		hc = &cp
	}
	ac := &auth.Client{
		Client:     hc,
		Cache:      auth.NewCache(),
		Credential: cred,
		Header:     http.Header{"User-Agent": {UserAgent}},
	}
	return &Client{opts: opts, auth: ac, transport: transport, mirrors: mirrors}, nil
}

// Transport is the HTTP transport with the TLS configuration of each
// registry host (TLSOptions), for clients other than oras-go (the signing
// package's go-containerregistry).
func (c *Client) Transport() http.RoundTripper { return c.transport }

// PlainHTTP reports whether registryHost is spoken to over plain HTTP.
func (c *Client) PlainHTTP(registryHost string) bool {
	return c.opts.PlainHTTP || (IsLoopback(registryHost) && !c.opts.LoopbackTLS)
}

// Repository returns an oras-go repository for ref's HOST/REPO.
func (c *Client) Repository(ref Reference) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref.Name())
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", ref.Name(), err)
	}
	repo.Client = c.auth
	repo.PlainHTTP = c.PlainHTTP(ref.Registry)
	return repo, nil
}

// HTTP returns the authenticating HTTP client, for the transfer engine's
// own requests (chunked uploads, ranged downloads).
func (c *Client) HTTP() *auth.Client { return c.auth }
