package modelreg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	orasErrdef "oras.land/oras-go/v2/errdef"

	"github.com/modelreg/modelreg/mediatypes"
	"github.com/modelreg/modelreg/oci"
	"github.com/modelreg/modelreg/signing"
)

// LineageOptions configure Lineage.
type LineageOptions struct {
	// Downstream walks what was built from the reference (link
	// referrers) instead of what it was built from (its annotations).
	Downstream bool
	// Depth bounds how many edges away from the reference nodes may be;
	// ≤ 0 means no bound (cycles end where a node repeats).
	Depth int
	// Keys are cosign public key files: if any is given, a downstream
	// link counts only with a valid signature by one of them.
	Keys []string
	// LinkTimeout bounds the reads of one downstream link (its manifest,
	// layer, the version it names, its signatures): a link naming a host
	// that never answers is dropped after it, not waited on.
	// 0 means DefaultLinkTimeout.
	LinkTimeout time.Duration
	// MaxLinks is how many link referrers of one node are read; the rest
	// are listed in Dropped unread. 0 means DefaultMaxLinks.
	MaxLinks int
}

// Defaults of LineageOptions: anyone who may push to a dataset's
// repository can add links to it, so one link costs at most this long and
// one node at most this many links.
const (
	DefaultLinkTimeout = 10 * time.Second
	DefaultMaxLinks    = 1000
)

// Node kinds (LineageNode.Kind).
const (
	KindModel   = "model"
	KindDataset = "dataset"
)

// LineageNode is one artifact of a lineage graph.
type LineageNode struct {
	// ID is HOST/REPO@DIGEST, the node's identity in Edges.
	ID         string `json:"id"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	// Version is the vN tag naming the digest, if any.
	Version string `json:"version,omitempty"`
	// Kind is "dataset" (named as a dataset, or every file a dataset
	// file) or "model".
	Kind string `json:"kind"`
	// Depth is the number of edges from the root.
	Depth int `json:"depth"`
	// RunID, RunURL, Source and Revision are the version's training run
	// and source commit annotations, when present.
	RunID    string `json:"runId,omitempty"`
	RunURL   string `json:"runUrl,omitempty"`
	Source   string `json:"source,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Error says why the node's manifest could not be read (another
	// registry, no read rights, deleted); its own lineage is then
	// unknown.
	Error string `json:"error,omitempty"`
}

// LineageEdge says that To was built from From: the edge always points
// downstream, whichever direction was walked.
type LineageEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Relation is "dataset" or "parent".
	Relation string `json:"relation"`
}

// DroppedLink is a link referrer a downstream walk did not trust.
type DroppedLink struct {
	// Subject is the node whose repository holds the link; Link the
	// link manifest's digest; Downstream what it claims (HOST/REPO@DIGEST).
	Subject    string `json:"subject"`
	Link       string `json:"link"`
	Downstream string `json:"downstream,omitempty"`
	// Reason says why: the target does not name the subject, is
	// missing, the link is malformed, or no key verified it.
	Reason string `json:"reason"`
}

// LineageGraph is the answer of Lineage: nodes (the root first, then by
// depth and ID) and edges (sorted), both always present in JSON.
type LineageGraph struct {
	// Root is the ID of the reference the walk started from.
	Root string `json:"root"`
	// Direction is "upstream" or "downstream".
	Direction string        `json:"direction"`
	Nodes     []LineageNode `json:"nodes"`
	Edges     []LineageEdge `json:"edges"`
	// Dropped lists the link referrers left out (downstream only).
	Dropped []DroppedLink `json:"dropped"`
}

// Lineage walks the lineage graph of the version refStr names (a tag is
// resolved once). Upstream (the default) reads each version's own lineage
// annotations: datasets and parent, recursively. Downstream lists the link
// referrers (artifactType mediatypes.ArtifactTypeLink) of each node in its
// repository, one referrers call per node (the referrers tag schema where
// the registry has no referrers API), and keeps a link only when the
// version it names exists and its own annotations name the node's digest
// with the link's relation — the downstream manifest is the source of
// truth, the link only an index — and, with opts.Keys, when one of the keys
// signed the link. Links left out are listed in Dropped with the reason.
// Nodes that cannot be read are kept with their Error; only the root must
// be readable.
func (c *Client) Lineage(ctx context.Context, refStr string, opts LineageOptions) (*LineageGraph, error) {
	var keys []signing.PublicKey
	if len(opts.Keys) > 0 {
		var err error
		if keys, err = loadPublicKeys(opts.Keys); err != nil {
			return nil, err
		}
	}
	_, pinned, _, mv, err := c.version(ctx, refStr)
	if err != nil {
		return nil, err
	}
	if opts.LinkTimeout <= 0 {
		opts.LinkTimeout = DefaultLinkTimeout
	}
	if opts.MaxLinks <= 0 {
		opts.MaxLinks = DefaultMaxLinks
	}
	w := &walker{c: c, keys: keys, linkTimeout: opts.LinkTimeout, maxLinks: opts.MaxLinks, versions: map[string]map[digest.Digest]string{}, nodes: map[string]*LineageNode{}, edges: map[LineageEdge]bool{}}
	g := &LineageGraph{Root: pinned.String(), Direction: "upstream", Dropped: []DroppedLink{}}
	if opts.Downstream {
		g.Direction = "downstream"
	}
	root := w.node(ctx, pinned, mv, nil, 0)
	queue := []walkItem{{pinned, mv}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		n := w.nodes[it.ref.String()]
		if opts.Depth > 0 && n.Depth >= opts.Depth {
			continue
		}
		var next []walkItem
		if opts.Downstream {
			next = w.downstream(ctx, it, n, g)
		} else {
			next = w.upstream(ctx, it, n)
		}
		queue = append(queue, next...)
	}
	g.Nodes = append(g.Nodes, *root)
	var rest []LineageNode
	for id, n := range w.nodes {
		if id != root.ID {
			rest = append(rest, *n)
		}
	}
	sort.Slice(rest, func(i, j int) bool {
		if rest[i].Depth != rest[j].Depth {
			return rest[i].Depth < rest[j].Depth
		}
		return rest[i].ID < rest[j].ID
	})
	g.Nodes = append(g.Nodes, rest...)
	g.Edges = []LineageEdge{}
	for e := range w.edges {
		g.Edges = append(g.Edges, e)
	}
	sort.Slice(g.Edges, func(i, j int) bool {
		a, b := g.Edges[i], g.Edges[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		return a.Relation < b.Relation
	})
	return g, nil
}

type walkItem struct {
	ref oci.Reference
	mv  *oci.ModelVersion
}

// walker holds what one Lineage walk has seen: nodes by ID, edges, and the
// version tags of each repository read so far.
type walker struct {
	linkTimeout time.Duration
	maxLinks    int
	c           *Client
	keys        []signing.PublicKey
	versions    map[string]map[digest.Digest]string
	nodes       map[string]*LineageNode
	edges       map[LineageEdge]bool
}

// node adds (or returns) the node of ref with manifest mv (nil when it
// could not be read, readErr saying why).
func (w *walker) node(ctx context.Context, ref oci.Reference, mv *oci.ModelVersion, readErr error, depth int) *LineageNode {
	id := ref.String()
	if n, ok := w.nodes[id]; ok {
		return n
	}
	n := &LineageNode{ID: id, Repository: ref.Name(), Digest: ref.Digest.String(), Kind: KindModel, Depth: depth}
	if readErr != nil {
		n.Error = readErr.Error()
	}
	if mv != nil {
		a := mv.Manifest.Annotations
		n.RunID, n.RunURL = a[mediatypes.AnnotationRunID], a[mediatypes.AnnotationRunURL]
		n.Source, n.Revision = a[mediatypes.AnnotationSource], a[mediatypes.AnnotationRevision]
		if allDatasetFiles(mv) {
			n.Kind = KindDataset
		}
		n.Version = w.versionOf(ctx, ref)
	}
	w.nodes[id] = n
	return n
}

// allDatasetFiles reports whether every file of mv is a dataset file.
func allDatasetFiles(mv *oci.ModelVersion) bool {
	if len(mv.Files) == 0 {
		return false
	}
	for _, f := range mv.Files {
		if f.Descriptor.MediaType != mediatypes.DatasetRaw {
			return false
		}
	}
	return true
}

// versionOf returns the vN tag of ref's digest, reading the repository's
// version tags once per walk; "" when none names it or they cannot be read.
func (w *walker) versionOf(ctx context.Context, ref oci.Reference) string {
	m, ok := w.versions[ref.Name()]
	if !ok {
		m = map[digest.Digest]string{}
		if _, repo, err := w.c.openRepo(ref.Name()); err == nil {
			if vs, _, tm, _, err := tagState(ctx, repo); err == nil {
				for _, v := range vs {
					if d, ok := tm[v]; ok {
						if _, dup := m[d]; !dup {
							m[d] = v
						}
					}
				}
			}
		}
		w.versions[ref.Name()] = m
	}
	return m[ref.Digest]
}

// fetch reads the manifest of ref (HOST/REPO@DIGEST).
func (w *walker) fetch(ctx context.Context, ref oci.Reference) (*oci.ModelVersion, error) {
	_, repo, err := w.c.open(ref.String())
	if err != nil {
		return nil, err
	}
	return oci.FetchModel(ctx, repo, ref, ref.Digest)
}

func (w *walker) upstream(ctx context.Context, it walkItem, n *LineageNode) []walkItem {
	var next []walkItem
	for _, u := range upstreamOf(it.mv.Manifest.Annotations) {
		_, seen := w.nodes[u.Ref.String()]
		var mv *oci.ModelVersion
		var err error
		if !seen {
			mv, err = w.fetch(ctx, u.Ref)
		}
		up := w.node(ctx, u.Ref, mv, err, n.Depth+1)
		if u.Relation == RelationDataset {
			up.Kind = KindDataset
		}
		w.edges[LineageEdge{From: up.ID, To: n.ID, Relation: u.Relation}] = true
		if !seen && mv != nil {
			next = append(next, walkItem{u.Ref, mv})
		}
	}
	return next
}

func (w *walker) downstream(ctx context.Context, it walkItem, n *LineageNode, g *LineageGraph) []walkItem {
	links, err := w.c.linkReferrers(ctx, it.ref)
	if err != nil {
		if n.Error == "" {
			n.Error = err.Error()
		}
		return nil
	}
	var next []walkItem
	seenLink := map[digest.Digest]bool{}
	for _, d := range links {
		if seenLink[d.Digest] {
			continue
		}
		seenLink[d.Digest] = true
		if len(seenLink) > w.maxLinks {
			g.Dropped = append(g.Dropped, DroppedLink{Subject: n.ID, Link: d.Digest.String(),
				Reason: fmt.Sprintf("more than %d links on this version: not read", w.maxLinks)})
			continue
		}
		if item, ok := w.followLink(ctx, it, n, g, d); ok {
			next = append(next, item)
		}
	}
	return next
}

// followLink reads link referrer d of node n within the walker's link
// timeout and, when it holds (see Client.Lineage), adds its edge; ok says
// the version it names is new to the walk. A link that does not hold is
// appended to g.Dropped with the reason.
func (w *walker) followLink(ctx context.Context, it walkItem, n *LineageNode, g *LineageGraph, d ocispec.Descriptor) (item walkItem, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, w.linkTimeout)
	defer cancel()
	drop := func(down, reason string) {
		g.Dropped = append(g.Dropped, DroppedLink{Subject: n.ID, Link: d.Digest.String(), Downstream: down, Reason: reason})
	}
	l, err := w.readLink(ctx, it.ref, d)
	if err != nil {
		drop("", err.Error())
		return walkItem{}, false
	}
	target, err := oci.ParseReference(l.Repository + "@" + l.Digest)
	if err != nil || target.Digest == "" {
		drop(l.Repository+"@"+l.Digest, "the link names no valid HOST/REPO@DIGEST")
		return walkItem{}, false
	}
	_, seen := w.nodes[target.String()]
	mv, err := w.fetch(ctx, target)
	if err != nil {
		drop(target.String(), "the version it names cannot be read: "+err.Error())
		return walkItem{}, false
	}
	if !names(mv.Manifest.Annotations, l.Relation, it.ref.Digest) {
		drop(target.String(), fmt.Sprintf("the version's lineage annotations do not name %s as its %s", it.ref.Digest, l.Relation))
		return walkItem{}, false
	}
	if len(w.keys) > 0 {
		sigs, err := signing.VerifySignatures(ctx, it.ref.Name(), d.Digest, w.keys, w.c.signingOptions(it.ref))
		if err != nil {
			drop(target.String(), "reading its signatures: "+err.Error())
			return walkItem{}, false
		}
		if len(sigs) == 0 {
			drop(target.String(), "no valid signature by "+joinKeys(publicKeyPaths(w.keys)))
			return walkItem{}, false
		}
	}
	down := w.node(ctx, target, mv, nil, n.Depth+1)
	w.edges[LineageEdge{From: n.ID, To: down.ID, Relation: l.Relation}] = true
	return walkItem{target, mv}, !seen
}

func publicKeyPaths(keys []signing.PublicKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.Path)
	}
	return out
}

// readLink fetches the link manifest d listed for subject and its JSON
// layer, and checks its form: subject digest, artifactType, one layer of
// mediatypes.LinkMediaType, a known relation.
func (w *walker) readLink(ctx context.Context, subject oci.Reference, d ocispec.Descriptor) (*Link, error) {
	_, repo, err := w.c.open(subject.String())
	if err != nil {
		return nil, err
	}
	if d.Size > 1<<20 {
		return nil, fmt.Errorf("the link manifest is %d bytes, more than 1 MiB", d.Size)
	}
	raw, err := content.FetchAll(ctx, repo, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d.Digest, Size: d.Size})
	if errors.Is(err, orasErrdef.ErrNotFound) {
		return nil, fmt.Errorf("the link manifest is gone")
	}
	if err != nil {
		return nil, fmt.Errorf("reading the link manifest: %w", err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("the link manifest is not JSON: %v", err)
	}
	if m.Subject == nil || m.Subject.Digest != subject.Digest || m.ArtifactType != mediatypes.ArtifactTypeLink ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != mediatypes.LinkMediaType || m.Layers[0].Size > 1<<20 {
		return nil, fmt.Errorf("not a lineage link of %s (subject, artifactType or layer differ)", subject.Digest)
	}
	b, err := content.FetchAll(ctx, repo, m.Layers[0])
	if err != nil {
		return nil, fmt.Errorf("reading the link's layer: %w", err)
	}
	var l Link
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("the link's layer is not a link: %v", err)
	}
	if l.Relation != RelationDataset && l.Relation != RelationParent {
		return nil, fmt.Errorf("unknown relation %q", l.Relation)
	}
	return &l, nil
}

// Label is the node's short label: REPO:VERSION (or REPO@sha256:12 hex).
func (n LineageNode) Label() string {
	if n.Version != "" {
		return n.Repository + ":" + n.Version
	}
	d := n.Digest
	if len(d) > 19 {
		d = d[:19]
	}
	return n.Repository + "@" + d
}

// Text renders g as an indented tree from the root, one line per edge;
// a node reached again is marked "(see above)".
func (g *LineageGraph) Text() string {
	byID := map[string]LineageNode{}
	for _, n := range g.Nodes {
		byID[n.ID] = n
	}
	children := map[string][]LineageEdge{}
	for _, e := range g.Edges {
		if g.Direction == "downstream" {
			children[e.From] = append(children[e.From], e)
		} else {
			children[e.To] = append(children[e.To], e)
		}
	}
	var b strings.Builder
	describe := func(n LineageNode) string {
		s := fmt.Sprintf("%s (%s, %s)", n.Label(), n.Kind, n.Digest)
		var extra []string
		if n.RunID != "" {
			extra = append(extra, "run "+n.RunID)
		}
		if n.RunURL != "" {
			extra = append(extra, n.RunURL)
		}
		if n.Revision != "" {
			extra = append(extra, "commit "+n.Revision)
		}
		if n.Source != "" {
			extra = append(extra, n.Source)
		}
		if n.Error != "" {
			extra = append(extra, "unreadable: "+n.Error)
		}
		if len(extra) > 0 {
			s += " [" + strings.Join(extra, ", ") + "]"
		}
		return s
	}
	printed := map[string]bool{}
	var walk func(id, prefix string)
	walk = func(id, prefix string) {
		kids := children[id]
		for i, e := range kids {
			other := e.From
			if g.Direction == "downstream" {
				other = e.To
			}
			branch, next := "├── ", "│   "
			if i == len(kids)-1 {
				branch, next = "└── ", "    "
			}
			line := prefix + branch + e.Relation + ": " + describe(byID[other])
			if printed[other] {
				fmt.Fprintln(&b, line+" (see above)")
				continue
			}
			printed[other] = true
			fmt.Fprintln(&b, line)
			walk(other, prefix+next)
		}
	}
	fmt.Fprintln(&b, describe(byID[g.Root]))
	printed[g.Root] = true
	walk(g.Root, "")
	if len(g.Edges) == 0 {
		if g.Direction == "downstream" {
			fmt.Fprintln(&b, "(nothing built from it has a trusted link)")
		} else {
			fmt.Fprintln(&b, "(no datasets or parent recorded)")
		}
	}
	return b.String()
}

// DOT renders g in Graphviz's DOT language: a digraph whose node IDs are
// the HOST/REPO@DIGEST IDs as quoted strings, edges from upstream to
// downstream labelled with the relation. Quotes and backslashes are
// escaped.
func (g *LineageGraph) DOT() string {
	q := func(s string) string {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
	}
	var b strings.Builder
	b.WriteString("digraph lineage {\n  rankdir=LR;\n  node [shape=box];\n")
	for _, n := range g.Nodes {
		shape := "box"
		if n.Kind == KindDataset {
			shape = "cylinder"
		}
		fmt.Fprintf(&b, "  %s [label=%s, shape=%s, kind=%s];\n", q(n.ID), q(n.Label()), shape, q(n.Kind))
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", q(e.From), q(e.To), q(e.Relation))
	}
	b.WriteString("}\n")
	return b.String()
}

// Mermaid renders g as a Mermaid flowchart (left to right): nodes n0, n1,
// … in g.Nodes order with quoted labels, datasets as cylinders, edges
// labelled with the relation. In labels, every character other than ASCII
// letters, digits, space and . _ - / : @ + is written as "_": Mermaid
// 11.17's entity codes (#quot;) are not decoded in flowchart labels, and
// this way no label can leave its quotes or carry markup. References (the
// OCI name grammar) and version tags lose nothing.
func (g *LineageGraph) Mermaid() string {
	esc := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(" ._-/:@+", r):
				return r
			}
			return '_'
		}, s)
	}
	ids := map[string]string{}
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for i, n := range g.Nodes {
		id := fmt.Sprintf("n%d", i)
		ids[n.ID] = id
		open, closing := `["`, `"]`
		if n.Kind == KindDataset {
			open, closing = `[("`, `")]`
		}
		fmt.Fprintf(&b, "  %s%s%s%s\n", id, open, esc(n.Label()), closing)
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s -->|\"%s\"| %s\n", ids[e.From], esc(e.Relation), ids[e.To])
	}
	return b.String()
}
