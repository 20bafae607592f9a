package signing

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	orasremote "oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
)

// RegistryOptions says how to reach the registry holding the signatures.
// The zero value uses HTTPS (loopback and RFC 1918 hosts may also answer
// over plain HTTP, as go-containerregistry allows) and the docker
// credentials.
type RegistryOptions struct {
	// PlainHTTP allows plain HTTP for any host (go-containerregistry's
	// name.Insecure: HTTPS is tried first, then HTTP). Loopback hosts
	// (localhost, 127.0.0.1, ::1) and RFC 1918 addresses use HTTP anyway.
	PlainHTTP bool
	// Keychain supplies registry credentials. nil means
	// authn.DefaultKeychain: the docker config ($DOCKER_CONFIG or
	// ~/.docker/config.json) and its credential helpers.
	Keychain authn.Keychain
	// Transport carries the requests (go-containerregistry adds its
	// retries and auth on top), for the CA and client certificates of each
	// registry. nil means http.DefaultTransport.
	Transport http.RoundTripper
	// Repository, if not nil, is the oras-go handle (client, credentials,
	// PlainHTTP) used for bundle referrers of that repository; nil builds
	// one with PlainHTTP and the docker credentials.
	Repository *orasremote.Repository
	// Format is how Sign and Attest store; the zero value is
	// FormatBundle (cosign v3's default). Reading always reads both.
	Format Format
	// NoLegacySig and NoLegacyAtt say that the caller's listing of the
	// repository's tags, just read, holds no cosign v2 sha256-<hex>.sig
	// (.att) tag of the digest: readers then skip that lookup (two
	// requests with go-containerregistry, a ping and the manifest) and
	// see no legacy layers. Writers ignore them. The zero value looks the
	// tags up.
	NoLegacySig, NoLegacyAtt bool
	// NoReferrersTag says the same listing holds no referrers tag schema
	// index (sha256-<hex>) of the digest: on a registry without the
	// referrers API (distribution v3.1, docker-registry 2.8) the bundle
	// referrers are then known to be none without the index lookup. The
	// zero value asks the API, then the index.
	NoReferrersTag bool
}

// skipLegacy reports whether the caller said the .sig (sig) or .att tag
// is absent.
func (o RegistryOptions) skipLegacy(sig bool) bool {
	if sig {
		return o.NoLegacySig
	}
	return o.NoLegacyAtt
}

// target is the signed manifest: a repository plus a sha256 digest.
type target struct {
	ref  name.Digest
	hash v1.Hash
}

// newTarget validates repo ("host[:port]/path", no tag or digest; a
// missing host means Docker Hub, as in go-containerregistry) and dgst
// (sha256 only: cosign's tag scheme is sha256-<hex>). Errors wrap
// errdef.ErrInvalidInput.
func newTarget(repo string, dgst digest.Digest, opts RegistryOptions) (target, error) {
	var nopts []name.Option
	if opts.PlainHTTP {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.NewRepository(repo, nopts...)
	if err != nil {
		return target{}, fmt.Errorf("%w: repository %q (want host[:port]/path without tag or digest): %v", errdef.ErrInvalidInput, repo, err)
	}
	if err := dgst.Validate(); err != nil || dgst.Algorithm() != digest.SHA256 {
		return target{}, fmt.Errorf("%w: digest %q: want sha256:<64 hex>", errdef.ErrInvalidInput, dgst)
	}
	h, err := v1.NewHash(dgst.String())
	if err != nil {
		return target{}, fmt.Errorf("%w: digest %q: %v", errdef.ErrInvalidInput, dgst, err)
	}
	return target{ref: r.Digest(dgst.String()), hash: h}, nil
}

// ociOptions are the cosign registry options: auth and context only, so
// COSIGN_REPOSITORY and other cosign environment overrides of the tag
// location are not applied.
func (o RegistryOptions) ociOptions(ctx context.Context) []ociremote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{
		remote.WithAuthFromKeychain(kc),
		remote.WithContext(ctx),
		remote.WithUserAgent("modelreg"),
	}
	if o.Transport != nil {
		ropts = append(ropts, remote.WithTransport(o.Transport))
	}
	return []ociremote.Option{ociremote.WithRemoteOptions(ropts...)}
}

// fetchLayers reads the signature image at tag (cosign's sha256-<hex>.sig
// or .att) and returns its layers, one per signature or attestation, with
// their payloads downloaded once and kept in memory. A missing tag gives
// no layers; registry and transport failures are errors.
func fetchLayers(tag name.Tag, ropts []ociremote.Option) ([]oci.Signature, error) {
	sigs, err := ociremote.Signatures(tag, ropts...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	list, err := sigs.Get()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	out := make([]oci.Signature, 0, len(list))
	for _, s := range list {
		p, err := s.Payload()
		if err != nil {
			return nil, fmt.Errorf("reading a layer of %s: %w", tag, err)
		}
		out = append(out, cachedPayload{layer: s, payload: p})
	}
	return out, nil
}

// cachedPayload is a signature layer whose payload was already fetched;
// its other accessors read the layer descriptor and do no I/O.
type cachedPayload struct {
	layer
	payload []byte
}

// layer names the embedded oci.Signature, whose own Signature method a
// field named Signature would hide.
type layer = oci.Signature

func (c cachedPayload) Payload() ([]byte, error) { return c.payload, nil }

// checkOpts are the cosign verification options for one trusted key:
// offline (no Rekor, Fulcio, CT log, TSA or TUF), with claim verifying
// that binds the signed payload to the digest being verified.
func checkOpts(k PublicKey, claims func(oci.Signature, v1.Hash, map[string]any) error) *cosign.CheckOpts {
	return &cosign.CheckOpts{
		SigVerifier:   k.Verifier,
		ClaimVerifier: claims,
		IgnoreTlog:    true,
		IgnoreSCT:     true,
		Offline:       true,
	}
}

// uniqueKeys drops keys whose ID repeats an earlier one, so that one
// signer given twice is counted once, filling in missing IDs. A key
// without a Verifier is an input error.
func uniqueKeys(keys []PublicKey) ([]PublicKey, error) {
	seen := map[string]bool{}
	out := make([]PublicKey, 0, len(keys))
	for _, k := range keys {
		if k.Verifier == nil {
			return nil, fmt.Errorf("%w: public key %q was not loaded (no verifier)", errdef.ErrInvalidInput, k.Path)
		}
		if k.ID == "" {
			pub, err := k.Verifier.PublicKey()
			if err != nil {
				return nil, fmt.Errorf("%w: public key %q: %v", errdef.ErrInvalidInput, k.Path, err)
			}
			if k.ID, err = keyIDOf(pub); err != nil {
				return nil, fmt.Errorf("%w: public key %q: %v", errdef.ErrInvalidInput, k.Path, err)
			}
		}
		if seen[k.ID] {
			continue
		}
		seen[k.ID] = true
		out = append(out, k)
	}
	return out, nil
}

// fetchForVerify is the common start of VerifySignatures and
// VerifyAttestations: it checks the target and keys, then fetches the layers
// of the digest's cosign tag (tagOf names .sig or .att; kind is for errors).
func fetchForVerify(ctx context.Context, repo string, dgst digest.Digest, keys []PublicKey, opts RegistryOptions,
	tagOf func(name.Reference, ...ociremote.Option) (name.Tag, error), kind string) (target, []PublicKey, []oci.Signature, error) {
	t, err := newTarget(repo, dgst, opts)
	if err != nil {
		return t, nil, nil, err
	}
	keys, err = uniqueKeys(keys)
	if err != nil {
		return t, nil, nil, err
	}
	if opts.skipLegacy(kind == "signature") {
		return t, keys, nil, nil
	}
	ropts := opts.ociOptions(ctx)
	tag, err := tagOf(t.ref, ropts...)
	if err != nil {
		return t, nil, nil, fmt.Errorf("%s tag of %s: %w", kind, t.ref, err)
	}
	layers, err := fetchLayers(tag, ropts)
	return t, keys, layers, err
}
