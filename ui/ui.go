// Package ui is modelreg's read-only dashboard: server-rendered HTML pages
// over a few model repositories (models, model, version, alias history)
// and the JSON API under /api/ they are built from.
//
// It reads the registry only through the root package's Client, so what
// "signed", "promoted" or "hand-moved" means is decided in one place.
// Nothing is written. Pages need no JavaScript and load no asset from
// outside the binary (templates are embedded with go:embed).
package ui

import (
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/internal/size"
	"github.com/modelreg/modelreg/mediatypes"
)

//go:embed templates/*.html
var templateFS embed.FS

// Defaults of Options.
const (
	// DefaultRefresh is how long tag lists, referrers and promotion
	// records are served from memory: short enough that a promotion shows
	// within seconds, long enough that a page view is not a burst of
	// registry requests.
	DefaultRefresh = 10 * time.Second
	// DefaultPageSize is how many versions the model page shows at once;
	// each row costs a manifest, config and referrers read when cold.
	DefaultPageSize = 50
	// DefaultReadCache is the byte budget of the Client's cache of
	// manifests and blobs read by digest (modelreg.Options.ReadCache) that
	// `modelreg ui` sets: a version costs about 3 KiB there (manifest,
	// config, signature bundles), so 64 MiB holds some 20,000 versions.
	DefaultReadCache = 64 << 20
	// cacheEntries bounds the dashboard's own cache (tag snapshots,
	// version details, histories, diffs), least recently used out first.
	cacheEntries = 4096
	// resolveAllEvery is how many refreshes reuse the digests of version
	// tags before every one is resolved again: push never moves a version
	// tag, so most refreshes resolve only new version tags and the
	// aliases (one HEAD each instead of one per version).
	resolveAllEvery = 10
	// historyMaxAge is how many Refresh intervals the promotion records
	// are kept while no tag moves: a promotion moves its alias, so a
	// moved tag is what makes them read again; this bounds the rest (a
	// record written without a move).
	historyMaxAge = 10
)

// Options configure a Server.
type Options struct {
	// Repositories are the HOST/REPO names the dashboard shows, in this
	// order. Any other repository is answered with 404, so the server
	// cannot be used to read the rest of the registry.
	Repositories []string
	// Keys are public key files that verify signatures, evaluations and
	// promotion records. With none, nothing is shown as verified and no
	// alias is flagged as hand-moved (nothing is known).
	Keys []string
	// Policy is a promotion policy file whose promoter keys verify
	// promotion records, as `modelreg history --policy`; "" for none.
	Policy string
	// Refresh is how long tag lists, alias digests and the shown
	// versions' signatures and attestations are cached; promotion
	// records are read again when a tag moved, or after 10 Refresh
	// intervals. Zero means DefaultRefresh. What is read by digest is
	// cached by the Client (modelreg.Options.ReadCache, see
	// DefaultReadCache), without expiry.
	Refresh time.Duration
	// PageSize is the number of versions per model page; zero means
	// DefaultPageSize.
	PageSize int
	// ListRepositories, if set, lists more repositories to show (HOST/REPO),
	// read again after Refresh: `serve --ui` lists what its embedded
	// registry holds, so a model pushed later appears. Repositories may
	// then be empty.
	ListRepositories func(context.Context) ([]string, error)
}

// Server serves the dashboard. Create it with New.
type Server struct {
	cl    *modelreg.Client
	opts  Options
	repos map[string]bool
	tmpl  *template.Template
	mux   *http.ServeMux

	// cache holds tag snapshots, version details, histories and diffs,
	// each with the time it was read; bounded (cacheEntries).
	cache *lru.Cache[string, cached]
	// reads shares one registry read among the requests that miss the
	// same key at once (two tabs on a cold 1,000-version model).
	reads singleflight.Group
}

type cached struct {
	at  time.Time
	val any
}

// New returns a dashboard over cl for opts.Repositories; an empty list or
// a name that is not HOST/REPO is an errdef.ErrInvalidInput error.
func New(cl *modelreg.Client, opts Options) (*Server, error) {
	if len(opts.Repositories) == 0 && opts.ListRepositories == nil {
		return nil, fmt.Errorf("%w: the dashboard needs at least one repository (HOST/REPO)", errdef.ErrInvalidInput)
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	c, err := lru.New[string, cached](cacheEntries)
	if err != nil {
		return nil, err
	}
	s := &Server{cl: cl, opts: opts, repos: map[string]bool{}, cache: c}
	for _, r := range opts.Repositories {
		host, name, ok := strings.Cut(r, "/")
		if !ok || host == "" || name == "" || strings.ContainsAny(name, "@: ") {
			return nil, fmt.Errorf("%w: repository %q: want HOST/REPO, e.g. registry.example.com/team/sentiment", errdef.ErrInvalidInput, r)
		}
		s.repos[r] = true
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s.tmpl = t
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /{$}", s.page("models", s.modelsFromRequest))
	s.mux.HandleFunc("GET /model", s.page("model", s.modelFromRequest))
	s.mux.HandleFunc("GET /version", s.page("version", s.versionFromRequest))
	s.mux.HandleFunc("GET /history", s.page("history", s.historyFromRequest))
	s.mux.HandleFunc("GET /api/models", s.api(s.modelListFromRequest))
	s.mux.HandleFunc("GET /api/model", s.api(s.modelFromRequest))
	s.mux.HandleFunc("GET /api/version", s.api(s.versionFromRequest))
	s.mux.HandleFunc("GET /api/history", s.api(s.historyFromRequest))
	s.mux.HandleFunc("GET /compare", s.page("compare", s.compareFromRequest))
	s.mux.HandleFunc("GET /api/compare", s.api(s.compareFromRequest))
	s.mux.HandleFunc("GET /assets/{file}", serveAsset)
	s.mux.HandleFunc("/api/", apiNotFound)
	return s, nil
}

// ServeHTTP serves the pages and the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'")
	s.mux.ServeHTTP(w, r)
}

// Model summary and pages, shared by the HTML and the JSON API.

// ModelSummary is one row of the models page (GET /api/models).
type ModelSummary struct {
	Repository string `json:"repository"`
	// Latest is the newest version tag (highest vN); nil when the
	// repository cannot be read, see Error.
	Latest   *modelreg.VersionInfo `json:"latest,omitempty"`
	Versions int                   `json:"versions"`
	Aliases  []modelreg.AliasInfo  `json:"aliases"`
	// Size is the latest version's size (sum of its files), bytes.
	Size int64 `json:"size"`
	// Error says why the repository could not be read.
	Error string `json:"error,omitempty"`
}

// Models is the models page: every configured repository, in order.
func (s *Server) Models(ctx context.Context) ([]ModelSummary, error) {
	out := []ModelSummary{}
	repos, err := s.repositories(ctx)
	if err != nil {
		return nil, err
	}
	for _, repo := range repos {
		m := ModelSummary{Repository: repo, Aliases: []modelreg.AliasInfo{}}
		vl, err := s.versions(ctx, repo)
		if err == nil {
			var al *modelreg.AliasList
			al, err = s.aliases(ctx, repo)
			if err == nil {
				m.Aliases = al.Aliases
			}
		}
		if err != nil {
			m.Error = err.Error()
		} else if n := len(vl.Versions); n > 0 {
			m.Versions = n
			m.Latest = &vl.Versions[n-1]
			if d, err := s.detail(ctx, repo, m.Latest.Digest); err == nil {
				m.Size = d.Size
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// Badges say what is known about a version.
type Badges struct {
	// Signed: a signature verified by a trusted key.
	Signed bool `json:"signed"`
	// Attested: a verified attestation other than a signature or a
	// promotion record (evaluations, approvals, …).
	Attested bool `json:"attested"`
	// Promoted lists the aliases a verified promotion record moved to
	// this digest.
	Promoted []string `json:"promoted"`
	// HandMoved lists the aliases that point at this digest although no
	// verified promotion record explains it (moved with `oras tag`,
	// `alias set --force` or any registry client).
	HandMoved []string `json:"handMoved"`
}

// VersionRow is one row of the model page.
type VersionRow struct {
	Version string   `json:"version"`
	Digest  string   `json:"digest"`
	Aliases []string `json:"aliases"`
	// Size is the sum of the file sizes, bytes.
	Size int64 `json:"size"`
	// Created is the manifest's org.opencontainers.image.created, else
	// the ModelPack config's descriptor.createdAt (RFC 3339); "" if
	// neither is set (push writes no time unless given one).
	Created string `json:"created"`
	// Format, Params and DType come from the ModelPack config
	// (config.format, config.paramSize, config.precision); "" if unset.
	Format  string             `json:"format"`
	Params  string             `json:"params"`
	DType   string             `json:"dtype"`
	Metrics map[string]float64 `json:"metrics"`
	Badges  Badges             `json:"badges"`
	Error   string             `json:"error,omitempty"`
}

// ModelPage is the model page (GET /api/model?repo=HOST/REPO&page=N):
// versions newest first, PageSize at a time.
type ModelPage struct {
	Repository string       `json:"repository"`
	Page       int          `json:"page"`
	Pages      int          `json:"pages"`
	Total      int          `json:"total"`
	Verified   bool         `json:"verified"`
	Metrics    []string     `json:"metrics"`
	Versions   []VersionRow `json:"versions"`
	// Chart draws one metric (?metric=) across this page's versions;
	// nil when none has a verified metric.
	Chart *Chart `json:"chart,omitempty"`
}

// Model builds the model page of repo; page counts from 1.
func (s *Server) Model(ctx context.Context, repo string, page int) (*ModelPage, error) {
	vl, err := s.versions(ctx, repo)
	if err != nil {
		return nil, err
	}
	h, err := s.history(ctx, repo)
	if err != nil {
		return nil, err
	}
	vs := append([]modelreg.VersionInfo(nil), vl.Versions...)
	sort.SliceStable(vs, func(i, j int) bool { return versionNumber(vs[i].Version) > versionNumber(vs[j].Version) })
	pages := max(1, (len(vs)+s.opts.PageSize-1)/s.opts.PageSize)
	page = min(max(page, 1), pages)
	lo := (page - 1) * s.opts.PageSize
	hi := min(lo+s.opts.PageSize, len(vs))
	mp := &ModelPage{Repository: repo, Page: page, Pages: pages, Total: len(vs), Verified: len(s.opts.Keys) > 0 || s.opts.Policy != "", Metrics: []string{}, Versions: []VersionRow{}}
	seen := map[string]bool{}
	rows := make([]VersionRow, hi-lo)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8) // a few reads in flight, not one per row
	for i, v := range vs[lo:hi] {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rows[i] = s.row(ctx, repo, v, h)
		})
	}
	wg.Wait()
	for _, r := range rows {
		for k := range r.Metrics {
			if !seen[k] {
				seen[k] = true
				mp.Metrics = append(mp.Metrics, k)
			}
		}
	}
	sort.Strings(mp.Metrics)
	mp.Versions = rows
	return mp, nil
}

func (s *Server) row(ctx context.Context, repo string, v modelreg.VersionInfo, h *modelreg.History) VersionRow {
	r := VersionRow{Version: v.Version, Digest: v.Digest, Aliases: v.Aliases, Metrics: map[string]float64{}}
	d, err := s.detail(ctx, repo, v.Digest)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Size, r.Format, r.Params, r.DType, r.Metrics = d.Size, d.Format, d.Params, d.DType, d.Metrics
	r.Created = d.Created
	r.Badges = s.badges(d, h)
	return r
}

func (s *Server) badges(d *VersionDetail, h *modelreg.History) Badges {
	b := Badges{Promoted: []string{}, HandMoved: []string{}}
	for _, t := range d.Inspection.Referrers {
		if !t.Verified {
			continue
		}
		switch t.Kind {
		case "signature":
			b.Signed = true
		case "promotion":
		default:
			b.Attested = true
		}
	}
	for _, a := range h.Aliases {
		for _, r := range a.Records {
			if r.Verified && r.Digest == d.Digest && !slices.Contains(b.Promoted, a.Alias) {
				b.Promoted = append(b.Promoted, a.Alias)
			}
		}
		if h.Verified && a.Current == d.Digest && !a.Explained {
			b.HandMoved = append(b.HandMoved, a.Alias)
		}
	}
	return b
}

// VersionDetail is the version page (GET /api/version?repo=HOST/REPO&v=TAG|DIGEST).
type VersionDetail struct {
	Repository string `json:"repository"`
	Version    string `json:"version"`
	Digest     string `json:"digest"`
	// Inspection is the manifest, config, files and referrers (verified
	// against Options.Keys).
	Inspection *modelreg.Inspection `json:"inspection"`
	Files      []File               `json:"files"`
	// Lineage is the lineage annotations present (datasets, parent, run,
	// source, revision), by annotation key.
	Lineage     map[string]string     `json:"lineage"`
	Size        int64                 `json:"size"`
	Created     string                `json:"created"`
	Format      string                `json:"format"`
	Params      string                `json:"params"`
	DType       string                `json:"dtype"`
	Metrics     map[string]float64    `json:"metrics"`
	Evaluations []modelreg.Evaluation `json:"evaluations"`
	// Promotions are the promotion records that name this digest.
	Promotions []modelreg.HistoryRecord `json:"promotions"`
	Badges     Badges                   `json:"badges"`
	// Card is the model card rendered from README.md; nil without one.
	Card *Card `json:"card,omitempty"`
	// Approvals are the verified approval attestations of this digest.
	Approvals []modelreg.Approval `json:"approvals"`
	// LineageGraph is upstream and downstream lineage (ui/lineage.go).
	LineageGraph *VersionLineage `json:"lineageGraph"`
}

// File is one file of a version with its ModelPack role.
type File struct {
	modelreg.FileInfo
	Role string `json:"role"`
}

// lineageKeys are shown on the version page, in this order.
var lineageKeys = []string{mediatypes.AnnotationDatasets, mediatypes.AnnotationParent, mediatypes.AnnotationRunID,
	mediatypes.AnnotationRunURL, mediatypes.AnnotationSource, mediatypes.AnnotationRevision, mediatypes.AnnotationBaseName, mediatypes.AnnotationBaseDigest}

// Version builds the version page of repo at v (a tag or a digest).
func (s *Server) Version(ctx context.Context, repo, v string) (*VersionDetail, error) {
	dg, name, err := s.resolve(ctx, repo, v)
	if err != nil {
		return nil, err
	}
	d, err := s.detail(ctx, repo, dg)
	if err != nil {
		return nil, err
	}
	h, err := s.history(ctx, repo)
	if err != nil {
		return nil, err
	}
	cp := *d
	cp.Version = name
	cp.Badges = s.badges(d, h)
	cp.LineageGraph = s.lineage(ctx, repo, dg)
	cp.Promotions = []modelreg.HistoryRecord{}
	for _, a := range h.Aliases {
		for _, r := range a.Records {
			if r.Digest == dg {
				cp.Promotions = append(cp.Promotions, r)
			}
		}
	}
	if err := s.content(ctx, &cp); err != nil {
		return nil, err
	}
	return &cp, nil
}

// resolve finds the digest and version tag of v (a version tag, an alias
// or a digest) in the cached tag lists.
func (s *Server) resolve(ctx context.Context, repo, v string) (dg, name string, err error) {
	vl, err := s.versions(ctx, repo)
	if err != nil {
		return "", "", err
	}
	dg = v
	for _, vi := range vl.Versions {
		if vi.Version == v || vi.Digest == v {
			dg, name = vi.Digest, vi.Version
		}
	}
	if strings.HasPrefix(dg, "sha256:") {
		return dg, name, nil
	}
	al, err := s.aliases(ctx, repo)
	if err != nil {
		return "", "", err
	}
	for _, a := range al.Aliases {
		if a.Alias == v {
			return a.Digest, a.Version, nil
		}
	}
	return "", "", fmt.Errorf("%w: %s has no version or alias %q", errdef.ErrNotFound, repo, v)
}

// ComparePage is the compare page (GET /api/compare?repo=HOST/REPO&a=V&b=V):
// what changed from version a to version b, as `modelreg diff`.
type ComparePage struct {
	Repository string `json:"repository"`
	A          string `json:"a"`
	B          string `json:"b"`
	// Versions are the version tags to choose from, newest first.
	Versions []string       `json:"versions"`
	Diff     *modelreg.Diff `json:"diff"`
}

// Compare builds the compare page of versions a and b of repo.
func (s *Server) Compare(ctx context.Context, repo, a, b string) (*ComparePage, error) {
	da, na, err := s.resolve(ctx, repo, a)
	if err != nil {
		return nil, err
	}
	db, nb, err := s.resolve(ctx, repo, b)
	if err != nil {
		return nil, err
	}
	v, err := s.cached(ctx, "diff "+repo+"@"+da+" "+db, func(ctx context.Context) (any, error) {
		return s.cl.Diff(ctx, repo+"@"+da, repo+"@"+db, modelreg.DiffOptions{Keys: s.opts.Keys})
	})
	if err != nil {
		return nil, err
	}
	vl, err := s.versions(ctx, repo)
	if err != nil {
		return nil, err
	}
	cp := &ComparePage{Repository: repo, A: cmp.Or(na, da), B: cmp.Or(nb, db), Diff: v.(*modelreg.Diff), Versions: []string{}}
	for i := len(vl.Versions) - 1; i >= 0; i-- {
		cp.Versions = append(cp.Versions, vl.Versions[i].Version)
	}
	return cp, nil
}

func (s *Server) compareFromRequest(r *http.Request) (any, error) {
	repo, err := s.repoParam(r)
	if err != nil {
		return nil, err
	}
	a, b := r.URL.Query().Get("a"), r.URL.Query().Get("b")
	if a == "" || b == "" {
		return nil, fmt.Errorf("%w: give the two versions to compare as a=TAG and b=TAG", errdef.ErrInvalidInput)
	}
	return s.Compare(r.Context(), repo, a, b)
}

// detail reads one digest: manifest, config, files, referrers and
// evaluations. Referrers can be added to a digest at any time, so the
// entry is read again after Refresh like the tag lists (the manifest and
// config are then answered by the Client's read cache).
func (s *Server) detail(ctx context.Context, repo, dg string) (*VersionDetail, error) {
	t, err := s.tags(ctx, repo)
	if err != nil {
		return nil, err
	}
	v, err := s.cached(ctx, "detail "+repo+"@"+dg, func(ctx context.Context) (any, error) {
		ref := repo + "@" + dg
		// The manifest and config come from the Client's read cache
		// after the first view; the referrers are read again.
		io := modelreg.InspectOptions{Keys: s.opts.Keys, Tags: t.snap}
		in, err := s.cl.InspectWith(ctx, ref, io)
		if err != nil {
			return nil, err
		}
		evs, err := s.cl.Evaluations(ctx, ref, io)
		if err != nil {
			return nil, err
		}
		d := &VersionDetail{Repository: repo, Digest: dg, Inspection: in, Files: []File{}, Lineage: map[string]string{}, Metrics: map[string]float64{}, Evaluations: evs}
		for _, f := range in.Files {
			role, _ := mediatypes.RoleOfMediaType(f.MediaType)
			d.Files = append(d.Files, File{FileInfo: f, Role: string(role)})
			d.Size += f.Size
		}
		for _, k := range lineageKeys {
			if v := in.Annotations[k]; v != "" {
				d.Lineage[k] = v
			}
		}
		d.Created = created(in)
		if cfg, ok := in.Config["config"].(map[string]any); ok {
			d.Format, _ = cfg["format"].(string)
			d.Params, _ = cfg["paramSize"].(string)
			d.DType, _ = cfg["precision"].(string)
		}
		for _, e := range evs { // later evaluations of a metric win
			for k, m := range e.Metrics {
				d.Metrics[k] = m
			}
		}
		return d, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*VersionDetail), nil
}

// HistoryPage is the alias history page (GET /api/history?repo=HOST/REPO).
type HistoryPage struct {
	*modelreg.History
}

// tagLists is one read of a repository's tags: versions and aliases.
type tagLists struct {
	snap     *modelreg.TagSnapshot
	versions *modelreg.VersionList
	aliases  *modelreg.AliasList
	// fp identifies snap's tag→digest map: equal fingerprints, no tag
	// moved, appeared or went.
	fp string
	// reads counts the refreshes since every version tag was resolved.
	reads int
}

// tags is the repository's tag snapshot, read again after Refresh. A
// refresh resolves the aliases and new version tags, and every version
// tag once in resolveAllEvery refreshes.
//
// Within one page load (a context from pinned) the first snapshot read is
// used throughout, so a refresh in the middle of a page cannot mix two.
func (s *Server) tags(ctx context.Context, repo string) (tagLists, error) {
	p, _ := ctx.Value(pinKey{}).(*pins)
	if p != nil {
		p.mu.Lock()
		t, ok := p.m[repo]
		p.mu.Unlock()
		if ok {
			return t, nil
		}
	}
	t, err := s.readTags(ctx, repo)
	if err == nil && p != nil {
		p.mu.Lock()
		p.m[repo] = t
		p.mu.Unlock()
	}
	return t, err
}

// pinKey keys the pins of a page load in its context.
type pinKey struct{}

// pins are the tag snapshots one page load has used, by repository.
type pins struct {
	mu sync.Mutex
	m  map[string]tagLists
}

// pinned returns r with an empty set of pins in its context.
func pinned(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), pinKey{}, &pins{m: map[string]tagLists{}}))
}

func (s *Server) readTags(ctx context.Context, repo string) (tagLists, error) {
	key := "tags " + repo
	v, err := s.cached(ctx, key, func(ctx context.Context) (any, error) {
		var opts modelreg.SnapshotOptions
		reads := 0
		if old, ok := s.cache.Peek(key); ok {
			if prev := old.val.(tagLists); prev.reads+1 < resolveAllEvery {
				reads = prev.reads + 1
				opts.KnownVersions = map[string]string{}
				for _, vi := range prev.versions.Versions {
					opts.KnownVersions[vi.Version] = vi.Digest
				}
			}
		}
		snap, err := s.cl.Snapshot(ctx, repo, opts)
		if err != nil {
			return nil, err
		}
		vl, al := snap.Lists()
		return tagLists{snap: snap, versions: vl, aliases: al, fp: fingerprint(snap.Digests), reads: reads}, nil
	})
	if err != nil {
		return tagLists{}, err
	}
	return v.(tagLists), nil
}

// fingerprint is a digest of a tag→digest map, independent of order.
func fingerprint(m map[string]string) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	h := sha256.New()
	for _, k := range ks {
		fmt.Fprintf(h, "%s=%s\n", k, m[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) versions(ctx context.Context, repo string) (*modelreg.VersionList, error) {
	t, err := s.tags(ctx, repo)
	return t.versions, err
}

func (s *Server) aliases(ctx context.Context, repo string) (*modelreg.AliasList, error) {
	t, err := s.tags(ctx, repo)
	return t.aliases, err
}

// historyEntry is a History read over the tag snapshot with fingerprint fp.
type historyEntry struct {
	fp string
	h  *modelreg.History
}

// history is the alias history of repo. It reads every version's
// promotion records (one referrers request each), so it is read again
// only when the tag snapshot changed (a tag moved, appeared or went: a
// promotion moves its alias) or historyMaxAge refreshes have passed.
func (s *Server) history(ctx context.Context, repo string) (*modelreg.History, error) {
	t, err := s.tags(ctx, repo)
	if err != nil {
		return nil, err
	}
	key := "history " + repo
	fresh := func(c cached) bool {
		return c.val.(historyEntry).fp == t.fp && time.Since(c.at) < historyMaxAge*s.opts.Refresh
	}
	v, err := s.cachedIf(ctx, key, key+" "+t.fp, fresh, func(ctx context.Context) (any, error) {
		h, err := s.cl.History(ctx, repo, "", modelreg.HistoryOptions{Keys: s.opts.Keys, Policy: s.opts.Policy, Tags: t.snap})
		if err != nil {
			return nil, err
		}
		return historyEntry{fp: t.fp, h: h}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(historyEntry).h, nil
}

// cached returns the value under key if younger than Refresh, else reads
// it. Errors are not cached: the next view tries again.
func (s *Server) cached(ctx context.Context, key string, read func(context.Context) (any, error)) (any, error) {
	return s.cachedIf(ctx, key, key, func(c cached) bool { return time.Since(c.at) < s.opts.Refresh }, read)
}

// cachedIf returns the value under key if fresh says it still is, else
// reads it, once for all concurrent callers of the same flight.
func (s *Server) cachedIf(ctx context.Context, key, flight string, fresh func(cached) bool, read func(context.Context) (any, error)) (any, error) {
	if c, ok := s.cache.Get(key); ok && fresh(c) {
		return c.val, nil
	}
	v, err, _ := s.reads.Do(flight, func() (any, error) {
		v, err := read(ctx)
		if err != nil {
			return nil, err
		}
		s.cache.Add(key, cached{at: time.Now(), val: v})
		return v, nil
	})
	return v, err
}

// Request parsing.

func (s *Server) repoParam(r *http.Request) (string, error) {
	repo := r.URL.Query().Get("repo")
	if !s.allowed(r.Context(), repo) {
		return "", fmt.Errorf("%w: repository %q is not one this dashboard shows", errdef.ErrNotFound, repo)
	}
	return repo, nil
}

func (s *Server) modelFromRequest(r *http.Request) (any, error) {
	repo, err := s.repoParam(r)
	if err != nil {
		return nil, err
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	mp, err := s.Model(r.Context(), repo, page)
	if err != nil {
		return nil, err
	}
	mp.Chart = buildChart(mp.Versions, mp.Metrics, r.URL.Query().Get("metric"))
	return mp, nil
}

func (s *Server) versionFromRequest(r *http.Request) (any, error) {
	repo, err := s.repoParam(r)
	if err != nil {
		return nil, err
	}
	v := r.URL.Query().Get("v")
	if v == "" {
		return nil, fmt.Errorf("%w: give the version as v=TAG or v=sha256:…", errdef.ErrInvalidInput)
	}
	return s.Version(r.Context(), repo, v)
}

func (s *Server) historyFromRequest(r *http.Request) (any, error) {
	repo, err := s.repoParam(r)
	if err != nil {
		return nil, err
	}
	h, err := s.history(r.Context(), repo)
	if err != nil {
		return nil, err
	}
	return HistoryPage{h}, nil
}

func status(err error) int {
	switch {
	case errors.Is(err, errdef.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdef.ErrInvalidInput):
		return http.StatusBadRequest
	}
	return http.StatusBadGateway // the registry behind us failed
}

func (s *Server) api(build func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := build(pinned(r))
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(status(err))
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
}

// apiNotFound answers what no /api/ route takes, in JSON like every API
// error: 405 (Allow: GET, HEAD) for another method, else 404.
func apiNotFound(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "method " + r.Method + " not allowed: the dashboard is read-only (GET, HEAD)"})
		return
	}
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "no API at " + r.URL.Path + ": see /api/models, /api/model, /api/version, /api/history, /api/compare"})
}

type pageData struct {
	Title string
	Data  any
	Err   string
}

func (s *Server) page(name string, build func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := build(pinned(r))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		pd := pageData{Title: name, Data: v}
		if err != nil {
			w.WriteHeader(status(err))
			pd.Err = err.Error()
			name = "error"
		}
		if err := s.tmpl.ExecuteTemplate(w, name+".html", pd); err != nil {
			fmt.Fprintf(w, "<p>rendering %s: %s</p>", name, template.HTMLEscapeString(err.Error()))
		}
	}
}

// Template helpers.

var funcs = template.FuncMap{
	"short": func(d string) string {
		if len(d) > 19 {
			return d[:19]
		}
		return d
	},
	"bytes": size.Format,
	"metric": func(m map[string]float64, k string) string {
		v, ok := m[k]
		if !ok {
			return "–"
		}
		return strconv.FormatFloat(v, 'g', 4, 64)
	},
	"join": strings.Join,
	"fmetric": func(v *float64) string {
		if v == nil {
			return "–"
		}
		return strconv.FormatFloat(*v, 'g', -1, 64)
	},
	"add": func(a, b int) int { return a + b },
	// add1 offsets an SVG coordinate.
	"add1":    func(a float64, b int) float64 { return a + float64(b) },
	"cardMax": func() int64 { return CardMaxBytes },
}

func versionNumber(v string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
	if err != nil {
		return -1
	}
	return n
}
