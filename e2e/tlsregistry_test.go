package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/modelreg/modelreg/internal/distconfig"
)

// tlsRegistry is distribution v3 that speaks only HTTPS, with a
// certificate from a CA made by the test, and asks for credentials
// (htpasswd, HTTP Basic), as GHCR, ECR and Harbor do.
type tlsRegistry struct {
	*registry
	// caFile is the PEM file of the CA that signed the server certificate.
	caFile string
	user   string
	pass   string
}

// authPolicy is the policy of the authenticated registry's tests:
// production needs a release signature and a promotion record.
const authPolicy = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub], minSigners: 1}
    promoters: {keys: [keys/promoter.pub]}
`

// startTLSRegistry starts the registry under a temporary folder; it stops
// with the test. Its access log (in logPath) records every request.
func startTLSRegistry(t *testing.T) *tlsRegistry {
	t.Helper()
	bin := toolPath(t, "registry")
	dir := t.TempDir()
	caFile, certFile, keyFile := makeCertificates(t, dir)
	r := &tlsRegistry{caFile: caFile, user: "ml-ci", pass: "correct horse battery"}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	writeFile(t, htpasswd, []byte(r.user+":"+string(hash)+"\n"))
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry{name: "distribution-tls", host: fmt.Sprintf("127.0.0.1:%d", port), root: filepath.Join(dir, "data"),
		layout: layoutDistribution, tagDelete: true, logPath: filepath.Join(dir, "server.log")}
	r.registry = reg
	cfg := strings.Replace(distconfig.YAML(reg.host, reg.root), "disabled: true", "disabled: false", 1) +
		fmt.Sprintf("  tls:\n    certificate: %q\n    key: %q\nauth:\n  htpasswd:\n    realm: modelreg-e2e\n    path: %q\n", certFile, keyFile, htpasswd)
	cfgPath := filepath.Join(dir, "config.yml")
	writeFile(t, cfgPath, []byte(cfg))
	stop, exited, err := startProcess(bin, []string{"serve", cfgPath}, []string{"OTEL_TRACES_EXPORTER=none"}, reg.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the TLS registry: %v", err)
		}
	})
	if err := waitReadyTLS(reg.host, caFile, exited); err != nil {
		t.Fatalf("TLS registry: %v\nserver log:\n%s", err, readTail(reg.logPath, 3000))
	}
	return r
}

// makeCertificates writes a CA certificate and a server certificate for
// 127.0.0.1 and localhost signed by it (ECDSA P-256, valid for a day).
func makeCertificates(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "modelreg e2e CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	writeFile(t, caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return caFile, certFile, keyFile
}

// waitReadyTLS polls GET https://host/v2/ until it asks for credentials.
func waitReadyTLS(host, caFile string, exited <-chan struct{}) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(readyTimeout)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errExited
		default:
		}
		resp, err := client.Get("https://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("GET https://%s/v2/ did not answer 401 within %s (last: %s)", host, readyTimeout, last)
}

// accessLog counts the requests in the registry's access log from mark on
// (a length of the log returned by logMark).
var accessLine = regexp.MustCompile(`"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/[0-9.]+" (\d{3}) `)

// logMark is the current length of the registry's log.
func (r *tlsRegistry) logMark(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// requestsSince returns "METHOD PATH STATUS" of each access log line after
// mark. The access log is written after the answer, so it waits until
// the log stops growing.
func (r *tlsRegistry) requestsSince(t *testing.T, mark int) []string {
	t.Helper()
	var b []byte
	for prev := -1; ; prev = len(b) {
		var err error
		if b, err = os.ReadFile(r.logPath); err != nil {
			t.Fatal(err)
		}
		if len(b) == prev {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	var out []string
	for _, m := range accessLine.FindAllStringSubmatch(string(b[mark:]), -1) {
		out = append(out, m[1]+" "+m[2]+" "+m[3])
	}
	return out
}

// modelregStdin runs modelreg with stdin.
func (c *cli) modelregStdin(stdin string, args ...string) result {
	c.t.Helper()
	needModelreg(c.t)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, modelregBin, args...)
	cmd.Dir, cmd.Env, cmd.SysProcAttr = c.dir, c.env, childAttr()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: append([]string{"modelreg"}, args...), stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("%v\n%s", err, r)
	}
	return r
}

// dockerConfig reads the docker config of c.
func (c *cli) dockerConfig(t *testing.T) map[string]any {
	t.Helper()
	path := filepath.Join(envValue(c.env, "DOCKER_CONFIG"), "config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]any{}
	}
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// hasAuth reports whether the docker config's auths hold host.
func hasAuth(cfg map[string]any, host string) bool {
	auths, _ := cfg["auths"].(map[string]any)
	_, ok := auths[host]
	return ok
}

// releaseFlow pushes a model, signs it, promotes it to production and
// pulls production with the policy and the release key, byte for byte.
func releaseFlow(t *testing.T, p *promo) {
	t.Helper()
	pol := p.policy("policy.yaml", authPolicy)
	v := p.push("model")
	p.sign(v.Digest)
	p.promoteOK(p.byDigest(v.Digest), "production", pol)
	deploy := filepath.Join(t.TempDir(), "deploy")
	var pl pullJSON
	p.c.okJSON(&pl, "pull", p.ref(":production"), deploy, "--policy", pol, "--key", p.pub("release"))
	if pl.Digest != v.Digest {
		t.Fatalf("pull production: digest %s, want %s", pl.Digest, v.Digest)
	}
	assertSameFiles(t, v.dir, deploy)
}

// TestAuthenticatedTLSRegistry: against a registry that speaks only TLS
// with a private CA and asks for credentials, login checks credentials
// before it stores them, a refused password fails at once (one try, exit
// 1, a message that says so), and push, sign, promote and a verified pull
// work with the CA from --ca-file and the credentials in the docker
// config, and with the CA from a certs.d folder and the credentials in a
// credential helper.
func TestAuthenticatedTLSRegistry(t *testing.T) {
	t.Parallel()
	r := startTLSRegistry(t)

	t.Run("docker config and --ca-file", func(t *testing.T) {
		p := newPromo(t, r.registry)
		p.c = p.c.withEnv("MODELREG_PLAIN_HTTP=false", "MODELREG_CA_FILE="+r.caFile)
		c := p.c

		// Without credentials the registry says no, in words.
		res := c.fails([]int{exitError}, "versions", p.repository)
		wantStderr(t, res, `docker config has none for `+regexp.QuoteMeta(r.host)+`: run .modelreg login`)

		mark := r.logMark(t)
		res = c.modelregStdin("wrong password\n", "login", "--username", r.user, "--password-stdin", r.host)
		if res.code != exitError {
			t.Fatalf("login with a wrong password: want exit code 1:\n%s", res)
		}
		wantStderr(t, res, `refused the credentials for `+regexp.QuoteMeta(r.host))
		reqs := r.requestsSince(t, mark)
		t.Logf("login with a wrong password: %d requests: %q", len(reqs), reqs)
		if n := countStatus(reqs, "401"); len(reqs) > 2 || n != len(reqs) {
			t.Errorf("login with a wrong password sent %d requests, want at most 2 (a challenge and one try with the credentials): %q", len(reqs), reqs)
		}
		if hasAuth(c.dockerConfig(t), r.host) {
			t.Fatalf("login with a wrong password stored it: %v", c.dockerConfig(t))
		}

		res = c.modelregStdin(r.pass+"\n", "login", "-u", r.user, "--password-stdin", r.host)
		if res.code != exitOK {
			t.Fatalf("login: want exit code 0:\n%s", res)
		}
		if !hasAuth(c.dockerConfig(t), r.host) {
			t.Fatalf("login stored nothing for %s: %v", r.host, c.dockerConfig(t))
		}
		releaseFlow(t, p)

		// A wrong password in the docker config: exit 1 at once.
		writeFile(t, filepath.Join(envValue(c.env, "DOCKER_CONFIG"), "config.json"),
			[]byte(`{"auths":{"`+r.host+`":{"auth":"`+basicAuth(r.user, "stale")+`"}}}`))
		mark = r.logMark(t)
		start := time.Now()
		again := filepath.Join(t.TempDir(), "again")
		writeFile(t, filepath.Join(again, "README.md"), []byte("# again\n"))
		res = c.fails([]int{exitError}, "push", p.repository, again)
		wantStderr(t, res, `refused the credentials for `+regexp.QuoteMeta(r.host))
		reqs = r.requestsSince(t, mark)
		t.Logf("push with a refused password: %d requests: %q", len(reqs), reqs)
		if n := countStatus(reqs, "401"); n > 2 || len(reqs) > 2 {
			t.Errorf("push with a refused password sent %d requests (%d answered 401), want at most 2: %q", len(reqs), n, reqs)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("push with a refused password took %s", d)
		}

		c.ok("logout", r.host)
		if hasAuth(c.dockerConfig(t), r.host) {
			t.Fatalf("logout left the credentials: %v", c.dockerConfig(t))
		}
	})

	t.Run("credential helper and certs.d", func(t *testing.T) {
		p := newPromo(t, r.registry)
		home := envValue(p.c.env, "HOME")
		bin := filepath.Join(home, "bin")
		store := filepath.Join(home, "helper-store.json")
		writeFile(t, filepath.Join(bin, "docker-credential-e2e"), []byte(credentialHelper))
		if err := os.Chmod(filepath.Join(bin, "docker-credential-e2e"), 0o755); err != nil {
			t.Fatal(err)
		}
		certsd := filepath.Join(envValue(p.c.env, "XDG_CONFIG_HOME"), "containers", "certs.d", r.host)
		ca, err := os.ReadFile(r.caFile)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(certsd, "ca.crt"), ca)
		writeFile(t, filepath.Join(envValue(p.c.env, "DOCKER_CONFIG"), "config.json"), []byte(`{"credHelpers":{"`+r.host+`":"e2e"}}`))
		p.c = p.c.withEnv("PATH="+bin+":"+os.Getenv("PATH"), "E2E_HELPER_STORE="+store, "MODELREG_PLAIN_HTTP=false")
		c := p.c

		res := c.modelregStdin(r.pass, "login", "--username", r.user, "--password-stdin", r.host)
		if res.code != exitOK {
			t.Fatalf("login through the credential helper: want exit code 0:\n%s", res)
		}
		wantStderr(t, result{stderr: res.stdout}, `docker-credential-e2e`)
		if b, err := os.ReadFile(store); err != nil || !strings.Contains(string(b), r.pass) {
			t.Fatalf("the credential helper holds %q (%v), want the password", b, err)
		}
		if hasAuth(c.dockerConfig(t), r.host) {
			t.Fatalf("login wrote the credentials into the config file although a helper is named: %v", c.dockerConfig(t))
		}
		releaseFlow(t, p)

		// The same without the certs.d folder: the CA is unknown, and the
		// error says how to give it.
		if err := os.RemoveAll(certsd); err != nil {
			t.Fatal(err)
		}
		res = c.fails([]int{exitError}, "versions", p.repository)
		wantStderr(t, res, `x509|certificate`, `--ca-file`)
		// --insecure skips verification, and says so.
		res = c.ok("versions", p.repository, "--insecure")
		wantStderr(t, res, `warning: --insecure: registry TLS certificates are not verified`)
	})
}

// credentialHelper is a docker credential helper
// (github.com/docker/docker-credential-helpers protocol) keeping one
// credential in the file $E2E_HELPER_STORE.
const credentialHelper = `#!/bin/sh
case "$1" in
store) cat > "$E2E_HELPER_STORE" ;;
get) cat >/dev/null; if [ -f "$E2E_HELPER_STORE" ]; then cat "$E2E_HELPER_STORE"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) cat >/dev/null; rm -f "$E2E_HELPER_STORE" ;;
list) echo "{}" ;;
*) echo "unknown command $1" >&2; exit 1 ;;
esac
`

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func countStatus(reqs []string, status string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasSuffix(r, " "+status) {
			n++
		}
	}
	return n
}

// TestRegistryFlagsBadInput: login without a way to get the password is a
// usage error (never a prompt in CI), and a CA file, certs.d folder or
// mirror that cannot be used is an error naming it, before any request;
// global flags with a value work after the command too.
func TestRegistryFlagsBadInput(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	for _, args := range [][]string{
		{"login"},
		{"login", "127.0.0.1:1"},
		{"login", "--password-stdin", "127.0.0.1:1"},
		{"logout"},
	} {
		res := c.modelregStdin("", args...)
		if res.code != exitUsage {
			t.Errorf("want exit code %d:\n%s", exitUsage, res)
		}
	}
	missing := filepath.Join(c.dir, "no-such-ca.pem")
	notPEM := filepath.Join(c.dir, "not-a-ca.pem")
	writeFile(t, notPEM, []byte("hello\n"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"versions", "127.0.0.1:1/e2e/flags", "--ca-file", missing}, `CA file: .*no-such-ca.pem`},
		{[]string{"--ca-file=" + notPEM, "versions", "127.0.0.1:1/e2e/flags"}, `CA file .*not-a-ca.pem holds no PEM certificate`},
		{[]string{"pull", "127.0.0.1:1/e2e/flags:v1", filepath.Join(c.dir, "out"), "--mirror", "cache.local/x:tag"}, `mirror "cache.local/x:tag"`},
	} {
		res := c.fails([]int{exitError}, tc.args...)
		wantStderr(t, res, tc.want)
	}
}
