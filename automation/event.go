// Package automation is `modelreg watch`: it notices what changes in
// registries (new model versions, alias moves, promotion records) and
// delivers events to webhooks (HMAC-signed), Slack, Teams and commands.
//
// Sources are polling (any registry), distribution's notifications
// (notifications.endpoints posting to the watcher) and the embedded
// registry of `modelreg serve`. Notifications only wake the watcher up:
// what happened is always read back from the registry through the root
// package's Client, so a forged notification cannot invent an event, and
// every rule (what a protected alias is, how a record verifies) lives in
// one place. State under a folder makes restarts lose and repeat nothing
// but a delivery cut by the crash.
package automation

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/modelreg/modelreg"
)

// Event types.
const (
	// VersionCreated: a new version tag (vN) appeared.
	VersionCreated = "version.created"
	// AliasMoved: an alias was set, moved or removed (NewDigest ""). For a
	// protected alias only a move a promoter-signed record explains.
	AliasMoved = "alias.moved"
	// AliasUntracked: a protected alias now names a digest that no
	// promoter-signed promotion record explains (a hand move, or a replayed
	// older record).
	AliasUntracked = "alias.untracked"
	// PromotionRecorded: a new verified promotion record.
	PromotionRecorded = "promotion.recorded"
	// SignatureAdded: a new signature of a version (a Sigstore bundle
	// referrer or a layer of the cosign v2 .sig tag).
	SignatureAdded = "signature.added"
	// AttestationAdded: a new attestation of a version, with its predicate
	// type: evaluations, approvals and any other in-toto statement.
	// Promotion records are attestations too but come as
	// promotion.recorded only.
	AttestationAdded = "attestation.added"
)

// EventTypes are the event types an automation can name.
var EventTypes = []string{VersionCreated, AliasMoved, AliasUntracked, PromotionRecorded, SignatureAdded, AttestationAdded}

func isEventType(s string) bool { return slices.Contains(EventTypes, s) }

// Event is one registry change, the JSON body of every delivery.
type Event struct {
	// ID is stable: the same registry change gives the same ID, whichever
	// watcher sees it and however often (32 hex digits of a SHA-256 over
	// repository, type and what changed).
	ID   string `json:"id"`
	Type string `json:"type"`
	// Time is when the watcher saw the change, RFC 3339 UTC.
	Time       string `json:"time"`
	Repository string `json:"repository"`
	// Digest is the version the event is about.
	Digest  string `json:"digest"`
	Version string `json:"version,omitempty"`
	Alias   string `json:"alias,omitempty"`
	// OldDigest and NewDigest are what an alias named before and after
	// ("" for unset).
	OldDigest string `json:"oldDigest,omitempty"`
	NewDigest string `json:"newDigest,omitempty"`
	// Record is the promotion record of promotion.recorded, and the record
	// that explains an alias.moved of a protected alias.
	Record *modelreg.PromotionRecord `json:"record,omitempty"`
	// Expected is, for alias.untracked, the digest the newest verified
	// record names ("" when there is none).
	Expected string `json:"expected,omitempty"`
	// Referrer is, for signature.added and attestation.added, the referrer
	// manifest's digest (Sigstore bundles; "" for a cosign v2 tag layer),
	// Format "bundle" or "legacy", PredicateType the in-toto predicate type
	// ("" for a legacy signature), KeyID "sha256:<hex>" of the signing key
	// (verified or, unverified, the key a bundle names; "" when unknown)
	// and Verified whether a key of the source's policy verified it.
	Referrer      string `json:"referrer,omitempty"`
	Format        string `json:"format,omitempty"`
	PredicateType string `json:"predicateType,omitempty"`
	KeyID         string `json:"keyId,omitempty"`
	Verified      *bool  `json:"verified,omitempty"`
}

func eventID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// Diff returns the events that turn prev into cur, in the order a reader
// expects them: new versions (by number), new signatures and attestations
// (by version, in listing order), promotion records, then alias moves (by
// alias). prev nil means nothing was known of the repository, so
// everything in cur is new. The referrers of a version prev knew but had
// not listed are a baseline, not news.
func Diff(prev, cur *modelreg.Observation, now time.Time) []Event {
	if prev == nil {
		prev = &modelreg.Observation{}
	}
	ts := now.UTC().Format(time.RFC3339)
	repo := cur.Repository
	versionOf := map[string]string{}
	for v, d := range cur.Versions {
		versionOf[d] = v
	}
	var out []Event
	var vs []string
	for v := range cur.Versions {
		if _, ok := prev.Versions[v]; !ok {
			vs = append(vs, v)
		}
	}
	sort.Slice(vs, func(i, j int) bool { return versionLess(vs[i], vs[j]) })
	for _, v := range vs {
		d := cur.Versions[v]
		out = append(out, Event{ID: eventID(repo, VersionCreated, v, d), Type: VersionCreated, Time: ts,
			Repository: repo, Digest: d, Version: v})
	}
	out = append(out, referrerEvents(prev, cur, versionOf, ts)...)
	known := map[string]bool{}
	for _, r := range prev.Records {
		if r.Verified {
			known[r.RecordDigest] = true
		}
	}
	for i := range cur.Records {
		r := cur.Records[i]
		if !r.Verified || known[r.RecordDigest] {
			continue
		}
		out = append(out, Event{ID: eventID(repo, PromotionRecorded, r.RecordDigest), Type: PromotionRecorded, Time: ts,
			Repository: repo, Digest: r.Digest, Version: versionOf[r.Digest], Alias: r.Alias,
			OldDigest: r.PreviousDigest, NewDigest: r.Digest, Record: &r})
	}
	var as []string
	seen := map[string]bool{}
	for a := range cur.Aliases {
		as, seen[a] = append(as, a), true
	}
	for a := range prev.Aliases {
		if !seen[a] {
			as = append(as, a)
		}
	}
	sort.Strings(as)
	for _, a := range as {
		old, now := prev.Aliases[a], cur.Aliases[a]
		if old == now {
			continue
		}
		e := Event{Repository: repo, Time: ts, Digest: now, Version: versionOf[now], Alias: a, OldDigest: old, NewDigest: now}
		if e.Digest == "" {
			e.Digest = old
		}
		if slices.Contains(cur.Protected, a) && now != "" {
			rec := cur.Newest(a)
			if rec == nil || rec.Digest != now {
				e.Type = AliasUntracked
				if rec != nil {
					e.Expected = rec.Digest
				}
				e.ID = eventID(repo, AliasUntracked, a, old, now)
				out = append(out, e)
				continue
			}
			e.Record = rec
			e.Type, e.ID = AliasMoved, eventID(repo, AliasMoved, a, old, now, rec.RecordDigest)
			out = append(out, e)
			continue
		}
		e.Type, e.ID = AliasMoved, eventID(repo, AliasMoved, a, old, now)
		out = append(out, e)
	}
	return out
}

func versionLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// referrerEvents are the signature.added and attestation.added events of
// the referrers cur lists and prev did not. The id hashes the version
// digest and the referrer's key (its manifest digest for a bundle), so
// the same referrer gives the same id however it is seen.
func referrerEvents(prev, cur *modelreg.Observation, versionOf map[string]string, ts string) []Event {
	knownVersion := map[string]bool{}
	for _, d := range prev.Versions {
		knownVersion[d] = true
	}
	var ds []string
	for d := range cur.Referrers {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool {
		vi, vj := versionOf[ds[i]], versionOf[ds[j]]
		if vi != vj {
			return versionLess(vi, vj)
		}
		return ds[i] < ds[j]
	})
	var out []Event
	for _, d := range ds {
		before, listed := prev.Referrers[d]
		if !listed && knownVersion[d] {
			continue // first listing of a version seen before: the baseline
		}
		seen := map[string]bool{}
		for _, r := range before {
			seen[r.Key] = true
		}
		for _, r := range cur.Referrers[d] {
			if seen[r.Key] || r.Kind == "promotion" {
				continue // records come as promotion.recorded
			}
			typ := AttestationAdded
			if r.Kind == "signature" {
				typ = SignatureAdded
			}
			verified := r.Verified
			e := Event{ID: eventID(cur.Repository, typ, d, r.Key), Type: typ, Time: ts, Repository: cur.Repository,
				Digest: d, Version: versionOf[d], Format: r.Format, PredicateType: r.PredicateType, KeyID: r.KeyID, Verified: &verified}
			if r.Format == "bundle" {
				e.Referrer = r.Key
			}
			out = append(out, e)
		}
	}
	return out
}
