package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/modelreg/modelreg/errdef"
)

// Names cosign v3.1.3 uses for a Sigstore bundle stored as an OCI 1.1
// referrer (pkg/oci/remote/write.go WriteAttestationNewBundleFormat and
// pkg/types): the manifest's artifactType and its one layer's media type
// are BundleMediaType for signatures and attestations alike; what the
// bundle is, is told by the manifest annotation AnnotationBundlePredicateType.
const (
	// BundleMediaType is Sigstore bundle v0.3 in its JSON encoding.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// AnnotationBundlePredicateType carries the signed statement's
	// predicateType, unsigned, so that filters need not open the bundle.
	AnnotationBundlePredicateType = "dev.sigstore.bundle.predicateType"
	// AnnotationBundleContent is "dsse-envelope" for every bundle cosign
	// v3 stores in a registry.
	AnnotationBundleContent = "dev.sigstore.bundle.content"
	// AnnotationCreated is the OCI creation time, RFC 3339 UTC.
	AnnotationCreated = "org.opencontainers.image.created"
	// PredicateCosignSign is the predicate type of a cosign v3 image
	// signature: an in-toto Statement v1 whose subject is the signed
	// digest, with an empty predicate (cosign pkg/types
	// CosignSignPredicateType).
	PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"
)

// signatureStatement is the in-toto Statement v1 cosign v3 signs for
// `cosign sign` (cmd/cosign/cli/sign/sign.go signDigestBundle): one
// subject with only the digest (and the -a annotations, if any), the
// PredicateCosignSign type and an empty predicate.
func signatureStatement(dgst digest.Digest, annotations map[string]string) ([]byte, error) {
	type sub struct {
		Digest      map[string]string `json:"digest"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	return json.Marshal(struct {
		Type          string         `json:"_type"`
		Subject       []sub          `json:"subject"`
		PredicateType string         `json:"predicateType"`
		Predicate     map[string]any `json:"predicate"`
	}{
		Type:          StatementTypeV1,
		Subject:       []sub{{Digest: map[string]string{string(dgst.Algorithm()): dgst.Encoded()}, Annotations: annotations}},
		PredicateType: PredicateCosignSign,
		Predicate:     map[string]any{},
	})
}

// newBundle signs statement (in-toto JSON) with key into a DSSE envelope
// (payloadType application/vnd.in-toto+json) and returns it as a Sigstore
// bundle v0.3 in protobuf JSON, built by sigstore-go's sign.Bundle as
// cosign v3 does for `--key` without a transparency log or TSA: the
// verification material is the key's hint only (base64 of the SHA-256 of
// the public key's PKIX DER), no certificate, tlog entry or timestamp.
func newBundle(ctx context.Context, key *PrivateKey, statement []byte) ([]byte, error) {
	kp, err := newKeypair(key)
	if err != nil {
		return nil, err
	}
	b, err := sign.Bundle(&sign.DSSEData{Data: statement, PayloadType: inTotoPayloadType}, kp, sign.BundleOptions{Context: ctx})
	if err != nil {
		return nil, fmt.Errorf("signing with %s: %w", key.Path, err)
	}
	return protojson.Marshal(b)
}

const inTotoPayloadType = "application/vnd.in-toto+json"

// keypair adapts a loaded cosign key to sigstore-go's sign.Keypair, as
// cosign v3's internal/key.SignerVerifierKeypair does.
type keypair struct {
	sv   signature.SignerVerifier
	pub  crypto.PublicKey
	hint []byte
	alg  string
	det  signature.AlgorithmDetails
}

func newKeypair(key *PrivateKey) (*keypair, error) {
	pub, err := key.Signer.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: %v", errdef.ErrInvalidInput, key.Path, err)
	}
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: key %s: %v", errdef.ErrInvalidInput, key.Path, err)
	}
	sum := sha256.Sum256(der)
	kp := &keypair{sv: key.Signer, pub: pub, hint: []byte(base64.StdEncoding.EncodeToString(sum[:]))}
	switch pub.(type) {
	case *ecdsa.PublicKey:
		kp.alg = "ECDSA"
	case *rsa.PublicKey:
		kp.alg = "RSA"
	case ed25519.PublicKey:
		kp.alg = "ED25519"
	default:
		return nil, fmt.Errorf("%w: key %s: unsupported key type %T", errdef.ErrInvalidInput, key.Path, pub)
	}
	// Ed25519 keys sign with Ed25519ph, as LoadPrivateKey loads them.
	if kp.det, err = signature.GetDefaultAlgorithmDetails(pub, options.WithED25519ph()); err != nil {
		return nil, fmt.Errorf("%w: key %s: %v", errdef.ErrInvalidInput, key.Path, err)
	}
	return kp, nil
}

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm { return k.det.GetProtoHashType() }
func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.det.GetSignatureAlgorithm()
}
func (k *keypair) GetHint() []byte                { return k.hint }
func (k *keypair) GetKeyAlgorithm() string        { return k.alg }
func (k *keypair) GetPublicKey() crypto.PublicKey { return k.pub }
func (k *keypair) GetPublicKeyPem() (string, error) {
	p, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
	return string(p), err
}

// SignData signs data (the DSSE pre-authentication encoding) and returns
// the signature and the digest it signed, as sign.Keypair asks.
func (k *keypair) SignData(ctx context.Context, data []byte) ([]byte, []byte, error) {
	h := k.det.GetHashType().New()
	h.Write(data)
	sig, err := k.sv.SignMessage(bytes.NewReader(data), options.WithContext(ctx))
	return sig, h.Sum(nil), err
}

// bundleContent is what a verified bundle says.
type bundleContent struct {
	KeyID, KeyPath string
	Statement      statement
	// Payload is the statement as signed.
	Payload []byte
}

// errBundle marks bundles that do not verify; the reason follows.
var errBundle = errors.New("bundle does not verify")

// verifyBundle checks raw (Sigstore bundle JSON, v0.1 to v0.3) against
// each of keys, as `cosign verify --key K --insecure-ignore-tlog` does with
// sigstore-go (pkg/cosign/verify.go verificationOptions): the DSSE
// signature by the key, no tlog entry or timestamp required
// (WithNoObserverTimestamps), and the in-toto statement's subject must
// list dgst (WithArtifactDigest). The first key that verifies is
// reported. A bundle that is not a DSSE in-toto bundle, or that no key
// verifies, wraps errBundle.
func verifyBundle(raw []byte, dgst digest.Digest, keys []PublicKey) (bundleContent, error) {
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return bundleContent{}, fmt.Errorf("%w: %v", errBundle, err)
	}
	want, err := hex.DecodeString(dgst.Encoded())
	if err != nil {
		return bundleContent{}, fmt.Errorf("%w: digest %s: %v", errdef.ErrInvalidInput, dgst, err)
	}
	var last error = errors.New("no key given")
	for _, k := range keys {
		ek := root.NewExpiringKey(k.Verifier, time.Time{}, time.Time{})
		tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return ek, nil })
		v, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
		if err != nil {
			return bundleContent{}, err
		}
		res, err := v.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest(string(dgst.Algorithm()), want), verify.WithKey()))
		if err != nil {
			last = err
			continue
		}
		env := b.GetDsseEnvelope()
		if env == nil || env.GetPayloadType() != inTotoPayloadType || res.Statement == nil {
			return bundleContent{}, fmt.Errorf("%w: not an in-toto DSSE bundle", errBundle)
		}
		var st statement
		if err := json.Unmarshal(env.GetPayload(), &st); err != nil {
			return bundleContent{}, fmt.Errorf("%w: statement: %v", errBundle, err)
		}
		if st.Type != StatementTypeV1 && st.Type != StatementTypeV01 {
			return bundleContent{}, fmt.Errorf("%w: statement _type %q", errBundle, st.Type)
		}
		return bundleContent{KeyID: k.ID, KeyPath: k.Path, Statement: st, Payload: env.GetPayload()}, nil
	}
	return bundleContent{}, fmt.Errorf("%w: %v", errBundle, last)
}

// peekBundle decodes raw without verifying anything: the statement (if a
// DSSE bundle) and the key ID its hint names ("sha256:<hex>", "" if the
// hint is not a SHA-256 in base64).
func peekBundle(raw []byte) (st statement, keyID string, err error) {
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return st, "", err
	}
	if pk := b.GetVerificationMaterial().GetPublicKey(); pk != nil {
		if sum, err := base64.StdEncoding.DecodeString(pk.GetHint()); err == nil && len(sum) == sha256.Size {
			keyID = "sha256:" + hex.EncodeToString(sum)
		}
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return st, keyID, errors.New("not a DSSE bundle")
	}
	if err := json.Unmarshal(env.GetPayload(), &st); err != nil {
		return st, keyID, fmt.Errorf("not an in-toto statement: %w", err)
	}
	return st, keyID, nil
}
