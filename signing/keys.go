package signing

import (
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/modelreg/modelreg/errdef"
)

// PrivateKey is a loaded cosign private key.
type PrivateKey struct {
	// Path is the file the key was loaded from (empty if not from a file).
	Path string
	// ID is the KeyID of the matching public key: "sha256:<64 hex>".
	ID string
	// Signer signs with the key (ECDSA P-256 with SHA-256 for cosign's
	// default keys; Ed25519ph for Ed25519 keys, as cosign does).
	Signer signature.SignerVerifier
}

// PublicKey is a parsed PEM "PUBLIC KEY" (PKIX) that signatures and
// attestations are checked against.
type PublicKey struct {
	// Path is the file the key came from, as given by the caller; it is
	// used in results and messages only.
	Path string
	// ID is KeyID(PEM): "sha256:<64 hex>".
	ID string
	// PEM is the key as read.
	PEM []byte
	// Verifier checks signatures with the key, hashing with SHA-256 (the
	// verifier the cosign CLI builds for `--key`).
	Verifier signature.Verifier
}

// GenerateKeyPair returns a new ECDSA P-256 key pair in cosign's format:
// privatePEM is a PEM block of type "ENCRYPTED SIGSTORE PRIVATE KEY"
// (PKCS#8, encrypted with scrypt + secretbox under password; an empty
// password is allowed, as with `COSIGN_PASSWORD= cosign generate-key-pair`),
// publicPEM is a PEM "PUBLIC KEY" block (PKIX DER). Both are what
// `cosign generate-key-pair` writes to cosign.key and cosign.pub.
func GenerateKeyPair(password []byte) (privatePEM, publicPEM []byte, err error) {
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, nil, fmt.Errorf("generating key pair: %w", err)
	}
	return kb.PrivateBytes, kb.PublicBytes, nil
}

// WriteKeyPair generates a key pair with GenerateKeyPair and writes the
// private key to PREFIX.key (mode 0600) and the public key to PREFIX.pub
// (mode 0644), returning both paths. If either file already exists it
// refuses with an error naming the file that wraps fs.ErrExist and
// errdef.ErrInvalidInput. On any error nothing is left behind.
func WriteKeyPair(prefix string, password []byte) (keyPath, pubPath string, err error) {
	keyPath, pubPath = prefix+".key", prefix+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%w: %s already exists, refusing to overwrite it: %w", errdef.ErrInvalidInput, p, fs.ErrExist)
		}
	}
	priv, pub, err := GenerateKeyPair(password)
	if err != nil {
		return "", "", err
	}
	if err := writeNew(keyPath, priv, 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pub, 0o644); err != nil {
		os.Remove(keyPath)
		return "", "", err
	}
	return keyPath, pubPath, nil
}

// writeNew creates path exclusively (never overwriting) and writes data,
// removing the file again if writing fails.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s already exists, refusing to overwrite it: %w", errdef.ErrInvalidInput, path, err)
		}
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// LoadPrivateKey reads a cosign private key file (PEM "ENCRYPTED SIGSTORE
// PRIVATE KEY", or the older "ENCRYPTED COSIGN PRIVATE KEY") and decrypts it
// with password. A wrong password gives an error that says so, names the
// file and mentions COSIGN_PASSWORD; it and a malformed file wrap
// errdef.ErrInvalidInput. The library never reads the environment.
func LoadPrivateKey(path string, password []byte) (*PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || (blk.Type != cosign.SigstorePrivateKeyPemType && blk.Type != cosign.CosignPrivateKeyPemType) {
		return nil, fmt.Errorf("%w: %s is not a cosign private key (want PEM %q)", errdef.ErrInvalidInput, path, cosign.SigstorePrivateKeyPemType)
	}
	sv, err := cosign.LoadPrivateKey(b, password, nil)
	if err != nil {
		// cosign reports a failed decryption as "decrypt: ...": with an
		// intact file that means the password is wrong.
		if strings.HasPrefix(err.Error(), "decrypt:") {
			return nil, fmt.Errorf("%w: wrong password for private key %s (set COSIGN_PASSWORD to the password the key was created with): %v", errdef.ErrInvalidInput, path, err)
		}
		return nil, fmt.Errorf("%w: private key %s: %v", errdef.ErrInvalidInput, path, err)
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	id, err := keyIDOf(pub)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return &PrivateKey{Path: path, ID: id, Signer: sv}, nil
}

// ParsePublicKey parses a PEM "PUBLIC KEY" block (PKIX; ECDSA, RSA or
// Ed25519 as cosign accepts) into a PublicKey; path is recorded for messages
// and results. A malformed key wraps errdef.ErrInvalidInput.
func ParsePublicKey(pemBytes []byte, path string) (PublicKey, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: public key %s: %v", errdef.ErrInvalidInput, path, err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: public key %s: %v", errdef.ErrInvalidInput, path, err)
	}
	id, err := keyIDOf(pub)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: public key %s: %v", errdef.ErrInvalidInput, path, err)
	}
	return PublicKey{Path: path, ID: id, PEM: pemBytes, Verifier: v}, nil
}

// LoadPublicKey reads and parses a public key file (see ParsePublicKey).
func LoadPublicKey(path string) (PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return PublicKey{}, fmt.Errorf("reading public key: %w", err)
	}
	return ParsePublicKey(b, path)
}

// KeyID returns the identifier of a PEM public key: "sha256:" followed by
// the lowercase hex SHA-256 of the key's PKIX (SubjectPublicKeyInfo) DER
// encoding. The policy package uses the same IDs. A malformed key wraps
// errdef.ErrInvalidInput.
func KeyID(publicPEM []byte) (string, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(publicPEM)
	if err != nil {
		return "", fmt.Errorf("%w: public key: %v", errdef.ErrInvalidInput, err)
	}
	return keyIDOf(pub)
}

func keyIDOf(pub crypto.PublicKey) (string, error) {
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Public returns the public half of k, as LoadPublicKey would read it from
// the matching .pub file.
func (k *PrivateKey) Public() (PublicKey, error) {
	pub, err := k.Signer.PublicKey()
	if err != nil {
		return PublicKey{}, fmt.Errorf("private key %s: %w", k.Path, err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return PublicKey{}, fmt.Errorf("private key %s: %w", k.Path, err)
	}
	return ParsePublicKey(pemBytes, k.Path)
}
