package modelreg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasErrdef "oras.land/oras-go/v2/errdef"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/signing"
)

// Relations of a lineage edge: how a downstream version names its upstream.
const (
	// RelationDataset: the downstream version was trained on the upstream
	// (dev.modelreg.lineage.datasets).
	RelationDataset = "dataset"
	// RelationParent: the upstream is the downstream version's base model
	// (dev.modelreg.lineage.parent).
	RelationParent = "parent"
)

// Link is the JSON layer of a lineage link referrer (media type
// mediatypes.LinkMediaType). Fields are written in this order and nothing
// else is added, so the same link always has the same digest.
type Link struct {
	// Relation is RelationDataset or RelationParent.
	Relation string `json:"relation"`
	// Subject is the upstream (dataset or parent) as HOST/REPO@DIGEST.
	Subject string `json:"subject"`
	// Repository and Digest name the downstream model version; Version is
	// its vN tag (an index hint: readers check the digest).
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Version    string `json:"version,omitempty"`
}

// Link write statuses (LinkWrite.Status).
const (
	LinkWritten = "written"
	LinkPresent = "present"
	LinkFailed  = "failed"
)

// LinkWrite says what happened to one lineage link of a push or backfill.
type LinkWrite struct {
	// Subject is the dataset or parent (HOST/REPO@DIGEST) whose
	// repository holds the link; Relation how the downstream names it.
	Subject  string `json:"subject"`
	Relation string `json:"relation"`
	// Downstream is the model version (HOST/REPO@DIGEST) and Version its
	// tag.
	Downstream string `json:"downstream"`
	Version    string `json:"version,omitempty"`
	// Status is written, present (already listed) or failed.
	Status string `json:"status"`
	// Link is the link manifest's digest (empty when failed).
	Link string `json:"link,omitempty"`
	// Signed is true when a signature by the given key was written or
	// found on the link.
	Signed bool `json:"signed"`
	// Error says why the link was not written, and Backfill is the
	// command that writes it later.
	Error    string `json:"error,omitempty"`
	Backfill string `json:"backfill,omitempty"`
}

// upstreamRef is one dataset or parent named by a version's annotations.
type upstreamRef struct {
	Relation string
	Ref      oci.Reference
}

// upstreamOf reads the lineage annotations of a manifest: every dataset
// and the parent, as digest references. Malformed entries are skipped
// (Push only writes HOST/REPO@DIGEST).
func upstreamOf(ann map[string]string) []upstreamRef {
	var out []upstreamRef
	for _, s := range strings.Split(ann[mediatypes.AnnotationDatasets], ",") {
		if r, err := oci.ParseReference(strings.TrimSpace(s)); err == nil && r.Digest != "" {
			out = append(out, upstreamRef{RelationDataset, r})
		}
	}
	if r, err := oci.ParseReference(ann[mediatypes.AnnotationParent]); err == nil && r.Digest != "" {
		out = append(out, upstreamRef{RelationParent, r})
	}
	return out
}

// names reports whether the lineage annotations ann name digest d with
// relation rel: the trust rule of links.
func names(ann map[string]string, rel string, d digest.Digest) bool {
	for _, u := range upstreamOf(ann) {
		if u.Relation == rel && u.Ref.Digest == d {
			return true
		}
	}
	return false
}

// linkKey is a loaded signing key for links, with its public half to find
// signatures already made.
type linkKey struct {
	path string
	priv *signing.PrivateKey
	pub  signing.PublicKey
}

func loadLinkKey(path string, password []byte) (*linkKey, error) {
	if path == "" {
		return nil, nil
	}
	priv, err := signing.LoadPrivateKey(path, password)
	if err != nil {
		return nil, err
	}
	pub, err := priv.Public()
	if err != nil {
		return nil, err
	}
	return &linkKey{path: path, priv: priv, pub: pub}, nil
}

// writeLinks writes a link referrer into the repository of every dataset
// and parent that the version down (HOST/REPO@DIGEST, tag version) names
// in ann. A failure is reported in its LinkWrite, never returned: the
// version is pushed either way, and backfill writes the link later.
func (c *Client) writeLinks(ctx context.Context, down oci.Reference, version string, ann map[string]string, key *linkKey) []LinkWrite {
	out := []LinkWrite{}
	for _, u := range upstreamOf(ann) {
		w := LinkWrite{Subject: u.Ref.String(), Relation: u.Relation, Downstream: down.String(), Version: version}
		if err := c.writeLink(ctx, u, down, version, key, &w); err != nil {
			w.Status = LinkFailed
			w.Error = err.Error()
			w.Backfill = "modelreg lineage backfill " + down.Name()
			if key != nil {
				w.Backfill += " --key " + key.path
			}
		}
		out = append(out, w)
	}
	return out
}

func (c *Client) writeLink(ctx context.Context, u upstreamRef, down oci.Reference, version string, key *linkKey, w *LinkWrite) error {
	l := Link{Relation: u.Relation, Subject: u.Ref.String(), Repository: down.Name(), Digest: down.Digest.String(), Version: version}
	existing, err := c.linkReferrers(ctx, u.Ref)
	if err != nil {
		return err
	}
	var desc ocispec.Descriptor
	for _, d := range existing {
		a := d.Annotations
		if a[mediatypes.AnnotationLinkRelation] == l.Relation && a[mediatypes.AnnotationLinkRepository] == l.Repository &&
			a[mediatypes.AnnotationLinkDigest] == l.Digest {
			desc, w.Status = d, LinkPresent
			break
		}
	}
	if w.Status == "" {
		payload, err := json.Marshal(l)
		if err != nil {
			return err
		}
		ann := map[string]string{
			mediatypes.AnnotationLinkRelation:   l.Relation,
			mediatypes.AnnotationLinkRepository: l.Repository,
			mediatypes.AnnotationLinkDigest:     l.Digest,
		}
		if version != "" {
			ann[mediatypes.AnnotationLinkVersion] = version
		}
		desc, err = signing.PushReferrer(ctx, c.signingOptions(u.Ref), u.Ref.Name(), u.Ref.Digest, signing.Referrer{
			ArtifactType: mediatypes.ArtifactTypeLink, LayerMediaType: mediatypes.LinkMediaType, Layer: payload, Annotations: ann})
		if err != nil {
			return fmt.Errorf("writing the lineage link into %s: %w", u.Ref.Name(), err)
		}
		w.Status = LinkWritten
	}
	w.Link = desc.Digest.String()
	if key == nil {
		return nil
	}
	sigs, err := signing.VerifySignatures(ctx, u.Ref.Name(), desc.Digest, []signing.PublicKey{key.pub}, c.signingOptions(u.Ref))
	if err != nil {
		return fmt.Errorf("reading the signatures of link %s in %s: %w", desc.Digest, u.Ref.Name(), err)
	}
	if len(sigs) == 0 {
		if err := signing.Sign(ctx, u.Ref.Name(), desc.Digest, key.priv, nil, c.signingOptions(u.Ref)); err != nil {
			return fmt.Errorf("signing link %s in %s: %w", desc.Digest, u.Ref.Name(), err)
		}
		if w.Status == LinkPresent {
			w.Status = LinkWritten // the signature is new
		}
	}
	w.Signed = true
	return nil
}

// linkReferrers lists the link referrers of the manifest that ref
// (HOST/REPO@DIGEST) names, through the referrers API or, where the
// registry has none, the referrers tag schema (oras-go does both). A
// subject without referrers gives none.
func (c *Client) linkReferrers(ctx context.Context, ref oci.Reference) ([]ocispec.Descriptor, error) {
	repo, err := c.oci.Repository(ref)
	if err != nil {
		return nil, err
	}
	var out []ocispec.Descriptor
	err = repo.Referrers(ctx, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: ref.Digest}, mediatypes.ArtifactTypeLink,
		func(rs []ocispec.Descriptor) error {
			out = append(out, rs...)
			return nil
		})
	if err != nil && !errors.Is(err, orasErrdef.ErrNotFound) {
		return nil, fmt.Errorf("listing the lineage links of %s: %w", ref, err)
	}
	return out, nil
}

// BackfillOptions configure Backfill.
type BackfillOptions struct {
	// KeyPath is a cosign private key that signs each link (also links
	// already present but not signed by it); Password decrypts it.
	KeyPath  string
	Password []byte
}

// BackfillResult says what Backfill did.
type BackfillResult struct {
	Repositories []string `json:"repositories"`
	// Versions is how many model versions were read.
	Versions int `json:"versions"`
	// Written, Present and Failed count the links by LinkWrite.Status.
	Written int         `json:"written"`
	Present int         `json:"present"`
	Failed  int         `json:"failed"`
	Links   []LinkWrite `json:"links"`
}

// Backfill writes the lineage links that the versions (vN tags) of the
// repositories repos (HOST/REPO each) should have and lack: versions
// pushed with PushOptions.NoLinks, by an older release, or whose link
// could not be written then. It is idempotent: links are deterministic, and
// a link already listed is reported present and not written again. A link
// that cannot be written is counted in Failed with its error; Backfill
// returns an error only when a repository or one of its versions cannot be
// read (errdef.ErrNotFound for a repository without version tags).
func (c *Client) Backfill(ctx context.Context, repos []string, opts BackfillOptions) (*BackfillResult, error) {
	if len(repos) == 0 {
		return nil, fmt.Errorf("%w: lineage backfill needs at least one repository HOST/REPO", errdef.ErrInvalidInput)
	}
	key, err := loadLinkKey(opts.KeyPath, opts.Password)
	if err != nil {
		return nil, err
	}
	res := &BackfillResult{Repositories: []string{}, Links: []LinkWrite{}}
	for _, s := range repos {
		ref, repo, err := c.openRepo(s)
		if err != nil {
			return res, err
		}
		vs, _, m, _, err := tagState(ctx, repo)
		if err != nil {
			return res, err
		}
		if len(vs) == 0 {
			return res, fmt.Errorf("%w: %s has no model versions (vN tags) to backfill", errdef.ErrNotFound, ref.Name())
		}
		res.Repositories = append(res.Repositories, ref.Name())
		for _, v := range vs {
			d, ok := m[v]
			if !ok {
				continue
			}
			mv, err := oci.FetchModel(ctx, repo, ref.WithTag(v), d)
			if err != nil {
				return res, err
			}
			res.Versions++
			for _, w := range c.writeLinks(ctx, ref.WithDigest(d), v, mv.Manifest.Annotations, key) {
				switch w.Status {
				case LinkWritten:
					res.Written++
				case LinkPresent:
					res.Present++
				default:
					res.Failed++
				}
				res.Links = append(res.Links, w)
			}
		}
	}
	return res, nil
}
