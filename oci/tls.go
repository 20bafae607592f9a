package oci

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/modelreg/modelreg/errdef"
)

// DefaultCertsDirs are the folders searched for HOST[:PORT]/ folders of
// registry certificates, as docker and podman do
// (https://docs.docker.com/engine/security/certificates/,
// containers-certs.d(5)): /etc/docker/certs.d, /etc/containers/certs.d and
// $XDG_CONFIG_HOME/containers/certs.d (or ~/.config/containers/certs.d).
func DefaultCertsDirs() []string {
	dirs := []string{"/etc/docker/certs.d", "/etc/containers/certs.d"}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		dirs = append(dirs, filepath.Join(x, "containers", "certs.d"))
	} else if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, ".config", "containers", "certs.d"))
	}
	return dirs
}

// TLSOptions configure HTTPS to registries. The zero value trusts the
// system roots and the certs.d folders of DefaultCertsDirs.
type TLSOptions struct {
	// CAFile is a PEM file of CA certificates trusted for every registry,
	// besides the system roots (the CLI's --ca-file, MODELREG_CA_FILE).
	CAFile string
	// CertsDirs are folders holding one HOST[:PORT] folder per registry
	// with CA certificates (*.crt) and client certificates (NAME.cert
	// with NAME.key), as docker and podman read them. If nil,
	// DefaultCertsDirs(); an empty non-nil slice reads none.
	CertsDirs []string
	// Insecure skips verification of every registry's TLS certificate
	// (--insecure). Digests still verify what is pulled, but credentials
	// and pushed data are open to whoever sits on the path.
	Insecure bool
}

// hostTransport sends each request through a transport whose TLS
// configuration belongs to the request's host: the system roots plus
// ClientOptions.CAFile plus the *.crt files of certs.d/HOST[:PORT]/, the
// client certificate pairs (NAME.cert with NAME.key) of that folder, and
// no verification at all for Insecure. Hosts with nothing of their own
// share one pooled transport.
type hostTransport struct {
	caPEM     []byte // the CA file, read once
	caFile    string
	certsDirs []string
	insecure  func(host string) bool

	mu     sync.Mutex
	byHost map[string]http.RoundTripper
}

// newHostTransport checks the CA file at once, so a wrong path fails
// before any request. insecureHost names further hosts whose certificate
// is not verified (mirrors marked insecure in registries.conf).
func newHostTransport(opts TLSOptions, insecureHost func(string) bool) (*hostTransport, error) {
	insecure := func(host string) bool {
		return opts.Insecure || (insecureHost != nil && insecureHost(host))
	}
	ht := &hostTransport{caFile: opts.CAFile, certsDirs: opts.CertsDirs, insecure: insecure, byHost: map[string]http.RoundTripper{}}
	if ht.certsDirs == nil {
		ht.certsDirs = DefaultCertsDirs()
	}
	if opts.CAFile != "" {
		b, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %v", errdef.ErrInvalidInput, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate: give the CA certificate that signed the registry's certificate (BEGIN CERTIFICATE)", errdef.ErrInvalidInput, opts.CAFile)
		}
		ht.caPEM = b
	}
	return ht, nil
}

func (ht *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt, err := ht.forHost(req.URL.Host)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, tlsHint(req.URL.Host, err)
	}
	return resp, nil
}

// tlsHint adds what to do to a certificate error; the cause stays
// reachable with errors.As.
func tlsHint(host string, err error) error {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var tv *tls.CertificateVerificationError
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &tv) {
		return fmt.Errorf("%w (registry %s: give the CA that signed its certificate with --ca-file or as certs.d/%s/ca.crt; --insecure skips verification)", err, host, host)
	}
	return err
}

// forHost returns (and keeps) the transport for host (HOST[:PORT]).
func (ht *hostTransport) forHost(host string) (http.RoundTripper, error) {
	ht.mu.Lock()
	defer ht.mu.Unlock()
	if rt, ok := ht.byHost[host]; ok {
		return rt, nil
	}
	cfg, err := ht.tlsConfig(host)
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = sharedTransport()
	if cfg != nil {
		t := sharedTransport().Clone()
		t.TLSClientConfig = cfg
		rt = t
	}
	ht.byHost[host] = rt
	return rt, nil
}

// tlsConfig is host's TLS configuration, nil when it needs none of its own.
func (ht *hostTransport) tlsConfig(host string) (*tls.Config, error) {
	var cas [][]byte
	var certs []tls.Certificate
	if ht.caPEM != nil {
		cas = append(cas, ht.caPEM)
	}
	for _, dir := range ht.certsDirs {
		hd := filepath.Join(dir, host)
		entries, err := os.ReadDir(hd)
		if err != nil {
			continue // no folder for this host (or not readable): docker ignores it too
		}
		for _, e := range entries {
			p := filepath.Join(hd, e.Name())
			switch {
			case strings.HasSuffix(e.Name(), ".crt"):
				b, err := os.ReadFile(p)
				if err != nil {
					return nil, fmt.Errorf("%w: registry CA %s: %v", errdef.ErrInvalidInput, p, err)
				}
				if !x509.NewCertPool().AppendCertsFromPEM(b) {
					return nil, fmt.Errorf("%w: registry CA %s holds no PEM certificate", errdef.ErrInvalidInput, p)
				}
				cas = append(cas, b)
			case strings.HasSuffix(e.Name(), ".cert"):
				key := strings.TrimSuffix(p, ".cert") + ".key"
				c, err := tls.LoadX509KeyPair(p, key)
				if err != nil {
					return nil, fmt.Errorf("%w: client certificate %s with key %s: %v", errdef.ErrInvalidInput, p, key, err)
				}
				certs = append(certs, c)
			case strings.HasSuffix(e.Name(), ".key"):
				if _, err := os.Stat(strings.TrimSuffix(p, ".key") + ".cert"); err != nil {
					return nil, fmt.Errorf("%w: client key %s has no certificate %s beside it", errdef.ErrInvalidInput, p, strings.TrimSuffix(e.Name(), ".key")+".cert")
				}
			}
		}
	}
	insecure := ht.insecure(host)
	if len(cas) == 0 && len(certs) == 0 && !insecure {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: certs, InsecureSkipVerify: insecure}
	if len(cas) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, b := range cas {
			pool.AppendCertsFromPEM(b)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// credentialsRefused turns a 401 answer to a request that carried Basic
// credentials (the registry itself, or its token service) into an error
// that says so, at once: the same credentials will not work on another
// try, and retrying them can lock the account. A Basic challenge to a host
// the docker config holds no credentials for says to log in (a Bearer
// challenge may still give an anonymous token, so it passes).
type credentialsRefused struct {
	next http.RoundTripper
	cred auth.CredentialFunc
}

func (c credentialsRefused) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	host := req.URL.Host
	switch {
	case strings.HasPrefix(req.Header.Get("Authorization"), "Basic "):
		re := newRegistryError(resp)
		re.Message = strings.TrimSpace(re.Message + fmt.Sprintf(" (the registry refused the credentials for %s: check the user name and password, then run 'modelreg login %s')", host, host))
		return nil, re
	case req.Header.Get("Authorization") == "" && c.cred != nil &&
		strings.HasPrefix(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "basic"):
		if cr, cerr := c.cred(req.Context(), host); cerr == nil && cr == auth.EmptyCredential {
			re := newRegistryError(resp)
			re.Message = strings.TrimSpace(re.Message + fmt.Sprintf(" (the registry asks for credentials and the docker config has none for %s: run 'modelreg login %s')", host, host))
			return nil, re
		}
	}
	return resp, nil
}

// warnings is where w warns, os.Stderr when nil.
func warnings(w io.Writer) io.Writer {
	if w == nil {
		return os.Stderr
	}
	return w
}
