package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// keyNames are the keys every test directory holds, under keys/NAME.pub.
var keyNames = []string{"release", "ci", "eval", "alice", "bob", "carol", "other"}

// testDir is a temporary policy directory with real key files.
type testDir struct {
	dir string
	ids map[string]string // key name → expected key ID
}

// newTestDir writes a fresh ECDSA P-256 public key for each of keyNames to
// DIR/keys/NAME.pub, plus some unusable key files:
// keys/release.key (a private key), keys/garbage.pub (not PEM) and
// keys/cert.pub (a PEM block of the wrong type).
func newTestDir(t testing.TB) *testDir {
	t.Helper()
	td := &testDir{dir: t.TempDir(), ids: map[string]string{}}
	if err := os.Mkdir(filepath.Join(td.dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range keyNames {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(der)
		td.ids[name] = "sha256:" + hex.EncodeToString(sum[:])
		td.write(t, "keys/"+name+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		if name == "release" {
			pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			td.write(t, "keys/release.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
		}
	}
	td.write(t, "keys/garbage.pub", []byte("this is not a key\n"))
	td.write(t, "keys/cert.pub", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}))
	return td
}

func (td *testDir) write(t testing.TB, rel string, data []byte) string {
	t.Helper()
	p := filepath.Join(td.dir, filepath.FromSlash(rel))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// parse parses src as "policy.yaml" in the test directory.
func (td *testDir) parse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src), "policy.yaml", td.dir)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func sigs(td *testDir, names ...string) []Signature {
	var out []Signature
	for _, n := range names {
		out = append(out, Signature{KeyID: td.ids[n]})
	}
	return out
}

func approvals(td *testDir, names ...string) []Approval {
	var out []Approval
	for _, n := range names {
		out = append(out, Approval{KeyID: td.ids[n], Approver: n})
	}
	return out
}

func evaluation(td *testDir, key string, accuracy any) Attestation {
	return Attestation{
		KeyID:         td.ids[key],
		PredicateType: "https://modelreg.dev/evaluation/v1",
		Predicate:     map[string]any{"metrics": map[string]any{"accuracy": accuracy}},
	}
}
