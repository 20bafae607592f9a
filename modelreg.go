// Package modelreg is the Go API of modelreg, a model registry that lives
// inside any OCI registry. Each method of [Client] is one use case — Push,
// Pull, Versions, Inspect, SetAlias, Sign, Verify, Promote — composed from
// the packages oci (registry and transfer), signing (cosign signatures and
// in-toto attestations) and policy (the promotion policy). It keeps no state
// of its own: the registry is the single source of truth.
//
// References are HOST[:PORT]/REPO[:TAG|@DIGEST]; a TAG is a version (vN,
// allocated by Push and never moved) or an alias (a mutable tag such as
// latest, staging, production). Errors callers branch on are the sentinels
// of package errdef (ErrDenied, ErrNotFound, ErrInvalidInput, ErrIntegrity,
// ErrUnsupported), wrapped with context.
package modelreg

import (
	"context"
	"time"

	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/signing"
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// PlainHTTP speaks HTTP to every registry; loopback registries use
	// HTTP anyway unless LoopbackTLS is set.
	PlainHTTP bool
	// LoopbackTLS speaks HTTPS to loopback registries too
	// (--plain-http=false given explicitly).
	LoopbackTLS bool
	// TLS gives CA certificates and the verification switch for HTTPS
	// registries (see oci.TLSOptions); the zero value uses the system
	// roots and the certs.d folders of docker and podman.
	TLS oci.TLSOptions
	// Mirror says which mirrors Pull may fetch manifests and blobs from
	// by digest (see oci.MirrorOptions).
	Mirror oci.MirrorOptions
	// DockerConfig is the docker config file holding registry
	// credentials. If empty, $DOCKER_CONFIG/config.json or
	// ~/.docker/config.json is used.
	DockerConfig string
	// Concurrency is how many files move at once. If ≤ 0,
	// oci.DefaultConcurrency is used.
	Concurrency int
	// NoDigestCache turns off the file digest cache under the user's
	// cache folder.
	NoDigestCache bool
	// Now is the clock that stamps promotion records (promotedAt) and
	// judges their age against a policy's promoters.maxAge at deploy
	// time. If nil, time.Now is used; tests set it to make old records
	// without waiting.
	Now func() time.Time
	// LegacyTags writes signatures, attestations, approvals and promotion
	// records to cosign v2's sha256-<hex>.sig / .att tags instead of
	// bundle referrers, as cosign does with --new-bundle-format=false, for
	// verifiers that read only those (cosign v2, Kyverno's `type:
	// Cosign`). Not both: cosign v2.6.5 `verify --key` takes the bundle
	// path as soon as a bundle referrer exists, and then needs a trusted
	// root. If false, they are written as cosign v3 writes them: Sigstore
	// bundles in OCI 1.1 referrers. Both formats are always read.
	LegacyTags bool
	// ReadCache is how many bytes of manifests and blobs read by digest
	// the client keeps in memory (see oci.ClientOptions.ReadCache): for
	// long-running readers such as the dashboard. 0 keeps nothing.
	ReadCache int64
}

// Client runs modelreg's use cases against registries.
type Client struct {
	opts     Options
	oci      *oci.Client
	accepted acceptedRecords
}

// New returns a Client. It fails when the docker config cannot be read,
// and on a CA file, certs.d folder, mirror or registries.conf that is not
// well-formed (errdef.ErrInvalidInput).
func New(opts Options) (*Client, error) {
	c, err := oci.NewClient(oci.ClientOptions{PlainHTTP: opts.PlainHTTP, DockerConfig: opts.DockerConfig,
		LoopbackTLS: opts.LoopbackTLS, TLS: opts.TLS, Mirror: opts.Mirror, ReadCache: opts.ReadCache})
	if err != nil {
		return nil, err
	}
	return &Client{opts: opts, oci: c, accepted: defaultAcceptedRecords()}, nil
}

// now reads the client's clock (Options.Now).
func (c *Client) now() time.Time {
	if c.opts.Now != nil {
		return c.opts.Now()
	}
	return time.Now()
}

func (c *Client) transfer() oci.TransferOptions {
	t := oci.TransferOptions{Concurrency: c.opts.Concurrency}
	if !c.opts.NoDigestCache {
		t.Cache = oci.DefaultDigestCache()
	}
	return t
}

func (c *Client) signingOptions(ref oci.Reference) signing.RegistryOptions {
	o := signing.RegistryOptions{PlainHTTP: c.oci.PlainHTTP(ref.Registry), Transport: c.oci.Transport(), Keychain: signing.Keychain(c.credential)}
	if r, err := c.oci.Repository(ref); err == nil {
		o.Repository = r
	}
	if c.opts.LegacyTags {
		o.Format = signing.FormatLegacy
	}
	return o
}

// open parses s as a reference and opens its repository.
func (c *Client) open(s string) (oci.Reference, *remote.Repository, error) {
	ref, err := oci.ParseReference(s)
	if err != nil {
		return ref, nil, err
	}
	r, err := c.oci.Repository(ref)
	return ref, r, err
}

// openRepo parses s as HOST/REPO (no tag) and opens it.
func (c *Client) openRepo(s string) (oci.Reference, *remote.Repository, error) {
	ref, err := oci.ParseRepository(s)
	if err != nil {
		return ref, nil, err
	}
	r, err := c.oci.Repository(ref)
	return ref, r, err
}

// resolve parses refStr, opens its repository and resolves the reference
// once. ref keeps the tag as given; pinned is HOST/REPO@DIGEST, what
// everything after works on.
func (c *Client) resolve(ctx context.Context, refStr string) (ref, pinned oci.Reference, repo *remote.Repository, err error) {
	ref, repo, err = c.open(refStr)
	if err != nil {
		return ref, pinned, nil, err
	}
	desc, err := oci.Resolve(ctx, repo, ref)
	if err != nil {
		return ref, pinned, nil, err
	}
	return ref, ref.WithDigest(desc.Digest), repo, nil
}

// version is resolve plus the version's manifest, fetched by digest and
// checked.
func (c *Client) version(ctx context.Context, refStr string) (ref, pinned oci.Reference, repo *remote.Repository, mv *oci.ModelVersion, err error) {
	ref, pinned, repo, err = c.resolve(ctx, refStr)
	if err != nil {
		return ref, pinned, nil, nil, err
	}
	mv, err = oci.FetchModel(ctx, repo, ref, pinned.Digest)
	return ref, pinned, repo, mv, err
}

// credential is the docker config's credential for a registry, for the
// signature client (signing.Keychain).
func (c *Client) credential(ctx context.Context, hostport string) (user, pass, token string, err error) {
	cred, err := c.oci.Credential(ctx, hostport)
	return cred.Username, cred.Password, cred.RefreshToken, err
}
