package signing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// Format says how Sign, Attest and the callers above them store what they
// sign. The zero value is FormatBundle.
type Format int

const (
	// FormatBundle stores a Sigstore bundle v0.3 in its own OCI 1.1
	// referrer manifest (subject = the signed digest), as cosign v3 does
	// by default; registries without the referrers API get the
	// referrers tag schema (index tag sha256-<hex>).
	FormatBundle Format = iota
	// FormatLegacy appends to cosign v2's sha256-<hex>.sig / .att tags
	// only, as modelreg did before bundles.
	FormatLegacy
	// FormatBoth writes the bundle referrer and the legacy tag, for
	// verifiers of either generation (cosign v2.6.5 and v3).
	FormatBoth
)

func (f Format) bundle() bool { return f == FormatBundle || f == FormatBoth }
func (f Format) legacy() bool { return f == FormatLegacy || f == FormatBoth }

// Limits on what is read from a referrer, far above what cosign writes
// (a bundle manifest is ~900 bytes, a key-signed bundle ~1 KiB plus the
// statement): a hostile registry cannot make us buffer more.
const (
	maxReferrerManifest = 1 << 20
	maxBundle           = 16 << 20
)

// emptyConfig is the OCI empty descriptor's content, the config of every
// bundle referrer (image-spec v1.1 "Guidance for an empty descriptor").
var emptyConfig = []byte("{}")

// orasRepository returns the oras-go repository of repoName: the one the
// caller gave in opts.Repository if its name matches, else a new one with
// the docker credentials.
func (o RegistryOptions) orasRepository(repoName string) (*remote.Repository, error) {
	if o.Repository != nil && o.Repository.Reference.Registry+"/"+o.Repository.Reference.Repository == repoName {
		return o.Repository, nil
	}
	r, err := remote.NewRepository(repoName)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", repoName, err)
	}
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials from the docker config: %w", err)
	}
	r.Client = &auth.Client{Client: retry.DefaultClient, Cache: auth.NewCache(), Credential: credentials.Credential(store),
		Header: http.Header{"User-Agent": {"modelreg"}}}
	r.PlainHTTP = o.PlainHTTP || isLoopback(r.Reference.Host())
	return r, nil
}

// freshRepository is a new handle on r's repository with r's client,
// whose referrers capability is not yet detected.
func freshRepository(r *remote.Repository) *remote.Repository {
	return &remote.Repository{Client: r.Client, Reference: r.Reference, PlainHTTP: r.PlainHTTP, SkipReferrersGC: true}
}

func isLoopback(host string) bool {
	h := host
	if i := strings.LastIndex(h, ":"); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	h = strings.Trim(h, "[]")
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}

// referrerManifest is an OCI image manifest with the field order cosign
// v3 writes (pkg/oci/remote/write.go referrerManifest).
type referrerManifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	Config        ocispec.Descriptor   `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Annotations   map[string]string    `json:"annotations,omitempty"`
	Subject       *ocispec.Descriptor  `json:"subject,omitempty"`
	ArtifactType  string               `json:"artifactType,omitempty"`
}

// pushBundle stores bundle (Sigstore bundle JSON) as cosign v3's
// WriteAttestationNewBundleFormat does: an image manifest with
// artifactType BundleMediaType, the empty config, the bundle as its one
// layer, annotations dev.sigstore.bundle.content = dsse-envelope,
// dev.sigstore.bundle.predicateType and org.opencontainers.image.created,
// and subject = the manifest dgst of repoName. Where the registry has no
// referrers API, it adds the manifest to the referrers tag schema index
// (addToReferrersIndex). It returns the referrer's descriptor.
func pushBundle(ctx context.Context, opts RegistryOptions, repoName string, dgst digest.Digest, bundle []byte, predicateType string, extra map[string]string) (ocispec.Descriptor, error) {
	ann := map[string]string{
		AnnotationCreated:             time.Now().UTC().Format(time.RFC3339),
		AnnotationBundleContent:       "dsse-envelope",
		AnnotationBundlePredicateType: predicateType,
	}
	for k, v := range extra {
		ann[k] = v
	}
	return PushReferrer(ctx, opts, repoName, dgst, Referrer{ArtifactType: BundleMediaType, ConfigArtifactType: BundleMediaType,
		LayerMediaType: BundleMediaType, Layer: bundle, Annotations: ann})
}

// Referrer is the content of an OCI 1.1 referrer manifest that
// PushReferrer writes: an image manifest with the empty config, one layer
// and annotations. The same Referrer on the same subject gives the same
// manifest digest (nothing time-dependent is added).
type Referrer struct {
	// ArtifactType is the manifest's artifactType.
	ArtifactType string
	// ConfigArtifactType, if set, is recorded on the config descriptor
	// too, as cosign v3 does for bundles.
	ConfigArtifactType string
	// LayerMediaType and Layer are the one layer's media type and bytes.
	LayerMediaType string
	Layer          []byte
	// Annotations are the manifest's annotations.
	Annotations map[string]string
}

// PushReferrer stores r as a referrer manifest of the manifest dgst of
// repoName (subject = dgst) and makes sure listings show it: through the
// referrers API, reading it back until it stays listed (confirmListed),
// or, where the registry has none, by adding it to the referrers tag
// schema index safely against concurrent writers (addToReferrersIndex).
// It returns the referrer's descriptor (with artifactType and
// annotations, as an index lists it). Registry refusals are returned
// wrapped.
func PushReferrer(ctx context.Context, opts RegistryOptions, repoName string, dgst digest.Digest, r Referrer) (ocispec.Descriptor, error) {
	repo, err := opts.orasRepository(repoName)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	subject, err := repo.Resolve(ctx, dgst.String())
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolving the subject %s@%s: %w", repoName, dgst, err)
	}
	cfg := content.NewDescriptorFromBytes(ocispec.MediaTypeEmptyJSON, emptyConfig)
	layer := content.NewDescriptorFromBytes(r.LayerMediaType, r.Layer)
	for _, b := range []struct {
		d ocispec.Descriptor
		p []byte
	}{{cfg, emptyConfig}, {layer, r.Layer}} {
		if ok, err := repo.Exists(ctx, b.d); err == nil && ok {
			continue
		}
		if err := repo.Push(ctx, b.d, bytes.NewReader(b.p)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return ocispec.Descriptor{}, fmt.Errorf("uploading blob %s to %s: %w", b.d.Digest, repoName, err)
		}
	}
	ann := r.Annotations
	cfgWithType := cfg
	cfgWithType.ArtifactType = r.ConfigArtifactType
	m := referrerManifest{
		SchemaVersion: 2, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfgWithType, Layers: []ocispec.Descriptor{layer}, Annotations: ann,
		Subject:      &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		ArtifactType: r.ArtifactType,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, raw)
	desc.ArtifactType, desc.Annotations = r.ArtifactType, ann
	// Our own index upkeep below replaces oras-go's, which neither reads
	// back nor retries, and deletes the index it replaced (which can
	// delete the tag another writer has just pointed at the same index).
	pusher := freshRepository(repo)
	if err := pusher.SetReferrersCapability(true); err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := pusher.Push(ctx, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}, bytes.NewReader(raw)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing the referrer manifest to %s: %w", repoName, err)
	}
	api, err := hasReferrersAPI(ctx, repo, dgst)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if !api {
		if err := addToReferrersIndex(ctx, repo, dgst, desc); err != nil {
			return ocispec.Descriptor{}, err
		}
		return desc, nil
	}
	push := func() error {
		p := freshRepository(repo)
		if err := p.SetReferrersCapability(true); err != nil {
			return err
		}
		return p.Push(ctx, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}, bytes.NewReader(raw))
	}
	if err := confirmListed(ctx, repo, dgst, desc.Digest, push); err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

// confirmListed reads the referrers API until it lists referrer in
// confirmReads consecutive reads, pushing the manifest again (push)
// whenever it does not. A registry's own referrers list can lose an entry
// to concurrent pushes too (olareg v0.2.2 updates it by an unlocked
// read-modify-write); pushing the manifest again adds it back.
func confirmListed(ctx context.Context, repo *remote.Repository, subject, referrer digest.Digest, push func() error) error {
	confirmed := 0
	for round := 0; round < maxIndexRounds; round++ {
		r := freshRepository(repo)
		if err := r.SetReferrersCapability(true); err != nil {
			return err
		}
		listed := false
		err := r.Referrers(ctx, ocispec.Descriptor{Digest: subject, MediaType: ocispec.MediaTypeImageManifest}, "", func(rs []ocispec.Descriptor) error {
			for _, d := range rs {
				if d.Digest == referrer {
					listed = true
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading back the referrers of %s: %w", subject, err)
		}
		if listed {
			if confirmed++; confirmed >= confirmReads {
				return nil
			}
			sleep(ctx, 50+rand.IntN(200))
			continue
		}
		confirmed = 0
		if err := push(); err != nil {
			return fmt.Errorf("pushing the referrer manifest %s again: %w", referrer, err)
		}
		sleep(ctx, 20+rand.IntN(80))
	}
	return fmt.Errorf("the registry kept dropping referrer %s of %s from its referrers list after %d rounds; run the command again", referrer, subject, maxIndexRounds)
}

func (r *registryURL) url(path string) string {
	return r.scheme + "://" + r.host + "/v2/" + r.repo + path
}

type registryURL struct{ scheme, host, repo string }

func urlOf(repo *remote.Repository) *registryURL {
	s := "https"
	if repo.PlainHTTP {
		s = "http"
	}
	return &registryURL{scheme: s, host: repo.Reference.Host(), repo: repo.Reference.Repository}
}

// hasReferrersAPI asks GET /v2/<name>/referrers/<digest> (distribution
// spec v1.1): 200 with an image index means the registry keeps the list
// itself; anything else (404 from registries of spec v1.0) means clients
// maintain the tag schema.
func hasReferrersAPI(ctx context.Context, repo *remote.Repository, dgst digest.Digest) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, urlOf(repo).url("/referrers/"+dgst.String()), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	resp, err := repo.Client.Do(req)
	if err != nil {
		return false, fmt.Errorf("asking %s for its referrers API: %w", repo.Reference.Host(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReferrerManifest))
	ct := resp.Header.Get("Content-Type")
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(ct, ocispec.MediaTypeImageIndex), nil
}

// Upkeep of the referrers tag schema index (distribution spec v1.1,
// "Referrers Tag Schema"): how often and how long a writer re-reads the
// index after its write. A writer is done when it has seen every entry
// it knows of in confirmReads consecutive reads spaced by a random
// 50–250 ms; losing writers therefore notice and write again while the
// writers that clobbered them are still running.
const (
	confirmReads   = 3
	maxIndexRounds = 60
)

// addToReferrersIndex adds entry to the index tagged sha256-<hex> of dgst
// in repo, safely against concurrent writers: each round reads the index
// (with its ETag), and when any entry this writer has ever seen in it, or
// its own, is missing, puts the union back (If-Match on the ETag, which
// registries that honour it turn into a 412 on a lost race; distribution
// 2.8 ignores it). Entries are never dropped: a referrer deleted by hand
// stays listed until the index is rewritten, and readers skip it.
func addToReferrersIndex(ctx context.Context, repo *remote.Repository, dgst digest.Digest, entry ocispec.Descriptor) error {
	tag := strings.Replace(dgst.String(), ":", "-", 1)
	u := urlOf(repo).url("/manifests/" + tag)
	known := map[digest.Digest]ocispec.Descriptor{entry.Digest: entry}
	confirmed := 0
	for round := 0; round < maxIndexRounds; round++ {
		idx, etag, err := getIndex(ctx, repo, u)
		if err != nil {
			return err
		}
		present := map[digest.Digest]bool{}
		for _, m := range idx.Manifests {
			present[m.Digest] = true
			if _, ok := known[m.Digest]; !ok {
				known[m.Digest] = m
			}
		}
		var missing []ocispec.Descriptor
		for d, m := range known {
			if !present[d] {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 {
			if confirmed++; confirmed >= confirmReads {
				return nil
			}
			sleep(ctx, 50+rand.IntN(200))
			continue
		}
		confirmed = 0
		sort.Slice(missing, func(i, j int) bool { return missing[i].Digest < missing[j].Digest })
		idx.Manifests = append(idx.Manifests, missing...)
		if err := putIndex(ctx, repo, u, idx, etag); err != nil {
			return err
		}
		sleep(ctx, 20+rand.IntN(80))
	}
	return fmt.Errorf("the referrers index %s:%s kept losing entries to other writers after %d rounds; run the command again", repo.Reference.Repository, tag, maxIndexRounds)
}

func sleep(ctx context.Context, ms int) {
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// getIndex reads the index at u; a missing tag is an empty index.
func getIndex(ctx context.Context, repo *remote.Repository, u string) (ocispec.Index, string, error) {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return idx, "", err
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex)
	resp, err := repo.Client.Do(req)
	if err != nil {
		return idx, "", fmt.Errorf("reading the referrers index %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReferrerManifest+1))
	if err != nil {
		return idx, "", fmt.Errorf("reading the referrers index %s: %w", u, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return idx, "", nil
	case resp.StatusCode != http.StatusOK:
		return idx, "", fmt.Errorf("reading the referrers index %s: %s", u, resp.Status)
	case len(body) > maxReferrerManifest:
		return idx, "", fmt.Errorf("the referrers index %s is larger than %d bytes", u, maxReferrerManifest)
	}
	var got ocispec.Index
	if err := json.Unmarshal(body, &got); err != nil || got.MediaType != ocispec.MediaTypeImageIndex {
		// A registry that answers the tag with the subject itself
		// (oras-go#1396), or a tag someone else put there: refuse
		// rather than overwrite it.
		return idx, "", fmt.Errorf("the tag %s is not a referrers index (media type %q); it must be removed before referrers can be stored", u, got.MediaType)
	}
	idx.Manifests = got.Manifests
	idx.Annotations = got.Annotations
	return idx, resp.Header.Get("ETag"), nil
}

// putIndex writes idx to u, If-Match etag when it is known. A 412 (lost
// race on a registry that honours If-Match) is not an error: the next
// round reads again.
func putIndex(ctx context.Context, repo *remote.Repository, u string, idx ocispec.Index, etag string) error {
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ocispec.MediaTypeImageIndex)
	if etag != "" {
		req.Header.Set("If-Match", etag)
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	resp, err := repo.Client.Do(req)
	if err != nil {
		return fmt.Errorf("writing the referrers index %s: %w", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReferrerManifest))
	if resp.StatusCode == http.StatusPreconditionFailed || resp.StatusCode/100 == 2 {
		return nil
	}
	return fmt.Errorf("writing the referrers index %s: %s", u, resp.Status)
}

// referrer is a bundle referrer of a digest, as stored: its descriptor
// (from the listing), the manifest's annotations and the bundle.
type referrer struct {
	Desc        ocispec.Descriptor
	Annotations map[string]string
	Bundle      []byte
}

// bundleReferrers lists the Sigstore bundle referrers of dgst in repoName
// through the referrers API, or the tag schema where the registry has
// none (oras-go Repository.Referrers). A listed manifest counts only if
// its own subject.digest is dgst (an index can list anything) and it has
// one layer of a Sigstore bundle media type; others are skipped, as are
// entries whose manifest is gone. Registry failures are errors.
func bundleReferrers(ctx context.Context, opts RegistryOptions, repoName string, dgst digest.Digest) ([]referrer, error) {
	repo, err := opts.orasRepository(repoName)
	if err != nil {
		return nil, err
	}
	var descs []ocispec.Descriptor
	lister := repo
	if opts.NoReferrersTag {
		// The API only: where there is none, the absent index means no
		// referrers.
		lister = freshRepository(repo)
		if err := lister.SetReferrersCapability(true); err != nil {
			return nil, err
		}
	}
	err = lister.Referrers(ctx, ocispec.Descriptor{Digest: dgst, MediaType: ocispec.MediaTypeImageManifest}, "", func(rs []ocispec.Descriptor) error {
		descs = append(descs, rs...)
		return nil
	})
	if opts.NoReferrersTag && errors.Is(err, errdef.ErrUnsupported) {
		err = nil
	}
	if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("listing the referrers of %s@%s: %w", repoName, dgst, err)
	}
	seen := map[digest.Digest]bool{}
	var out []referrer
	for _, d := range descs {
		if seen[d.Digest] || d.MediaType != ocispec.MediaTypeImageManifest || d.Size > maxReferrerManifest {
			continue
		}
		seen[d.Digest] = true
		raw, err := content.FetchAll(ctx, repo, d)
		if errors.Is(err, errdef.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading referrer %s of %s@%s: %w", d.Digest, repoName, dgst, err)
		}
		var m ocispec.Manifest
		if json.Unmarshal(raw, &m) != nil || m.Subject == nil || m.Subject.Digest != dgst || len(m.Layers) != 1 ||
			!strings.HasPrefix(m.Layers[0].MediaType, "application/vnd.dev.sigstore.bundle") || m.Layers[0].Size > maxBundle {
			continue
		}
		b, err := content.FetchAll(ctx, repo, m.Layers[0])
		if errors.Is(err, errdef.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the bundle of referrer %s of %s@%s: %w", d.Digest, repoName, dgst, err)
		}
		d.ArtifactType = m.ArtifactType
		out = append(out, referrer{Desc: d, Annotations: m.Annotations, Bundle: b})
	}
	return out, nil
}
