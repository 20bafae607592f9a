package modelreg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/signing"
)

// keyPassword encrypts every key the tests make; COSIGN_PASSWORD holds it
// as it would for the CLI.
const keyPassword = "root-package-tests"

// gate is one test's world: the embedded registry (olareg in-process, as
// `modelreg serve` runs it) on a free loopback port, a keys folder beside
// the policy files, and a per-test state and digest-cache folder so no test
// reads the user's.
type gate struct {
	t     *testing.T
	ctx   context.Context
	host  string
	dir   string // keys/ and policies live here
	state string // MODELREG_STATE_DIR of the default client
	c     *Client
}

func newGate(t *testing.T) *gate {
	t.Helper()
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	reg, err := oci.NewEmbeddedRegistry("127.0.0.1:0", filepath.Join(tmp, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- reg.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("closing the embedded registry: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serving the embedded registry: %v", err)
		}
	})
	t.Setenv("COSIGN_PASSWORD", keyPassword)
	t.Setenv("MODELREG_CACHE_DIR", filepath.Join(tmp, "cache"))
	g := &gate{t: t, ctx: ctx, host: reg.Addr, dir: filepath.Join(tmp, "work"), state: filepath.Join(tmp, "state")}
	if err := os.MkdirAll(filepath.Join(g.dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	g.c = g.client(g.state, nil)
	return g
}

// client returns a Client whose accepted-record memory lives in state and
// whose clock is now (nil: the real one).
func (g *gate) client(state string, now func() time.Time) *Client {
	g.t.Helper()
	g.t.Setenv("MODELREG_STATE_DIR", state)
	c, err := New(Options{Now: now})
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

// key makes keys/NAME.key and keys/NAME.pub and returns the private key's
// path.
func (g *gate) key(name string) string {
	g.t.Helper()
	priv := filepath.Join(g.dir, "keys", name+".key")
	if _, err := os.Stat(priv); err == nil {
		return priv
	}
	priv, _, err := signing.WriteKeyPair(filepath.Join(g.dir, "keys", name), []byte(os.Getenv("COSIGN_PASSWORD")))
	if err != nil {
		g.t.Fatal(err)
	}
	return priv
}

func (g *gate) pub(name string) string {
	g.key(name)
	return filepath.Join(g.dir, "keys", name+".pub")
}

// policy writes a policy file (key paths relative to it) and returns its
// path.
func (g *gate) policy(name, yaml string) string {
	g.t.Helper()
	p := filepath.Join(g.dir, name)
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		g.t.Fatal(err)
	}
	return p
}

// model writes a model folder whose README says tag, so each tag gives a
// version of its own.
func (g *gate) model(tag string) string {
	g.t.Helper()
	d := filepath.Join(g.t.TempDir(), "model")
	weights := make([]byte, 96<<10)
	if _, err := rand.Read(weights); err != nil {
		g.t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"config.json": []byte(`{"model_type":"mlp"}`),
		"model.onnx":  weights,
		"README.md":   []byte("# " + tag + "\n"),
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
			g.t.Fatal(err)
		}
	}
	return d
}

func (g *gate) repo(name string) string { return g.host + "/" + name }

// push pushes dir to repo and returns the version's digest.
func (g *gate) push(repo, dir string) string {
	g.t.Helper()
	res, err := g.c.Push(g.ctx, repo, dir, PushOptions{})
	if err != nil {
		g.t.Fatalf("push %s to %s: %v", dir, repo, err)
	}
	return res.Digest
}

func (g *gate) sign(ref, key string) {
	g.t.Helper()
	if _, err := g.c.Sign(g.ctx, ref, g.key(key), []byte(keyPassword)); err != nil {
		g.t.Fatalf("sign %s with %s: %v", ref, key, err)
	}
}

// promote promotes ref to alias with c, signing the record with key.
func (g *gate) promote(c *Client, ref, alias, pol, key string) (*PromoteResult, error) {
	return c.Promote(g.ctx, ref, alias, PromoteOptions{Policy: pol, Key: g.key(key), Password: []byte(keyPassword)})
}

func (g *gate) promoteOK(c *Client, ref, alias, pol, key string) *PromoteResult {
	g.t.Helper()
	res, err := g.promote(c, ref, alias, pol, key)
	if err != nil {
		g.t.Fatalf("promote %s to %s: %v", ref, alias, err)
	}
	return res
}

// deploy is `modelreg pull REF DIR --policy POL` with c.
func (g *gate) deploy(c *Client, ref, dir, pol string) (*PullResult, error) {
	return c.Pull(g.ctx, ref, dir, PullOptions{Policy: pol})
}

// remote opens repo (HOST/REPO) with oras-go, as an attacker with push
// rights would.
func (g *gate) remote(repo string) *remote.Repository {
	g.t.Helper()
	r, err := remote.NewRepository(repo)
	if err != nil {
		g.t.Fatal(err)
	}
	r.PlainHTTP = true
	return r
}

// referrers lists the referrers of digest d in repo, through the
// referrers API of the embedded registry.
func (g *gate) referrers(repo, d string) []ocispec.Descriptor {
	g.t.Helper()
	r := g.remote(repo)
	desc, err := r.Resolve(g.ctx, d)
	if err != nil {
		g.t.Fatalf("resolve %s@%s: %v", repo, d, err)
	}
	var out []ocispec.Descriptor
	if err := r.Referrers(g.ctx, desc, "", func(rs []ocispec.Descriptor) error {
		out = append(out, rs...)
		return nil
	}); err != nil {
		g.t.Fatalf("referrers of %s@%s: %v", repo, d, err)
	}
	return out
}

// copyReferrers copies every referrer of digest d in src, with its blobs,
// to dst, which holds the same digest: what `oras cp -r` does, and what
// anyone with push rights to dst can do.
func (g *gate) copyReferrers(src, dst, d string) {
	g.t.Helper()
	for _, r := range g.referrers(src, d) {
		if _, err := oras.Copy(g.ctx, g.remote(src), r.Digest.String(), g.remote(dst), "", oras.DefaultCopyOptions); err != nil {
			g.t.Fatalf("copy referrer %s of %s from %s to %s: %v", r.Digest, d, src, dst, err)
		}
	}
}

// hideRecords deletes the promotion records of digest d in repo (bundle
// referrers whose predicate type is the promotion record's), as anyone
// with delete rights can.
func (g *gate) hideRecords(repo, d string) {
	g.t.Helper()
	r := g.remote(repo)
	n := 0
	for _, desc := range g.referrers(repo, d) {
		raw, err := content.FetchAll(g.ctx, r, desc)
		if err != nil {
			g.t.Fatalf("fetch referrer %s: %v", desc.Digest, err)
		}
		var m ocispec.Manifest
		if json.Unmarshal(raw, &m) != nil || m.Annotations[signing.AnnotationBundlePredicateType] != mediatypes.PredicatePromotion {
			continue
		}
		if err := r.Delete(g.ctx, desc); err != nil {
			g.t.Fatalf("delete record %s of %s: %v", desc.Digest, d, err)
		}
		n++
	}
	if n == 0 {
		g.t.Fatalf("premise: %s@%s has no promotion record to hide", repo, d)
	}
}

// wantDenied fails unless err wraps errdef.ErrDenied and matches every
// pattern.
func wantDenied(t *testing.T, what string, err error, patterns ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want a denial", what)
	}
	if !errors.Is(err, errdef.ErrDenied) {
		t.Fatalf("%s: want an error wrapping errdef.ErrDenied, got: %v", what, err)
	}
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(err.Error()) {
			t.Errorf("%s: the denial does not match %q: %v", what, p, err)
		}
	}
}

// wantAbsent fails if path exists: a refused deploy writes nothing.
func wantAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists after a refused pull (err %v)", path, err)
	}
}

// wantSameFile fails unless the file at got holds the bytes of want.
func wantSameFile(t *testing.T, want, got string) {
	t.Helper()
	a, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s does not hold the bytes of %s", got, want)
	}
}
