package modelreg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osuser "os/user"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/mediatypes"
	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/signing"
)

// PromotionPredicate is the predicate of a promotion record
// (predicateType https://modelreg.dev/promotion/v1): one signed in-toto
// attestation on the promoted digest per successful promotion. Records of
// one alias form a chain: each names the sequence number one above the
// previous record's and that record's digest.
type PromotionPredicate struct {
	// Repository is HOST/REPO where the alias was moved.
	Repository string `json:"repository"`
	// Alias is the alias that moved.
	Alias string `json:"alias"`
	// Digest is the version the alias now names (the statement's subject).
	Digest string `json:"digest"`
	// PreviousDigest is what the alias named before, "" if it was unset.
	PreviousDigest string `json:"previousDigest"`
	// Sequence counts the promotions of this alias in this repository,
	// from 1.
	Sequence int64 `json:"sequence"`
	// PreviousRecord is the RecordDigest of the record with Sequence-1, ""
	// for the first.
	PreviousRecord string `json:"previousRecord"`
	// Signer is the key ID of the key that signs the record; Actor who ran
	// the promotion (MODELREG_ACTOR, else user@host).
	Signer string `json:"signer"`
	Actor  string `json:"actor"`
	// PromotedAt is when, RFC 3339 UTC.
	PromotedAt string `json:"promotedAt"`
	// Policy is the policy applied and its decision.
	Policy PolicyResult `json:"policy"`
	// Reason says why, e.g. "rollback".
	Reason string `json:"reason,omitempty"`
}

// PolicyResult is the policy part of a promotion record.
type PolicyResult struct {
	Digest  string `json:"digest"`
	Allowed bool   `json:"allowed"`
	Rules   []Rule `json:"rules"`
}

// Rule is one rule's outcome in a promotion record.
type Rule struct {
	Rule   string `json:"rule"`
	Passed bool   `json:"passed"`
}

// PromotionRecord is a promotion record found in a repository.
type PromotionRecord struct {
	PromotionPredicate
	// RecordDigest is "sha256:<hex>" of the predicate JSON as signed; the
	// next record names it in PreviousRecord.
	RecordDigest string `json:"recordDigest"`
	// KeyID and KeyPath identify the key that verified the record; both ""
	// when the record was listed without verification.
	KeyID   string `json:"keyId"`
	KeyPath string `json:"keyPath"`
	// Verified is true when a trusted key verified the record and its
	// predicate names the digest the attestation is bound to.
	Verified bool `json:"verified"`
}

// attTag matches cosign's attestation tags, sha256-<hex>.att.
var attTag = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256-([0-9a-f]{64})\.att$`) })

// attestedDigests returns the digests that carry a cosign attestation tag.
func attestedDigests(tags []string) []digest.Digest {
	var ds []digest.Digest
	for _, t := range tags {
		if m := attTag().FindStringSubmatch(t); m != nil {
			ds = append(ds, digest.NewDigestFromEncoded(digest.SHA256, m[1]))
		}
	}
	return ds
}

// referrersTag matches the referrers tag schema (sha256-<hex>) and
// cosign's signature and SBOM tags, none of which names a model version.
var referrersTag = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256-([0-9a-f]{64})(\.[a-z]+)?$`) })

// recordCandidates returns the digests that may carry promotion records:
// those with a cosign .att tag (records of earlier releases) or a
// referrers tag schema index, and the digest of every other tag (records
// as referrers are found only from their subject, and each promoted
// version keeps its version tag). Each digest appears once.
func recordCandidates(ctx context.Context, repo *remote.Repository, tags []string, known map[string]digest.Digest) ([]digest.Digest, error) {
	seen := map[digest.Digest]bool{}
	var ds []digest.Digest
	add := func(d digest.Digest) {
		if !seen[d] {
			seen[d] = true
			ds = append(ds, d)
		}
	}
	for _, d := range attestedDigests(tags) {
		add(d)
	}
	var other []string
	for _, t := range tags {
		if m := referrersTag().FindStringSubmatch(t); m != nil {
			if m[2] == "" {
				add(digest.NewDigestFromEncoded(digest.SHA256, m[1]))
			}
			continue
		}
		if d, ok := known[t]; ok {
			add(d)
			continue
		}
		other = append(other, t)
	}
	resolved := make([]digest.Digest, len(other))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, t := range other {
		g.Go(func() error {
			desc, err := repo.Resolve(gctx, t)
			if errors.Is(err, errdef.ErrNotFound) {
				return nil // removed since the listing
			}
			if err != nil {
				return fmt.Errorf("resolving tag %s of %s: %w", t, repo.Reference, err)
			}
			resolved[i] = desc.Digest
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, d := range resolved {
		add(d)
	}
	return ds, nil
}

// promotionRecords returns the promotion records in repo (for alias, or
// all when alias is ""), verified with keys; with no keys they are listed
// unverified. Records are sorted by alias, then newest first (sequence,
// then time, then record digest).
func (c *Client) promotionRecords(ctx context.Context, repo *remote.Repository, ref oci.Reference, keys []signing.PublicKey, alias string) ([]PromotionRecord, error) {
	return c.promotionRecordsIn(ctx, repo, ref, keys, alias, nil)
}

// promotionRecordsIn is promotionRecords over snap, a listing the caller
// has just read (nil: list and resolve the tags here). With a snapshot,
// no tag is resolved again and a digest without a .att tag in it costs
// one referrers request instead of three.
func (c *Client) promotionRecordsIn(ctx context.Context, repo *remote.Repository, ref oci.Reference, keys []signing.PublicKey, alias string, snap *TagSnapshot) ([]PromotionRecord, error) {
	var (
		tags  []string
		known map[string]digest.Digest
		att   map[string]bool // .att tags listed, when snap says
		err   error
	)
	if snap != nil {
		tags, att = snap.Tags, map[string]bool{}
		_, _, known = snap.state()
		for _, t := range tags {
			if strings.HasSuffix(t, ".att") || referrersTag().MatchString(t) {
				att[t] = true // cosign .att tags and referrers indexes
			}
		}
	} else if tags, err = oci.ListTags(ctx, repo); err != nil {
		return nil, err
	}
	ds, err := recordCandidates(ctx, repo, tags, known)
	if err != nil {
		return nil, err
	}
	found := make([][]PromotionRecord, len(ds))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, d := range ds {
		opts := c.signingOptions(ref)
		if att != nil {
			base := strings.Replace(d.String(), ":", "-", 1)
			opts.NoLegacyAtt, opts.NoReferrersTag = !att[base+".att"], !att[base]
		}
		g.Go(func() error {
			recs, err := c.recordsOn(gctx, ref, d, keys, opts)
			found[i] = recs
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []PromotionRecord
	for _, recs := range found {
		for _, r := range recs {
			if alias == "" || r.Alias == alias {
				out = append(out, r)
			}
		}
	}
	sortRecords(out)
	return out, nil
}

// recordsOn returns the promotion records attached to digest d in the
// repository of ref. A record counts as verified only when a trusted key
// signed it, its predicate names d (the digest the signature binds), and it
// names this repository: a record copied from another repository, where the
// same digest was promoted, says nothing about this one.
func (c *Client) recordsOn(ctx context.Context, ref oci.Reference, d digest.Digest, keys []signing.PublicKey, opts signing.RegistryOptions) ([]PromotionRecord, error) {
	repoName := ref.Name()
	var out []PromotionRecord
	add := func(raw json.RawMessage, verified bool, keyID, keyPath string) {
		var p PromotionPredicate
		if json.Unmarshal(raw, &p) != nil || p.Alias == "" {
			return
		}
		if p.Digest != d.String() || !sameRepository(p.Repository, ref) {
			verified = false
		}
		out = append(out, PromotionRecord{
			PromotionPredicate: p,
			RecordDigest:       digest.FromBytes(raw).String(),
			KeyID:              keyID, KeyPath: keyPath, Verified: verified,
		})
	}
	if len(keys) == 0 {
		atts, err := signing.Attestations(ctx, repoName, d, opts)
		if err != nil {
			return nil, fmt.Errorf("reading attestations of %s@%s: %w", repoName, d, err)
		}
		for _, a := range atts {
			if a.PredicateType == mediatypes.PredicatePromotion {
				add(a.Predicate, false, "", "")
			}
		}
		return out, nil
	}
	atts, err := signing.VerifyAttestations(ctx, repoName, d, keys, opts)
	if err != nil {
		return nil, fmt.Errorf("verifying attestations of %s@%s: %w", repoName, d, err)
	}
	for _, a := range atts {
		if a.PredicateType == mediatypes.PredicatePromotion {
			add(a.Predicate, true, a.KeyID, a.KeyPath)
		}
	}
	return out, nil
}

func sortRecords(rs []PromotionRecord) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Alias != b.Alias {
			return a.Alias < b.Alias
		}
		if a.Sequence != b.Sequence {
			return a.Sequence > b.Sequence
		}
		if a.PromotedAt != b.PromotedAt {
			return a.PromotedAt > b.PromotedAt
		}
		return a.RecordDigest > b.RecordDigest
	})
}

// sameRepository reports whether a record's HOST/REPO names the repository
// of ref. Only the path is compared: the same registry is often reached as
// localhost and 127.0.0.1, or through a mirror that keeps paths.
func sameRepository(recordRepo string, ref oci.Reference) bool {
	_, path, ok := strings.Cut(recordRepo, "/")
	return ok && path == ref.Repository
}

// newestSequence returns the verified records of rs (one alias) that share
// the highest sequence number: one normally, more when promotions raced.
func newestSequence(rs []PromotionRecord) []PromotionRecord {
	var out []PromotionRecord
	for _, r := range rs {
		if !r.Verified {
			continue
		}
		if len(out) > 0 && r.Sequence != out[0].Sequence {
			break
		}
		out = append(out, r)
	}
	return out
}

// newestRecord returns the newest verified record among rs (which are for
// one alias), or nil.
func newestRecord(rs []PromotionRecord) *PromotionRecord {
	for i := range rs {
		if rs[i].Verified {
			return &rs[i]
		}
	}
	return nil
}

// actor names who runs a promotion: MODELREG_ACTOR, else user@host.
func actor() string {
	if a := os.Getenv("MODELREG_ACTOR"); a != "" {
		return a
	}
	user := os.Getenv("USER")
	if u, err := osuser.Current(); user == "" && err == nil {
		user = u.Username
	}
	if user == "" {
		user = "unknown"
	}
	host, _ := os.Hostname()
	return user + "@" + host
}

// writeRecord signs and attaches a promotion record to the promoted digest.
func (c *Client) writeRecord(ctx context.Context, ref oci.Reference, key *signing.PrivateKey, p PromotionPredicate) (*PromotionRecord, error) {
	p.Signer = key.ID
	p.Actor = actor()
	p.PromotedAt = c.now().UTC().Format(time.RFC3339)
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if err := signing.Attest(ctx, ref.Name(), ref.Digest, key, mediatypes.PredicatePromotion, raw, c.signingOptions(ref)); err != nil {
		return nil, fmt.Errorf("writing the promotion record: %w", err)
	}
	return &PromotionRecord{PromotionPredicate: p, RecordDigest: digest.FromBytes(raw).String(), KeyID: key.ID, KeyPath: key.Path, Verified: true}, nil
}

func joinOr(s []string, empty string) string {
	if len(s) == 0 {
		return empty
	}
	return strings.Join(s, ", ")
}
