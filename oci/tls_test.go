package oci

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/modelreg/modelreg/errdef"
)

// TestCertsDirClientCertificate: a registry that asks for a client
// certificate is reached with the CA and the NAME.cert/NAME.key pair of its
// certs.d/HOST:PORT folder, and refused without them.
func TestCertsDirClientCertificate(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "modelreg client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	pool := x509.NewCertPool()
	pool.AddCert(clientCert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()
	host := srv.Listener.Addr().String()

	dirs := t.TempDir()
	hd := filepath.Join(dirs, host)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(hd, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(hd, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	get := func() error {
		c, err := NewClient(ClientOptions{LoopbackTLS: true, TLS: TLSOptions{CertsDirs: []string{dirs}}, Mirror: MirrorOptions{RegistriesConf: "-"}})
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: c.Transport()}).Get((&url.URL{Scheme: "https", Host: host, Path: "/v2/"}).String())
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(); err == nil {
		t.Fatal("the server accepted a client without a certificate")
	}
	write("client.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err := get(); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Fatalf("a client.key without client.cert: %v, want ErrInvalidInput", err)
	}
	write("client.cert", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err := get(); err != nil {
		t.Fatalf("with certs.d/%s/client.cert: %v", host, err)
	}
}

func TestCAFileBadInput(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{notPEM, filepath.Join(t.TempDir(), "missing.pem")} {
		if _, err := NewClient(ClientOptions{TLS: TLSOptions{CAFile: f}}); !errors.Is(err, errdef.ErrInvalidInput) {
			t.Errorf("CA file %s: %v, want ErrInvalidInput", f, err)
		}
	}
}
