package signing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modelreg/modelreg/errdef"
)

func TestGenerateKeyPair(t *testing.T) {
	priv, pub, err := GenerateKeyPair([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(priv); b == nil || b.Type != "ENCRYPTED SIGSTORE PRIVATE KEY" {
		t.Fatalf("private key PEM: %q", priv)
	}
	b, _ := pem.Decode(pub)
	if b == nil || b.Type != "PUBLIC KEY" {
		t.Fatalf("public key PEM: %q", pub)
	}
	pk, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := pk.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("want ECDSA P-256, got %T", pk)
	}

	// KeyID is sha256 over the PKIX DER, computed independently here.
	sum := sha256.Sum256(b.Bytes)
	id, err := KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha256:" + hex.EncodeToString(sum[:]); id != want {
		t.Fatalf("KeyID = %s, want %s", id, want)
	}
	if _, err := KeyID([]byte("not a key")); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Fatalf("KeyID of garbage: %v", err)
	}
}

func TestKeyPairFiles(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "release")
	pw := []byte("correct horse")
	keyPath, pubPath, err := WriteKeyPair(prefix, pw)
	if err != nil {
		t.Fatal(err)
	}
	if keyPath != prefix+".key" || pubPath != prefix+".pub" {
		t.Fatalf("paths %s %s", keyPath, pubPath)
	}
	st, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", st.Mode().Perm())
	}

	priv, err := LoadPrivateKey(keyPath, pw)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if priv.Path != keyPath || pub.Path != pubPath {
		t.Fatalf("paths not recorded: %q %q", priv.Path, pub.Path)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(pub.ID) || priv.ID != pub.ID {
		t.Fatalf("IDs: private %q public %q", priv.ID, pub.ID)
	}

	// Round trip: what the private key signs, the public key verifies;
	// other data does not.
	msg := []byte("model weights digest")
	sig, err := priv.Signer.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := pub.Verifier.VerifySignature(bytes.NewReader(sig), strings.NewReader("other")); err == nil {
		t.Fatal("signature verified for other data")
	}

	// A second key pair has another ID.
	_, other := newKey(t, "other")
	if other.ID == pub.ID {
		t.Fatal("two key pairs share an ID")
	}
}

func TestLoadPrivateKeyErrors(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath, err := WriteKeyPair(filepath.Join(dir, "k"), []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, password string
		want                 []string
	}{
		{"wrong password", keyPath, "wrong", []string{"wrong password", keyPath, "COSIGN_PASSWORD"}},
		{"empty password", keyPath, "", []string{"wrong password", keyPath, "COSIGN_PASSWORD"}},
		{"public key file", pubPath, "right", []string{pubPath, "not a cosign private key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPrivateKey(tt.path, []byte(tt.password))
			if !errors.Is(err, errdef.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "missing.key"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := LoadPublicKey(keyPath); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Fatalf("private key loaded as public key: %v", err)
	}
}

func TestWriteKeyPairRefusesOverwrite(t *testing.T) {
	for _, existing := range []string{".key", ".pub"} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			prefix := filepath.Join(dir, "cosign")
			if err := os.WriteFile(prefix+existing, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := WriteKeyPair(prefix, []byte("pw"))
			if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), prefix+existing) {
				t.Fatalf("err = %v, want ErrExist naming %s", err, prefix+existing)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Fatalf("WriteKeyPair left %d files, want only the existing one", len(entries))
			}
			if b, _ := os.ReadFile(prefix + existing); string(b) != "keep me" {
				t.Fatal("existing file was changed")
			}
		})
	}
}
