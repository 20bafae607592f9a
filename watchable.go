package modelreg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/policy"
	"github.com/modelreg/modelreg/signing"
)

// ObserveOptions say how much of a repository Observe reads. The zero
// value reads tags only.
type ObserveOptions struct {
	// KnownVersions maps version tags (vN) to the digest they were seen at.
	// Version tags are never moved, so these are not resolved again; only
	// new version tags and every alias cost a request.
	KnownVersions map[string]string
	// Records reads the promotion records too (one referrer or attestation
	// lookup per attested digest): a caller reads them when tags changed.
	Records bool
	// Policy is a promotion policy file: its aliases are the protected ones
	// and each alias's promoter keys verify its records. Without it no alias
	// is protected and Records are listed unverified.
	Policy string
}

// ObservedReferrer is one signature or attestation of a version as
// Observe lists it: the part of a TrustReferrer a watcher compares.
type ObservedReferrer struct {
	// Key identifies it among the referrers of its version: the referrer
	// manifest's digest for a Sigstore bundle; for a cosign v2 tag layer,
	// which has no digest of its own, "legacy.sig.N" or "legacy.att.N" (the
	// N-th layer: cosign only appends to those tags).
	Key string `json:"key"`
	// Kind is "signature", "evaluation", "approval", "promotion" or
	// "attestation" (see TrustReferrer.Kind).
	Kind string `json:"kind"`
	// Format is "bundle" or "legacy".
	Format        string `json:"format"`
	PredicateType string `json:"predicateType,omitempty"`
	// KeyID is "sha256:<hex>" of the policy key that verified it, else the
	// key a bundle names (unverified), else "".
	KeyID string `json:"keyId,omitempty"`
	// Verified is true when a key of the policy verified it.
	Verified bool `json:"verified"`
}

// Observation is what Observe saw of one repository at one moment.
type Observation struct {
	// Repository is HOST/REPO.
	Repository string `json:"repository"`
	// Versions and Aliases map each version tag and alias tag to the
	// digest it names ("sha256:<hex>").
	Versions map[string]string `json:"versions"`
	Aliases  map[string]string `json:"aliases"`
	// Protected are the aliases the policy names, sorted.
	Protected []string `json:"protected,omitempty"`
	// Records are the promotion records (only with ObserveOptions.Records),
	// by alias then newest first; with a policy, Verified is true only for
	// records signed by a promoter key of their alias.
	Records []PromotionRecord `json:"records,omitempty"`
	// Referrers maps version digests to their signatures and attestations
	// (ObserveReferrers): Observe leaves it nil, a watcher keeps what it
	// listed here so its state holds one document per repository.
	Referrers map[string][]ObservedReferrer `json:"referrers,omitempty"`
}

// Newest returns the newest verified promotion record of alias, or nil.
// A protected alias whose tag names another digest was moved outside
// `modelreg promote` (the check of Pull --policy).
func (o *Observation) Newest(alias string) *PromotionRecord {
	var rs []PromotionRecord
	for _, r := range o.Records {
		if r.Alias == alias && r.Verified {
			rs = append(rs, r)
		}
	}
	return newestRecord(rs)
}

// Observe reads the version tags, aliases and (optionally) promotion
// records of repository repoStr (HOST/REPO), the state `modelreg watch`
// compares between polls. A repository that does not exist yet is empty.
// Errors are the registry's, wrapped with the repository; a policy that
// does not load fails with errdef.ErrInvalidInput.
func (c *Client) Observe(ctx context.Context, repoStr string, opts ObserveOptions) (*Observation, error) {
	ref, repo, err := c.openRepo(repoStr)
	if err != nil {
		return nil, err
	}
	var pol *policy.Policy
	if opts.Policy != "" {
		if pol, err = cachedPolicy(opts.Policy); err != nil {
			return nil, err
		}
	}
	tags, err := oci.ListTags(ctx, repo)
	if err != nil {
		return nil, err
	}
	obs := &Observation{Repository: ref.Name(), Versions: map[string]string{}, Aliases: map[string]string{}}
	var resolve []string
	for _, v := range oci.VersionTags(tags) {
		if d, ok := opts.KnownVersions[v]; ok {
			obs.Versions[v] = d
		} else {
			resolve = append(resolve, v)
		}
	}
	aliases := oci.AliasTags(tags)
	m, err := tagMap(ctx, repo, append(resolve, aliases...))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref.Name(), err)
	}
	for _, v := range resolve {
		if d, ok := m[v]; ok {
			obs.Versions[v] = d.String()
		}
	}
	for _, a := range aliases {
		if d, ok := m[a]; ok {
			obs.Aliases[a] = d.String()
		}
	}
	if pol != nil {
		obs.Protected = pol.AliasNames()
	}
	if opts.Records {
		if obs.Records, err = c.observedRecords(ctx, repo, ref, pol); err != nil {
			return nil, err
		}
	}
	return obs, nil
}

// ObserveReferrers lists the signatures and attestations of each version
// digest ("sha256:<hex>") in repository repoStr (HOST/REPO), in both
// storage formats (Sigstore bundle referrers, then cosign v2 .sig and .att
// tag layers, as signing.ListReferrers), each verified against the keys of
// the policy file policyPath ("" for none: nothing verified). The map has
// one entry per digest, an empty list for none. Each digest costs a
// referrers request, two requests per bundle referrer and the lookups of
// the .sig and .att tags, so a caller lists only what may have changed.
// Errors: a bad digest or policy wraps errdef.ErrInvalidInput; registry
// errors are wrapped with the digest.
func (c *Client) ObserveReferrers(ctx context.Context, repoStr, policyPath string, digests []string) (map[string][]ObservedReferrer, error) {
	ref, err := oci.ParseRepository(repoStr)
	if err != nil {
		return nil, err
	}
	var keys []signing.PublicKey
	if policyPath != "" {
		pol, err := cachedPolicy(policyPath)
		if err != nil {
			return nil, err
		}
		if keys, err = publicKeys(pol.Keys()); err != nil {
			return nil, err
		}
	}
	out := map[string][]ObservedReferrer{}
	for _, d := range digests {
		dg, err := digest.Parse(d)
		if err != nil {
			return nil, fmt.Errorf("%w: version digest %q: %v", errdef.ErrInvalidInput, d, err)
		}
		pinned := ref.WithDigest(dg)
		trs, err := signing.ListReferrers(ctx, pinned.Name(), dg, keys, c.signingOptions(pinned))
		if err != nil {
			return nil, fmt.Errorf("listing the referrers of %s: %w", pinned, err)
		}
		rs := []ObservedReferrer{}
		var sigs, atts int
		for _, tr := range trs {
			o := ObservedReferrer{Key: tr.Digest, Kind: tr.Kind, Format: tr.Format, PredicateType: tr.PredicateType, KeyID: tr.KeyID, Verified: tr.Verified}
			if tr.Format == signing.FormatNameLegacy {
				if tr.Kind == "signature" {
					o.Key = fmt.Sprintf("legacy.sig.%d", sigs)
					sigs++
				} else {
					o.Key = fmt.Sprintf("legacy.att.%d", atts)
					atts++
				}
			}
			rs = append(rs, o)
		}
		out[d] = rs
	}
	return out, nil
}

// policyCacheTTL bounds how long Observe reuses a loaded policy whose file
// is unchanged: loading one compiles its CEL conditions (about 10 ms), which
// a watcher over hundreds of repositories would otherwise pay for each
// repository on every poll; a changed key file is seen within the TTL.
const policyCacheTTL = 10 * time.Second

type policyEntry struct {
	pol    *policy.Policy
	mod    time.Time
	size   int64
	loaded time.Time
}

var policyCache sync.Map // path → policyEntry

func cachedPolicy(path string) (*policy.Policy, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return policy.Load(path) // reports the error as Load does
	}
	if v, ok := policyCache.Load(path); ok {
		e := v.(policyEntry)
		if e.mod.Equal(fi.ModTime()) && e.size == fi.Size() && time.Since(e.loaded) < policyCacheTTL {
			return e.pol, nil
		}
	}
	pol, err := policy.Load(path)
	if err != nil {
		return nil, err
	}
	policyCache.Store(path, policyEntry{pol: pol, mod: fi.ModTime(), size: fi.Size(), loaded: time.Now()})
	return pol, nil
}

// observedRecords reads the promotion records of repo the way History does
// with a policy: a record counts only when a promoter key of its alias
// signed it.
func (c *Client) observedRecords(ctx context.Context, repo *remote.Repository, ref oci.Reference, pol *policy.Policy) ([]PromotionRecord, error) {
	if pol == nil {
		return c.promotionRecords(ctx, repo, ref, nil, "")
	}
	keys, err := publicKeys(pol.Keys())
	if err != nil {
		return nil, err
	}
	recs, err := c.promotionRecords(ctx, repo, ref, keys, "")
	if err != nil {
		return nil, err
	}
	for i := range recs {
		if recs[i].Verified && !isPromoter(pol, recs[i].Alias, recs[i].KeyID) {
			recs[i].Verified = false
		}
	}
	return recs, nil
}

// Repositories returns the repositories (HOST/REPO, sorted) that pattern
// names. A pattern without glob characters (*, ?, [) is returned as it is,
// without a request; otherwise HOST/GLOB is matched with path.Match against
// the registry's catalog (/v2/_catalog, all pages), so * does not cross a
// slash. A registry without a catalog API (olareg, GHCR) fails with
// errdef.ErrUnsupported: name its repositories one by one.
func (c *Client) Repositories(ctx context.Context, pattern string) ([]string, error) {
	host, glob, ok := strings.Cut(pattern, "/")
	if !ok || host == "" || glob == "" {
		return nil, fmt.Errorf("%w: repository pattern %q: want HOST/REPO or HOST/GLOB, e.g. registry.example.com/team/*", errdef.ErrInvalidInput, pattern)
	}
	if _, err := path.Match(glob, ""); err != nil {
		return nil, fmt.Errorf("%w: repository pattern %q: %v", errdef.ErrInvalidInput, pattern, err)
	}
	if !strings.ContainsAny(glob, "*?[") {
		if _, err := oci.ParseRepository(pattern); err != nil {
			return nil, err
		}
		return []string{pattern}, nil
	}
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return nil, fmt.Errorf("%w: repository pattern %q: %v", errdef.ErrInvalidInput, pattern, err)
	}
	reg.Client = c.oci.HTTP()
	reg.PlainHTTP = c.oci.PlainHTTP(host)
	var out []string
	err = reg.Repositories(ctx, "", func(page []string) error {
		for _, r := range page {
			if ok, _ := path.Match(glob, r); ok {
				out = append(out, host+"/"+r)
			}
		}
		return nil
	})
	if err != nil {
		var er *errcode.ErrorResponse
		if errors.As(err, &er) && (er.StatusCode == http.StatusNotFound || er.StatusCode == http.StatusMethodNotAllowed) {
			return nil, fmt.Errorf("%w: %s has no catalog API (/v2/_catalog) to expand %q: list its repositories one by one in the automations file", errdef.ErrUnsupported, host, pattern)
		}
		return nil, fmt.Errorf("listing the repositories of %s: %w", host, err)
	}
	return out, nil
}
