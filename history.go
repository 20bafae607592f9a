package modelreg

import (
	"context"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/modelreg/modelreg/policy"
	"github.com/modelreg/modelreg/signing"
)

// HistoryOptions say which keys verify promotion records. With neither,
// records are listed unverified.
type HistoryOptions struct {
	// Keys are public key files trusted for every alias.
	Keys []string
	// Policy trusts each alias's promoter keys.
	Policy string
	// Tags, if not nil, is a listing of the repository the caller has
	// just read (Snapshot): History reads the records of its digests
	// without listing or resolving the tags again. A snapshot of another
	// repository is an errdef.ErrInvalidInput error. Nil: list here.
	Tags *TagSnapshot
}

// AliasHistory is the timeline of one alias.
type AliasHistory struct {
	Alias string `json:"alias"`
	// Current is the digest the tag names now ("" if unset) and
	// CurrentVersion its version tag.
	Current        string `json:"current"`
	CurrentVersion string `json:"currentVersion"`
	// Explained is true when the newest verified record names Current.
	Explained bool `json:"explained"`
	// Records are newest first, each with the version tag of its digest.
	Records []HistoryRecord `json:"records"`
}

// HistoryRecord is a promotion record with version tags resolved.
type HistoryRecord struct {
	PromotionRecord
	Version         string `json:"version"`
	PreviousVersion string `json:"previousVersion"`
}

// History is the answer of History.
type History struct {
	Repository string `json:"repository"`
	// Verified is true when records were checked against trusted keys;
	// without keys nothing is flagged, since nothing is known.
	Verified bool           `json:"verified"`
	Aliases  []AliasHistory `json:"aliases"`
}

// History returns the timeline of each alias of repoStr (or only alias)
// from the promotion records in the registry, newest first, with who and
// when; an alias whose tag names a digest no record explains is flagged.
// A repository without any tag is an error wrapping errdef.ErrNotFound, as
// with Versions.
func (c *Client) History(ctx context.Context, repoStr, alias string, opts HistoryOptions) (*History, error) {
	ref, repo, err := c.openRepo(repoStr)
	if err != nil {
		return nil, err
	}
	var (
		vs, as []string
		m      map[string]digest.Digest
	)
	if opts.Tags != nil {
		if err := opts.Tags.checkRepository(ref); err != nil {
			return nil, err
		}
		vs, as, m = opts.Tags.state()
	} else if vs, as, m, _, err = tagState(ctx, repo); err != nil {
		return nil, err
	}
	if len(vs) == 0 && len(as) == 0 {
		return nil, repositoryNotFound(ref)
	}
	var keys []signing.PublicKey
	var pol *policy.Policy
	for _, p := range opts.Keys {
		k, err := signing.LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if opts.Policy != "" {
		if pol, err = policy.Load(opts.Policy); err != nil {
			return nil, err
		}
		pk, err := publicKeys(pol.Keys())
		if err != nil {
			return nil, err
		}
		keys = append(keys, pk...)
	}
	recs, err := c.promotionRecordsIn(ctx, repo, ref, keys, alias, opts.Tags)
	if err != nil {
		return nil, err
	}
	version := map[digest.Digest]string{}
	for _, v := range vs {
		version[m[v]] = v
	}
	by := map[string]*AliasHistory{}
	get := func(a string) *AliasHistory {
		if h, ok := by[a]; ok {
			return h
		}
		h := &AliasHistory{Alias: a, Records: []HistoryRecord{}}
		if d, ok := m[a]; ok {
			h.Current, h.CurrentVersion = d.String(), version[d]
		}
		by[a] = h
		return h
	}
	for _, r := range recs {
		if pol != nil && r.Verified && !isPromoter(pol, r.Alias, r.KeyID) && len(opts.Keys) == 0 {
			r.Verified = false // signed by a policy key that may not promote this alias
		}
		h := get(r.Alias)
		h.Records = append(h.Records, HistoryRecord{
			PromotionRecord: r,
			Version:         version[digest.Digest(r.Digest)],
			PreviousVersion: version[digest.Digest(r.PreviousDigest)],
		})
	}
	if alias != "" {
		get(alias)
	}
	res := &History{Repository: ref.Name(), Aliases: []AliasHistory{}, Verified: len(keys) > 0}
	for _, h := range by {
		for _, r := range h.Records {
			if r.Verified {
				h.Explained = r.Digest == h.Current
				break
			}
		}
		res.Aliases = append(res.Aliases, *h)
	}
	sort.Slice(res.Aliases, func(i, j int) bool { return res.Aliases[i].Alias < res.Aliases[j].Alias })
	return res, nil
}
