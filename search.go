package modelreg

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
	"github.com/modelreg/modelreg/oci"
)

// DefaultSearchConcurrency is how many repositories Search reads at once
// when SearchOptions.Concurrency is not set: each costs a tag listing, a
// manifest and a config read, and a catalog can list hundreds.
const DefaultSearchConcurrency = 4

// Where a Search took its repositories from (SearchResult.Source).
const (
	SearchSourceCatalog      = "catalog"
	SearchSourceRepositories = "repositories"
)

// SearchOptions say where Search looks.
type SearchOptions struct {
	// Registry is the HOST[:PORT] whose catalog (/v2/_catalog, all pages,
	// a distribution extension outside the OCI spec) lists the
	// repositories to search. If empty, only Repositories are searched.
	Registry string
	// Repositories are HOST/REPO names to search when Registry is empty,
	// or when it has no catalog or refuses it (olareg, GHCR, Docker Hub);
	// only those on Registry's host are used then. With a catalog they
	// are not needed.
	Repositories []string
	// Concurrency is how many repositories are read at once; if ≤ 0,
	// DefaultSearchConcurrency is used.
	Concurrency int
}

// SearchMatch is one field of a model that matched a query term.
type SearchMatch struct {
	// Field is "name" (the repository HOST/REPO) or the manifest
	// annotation key, e.g. org.opencontainers.image.description.
	Field string `json:"field"`
	Value string `json:"value"`
}

// SearchHit is one model that matched: its latest version and what matched.
type SearchHit struct {
	Repository string `json:"repository"`
	// Version is the newest version tag (highest vN) and Digest its
	// manifest digest: the version whose annotations were searched.
	Version string `json:"version"`
	Digest  string `json:"digest"`
	// Description is the version's org.opencontainers.image.description.
	Description string        `json:"description,omitempty"`
	Matches     []SearchMatch `json:"matches"`
}

// SearchFailure is a repository Search could not read.
type SearchFailure struct {
	Repository string `json:"repository"`
	Error      string `json:"error"`
}

// SearchResult is the answer of Search.
type SearchResult struct {
	Query string `json:"query"`
	// Source is SearchSourceCatalog or SearchSourceRepositories.
	Source string `json:"source"`
	// Searched counts the models read (repositories with a vN tag);
	// repositories without one (images, referrer-only repositories) are
	// not models and not counted.
	Searched int         `json:"searched"`
	Hits     []SearchHit `json:"hits"`
	// Failures are repositories that could not be read; the search goes
	// on without them.
	Failures []SearchFailure `json:"failures"`
}

// Search finds the models whose name or whose latest version's manifest
// annotations (description, source, licences, lineage, any
// --annotation) contain every whitespace-separated term of query, case
// insensitively; an empty query matches every model. Hits are sorted by
// repository.
//
// The repositories come from opts.Registry's catalog when it has one,
// else from opts.Repositories. A registry without a catalog and no
// repositories named is an errdef.ErrUnsupported error saying to name
// them; neither given is errdef.ErrInvalidInput.
func (c *Client) Search(ctx context.Context, query string, opts SearchOptions) (*SearchResult, error) {
	res := &SearchResult{Query: query, Hits: []SearchHit{}, Failures: []SearchFailure{}}
	repos, source, err := c.searchRepositories(ctx, opts)
	if err != nil {
		return nil, err
	}
	res.Source = source
	terms := strings.Fields(strings.ToLower(query))
	hits := make([]*SearchHit, len(repos))
	fails := make([]error, len(repos))
	models := make([]bool, len(repos))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cmpOr(opts.Concurrency, DefaultSearchConcurrency))
	for i, r := range repos {
		g.Go(func() error {
			hits[i], models[i], fails[i] = c.searchOne(gctx, r, terms)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, r := range repos {
		switch {
		case fails[i] != nil:
			res.Failures = append(res.Failures, SearchFailure{Repository: r, Error: fails[i].Error()})
		case models[i]:
			res.Searched++
			if hits[i] != nil {
				res.Hits = append(res.Hits, *hits[i])
			}
		}
	}
	return res, nil
}

func cmpOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// searchRepositories is the list Search reads and where it came from.
func (c *Client) searchRepositories(ctx context.Context, opts SearchOptions) ([]string, string, error) {
	for _, r := range opts.Repositories {
		if _, err := oci.ParseRepository(r); err != nil {
			return nil, "", err
		}
	}
	if opts.Registry == "" {
		if len(opts.Repositories) == 0 {
			return nil, "", fmt.Errorf("%w: search needs a registry (--registry HOST) or repositories to search (--repo HOST/REPO, or MODELREG_SEARCH_REPOS)", errdef.ErrInvalidInput)
		}
		return dedupe(opts.Repositories), SearchSourceRepositories, nil
	}
	repos, err := c.catalog(ctx, opts.Registry)
	if err == nil {
		return repos, SearchSourceCatalog, nil
	}
	if !errors.Is(err, errdef.ErrUnsupported) {
		return nil, "", err
	}
	var own []string
	for _, r := range opts.Repositories {
		if host, _, _ := strings.Cut(r, "/"); host == opts.Registry {
			own = append(own, r)
		}
	}
	if len(own) == 0 {
		return nil, "", fmt.Errorf("%w: name the repositories to search instead: --repo %s/REPO (repeatable) or MODELREG_SEARCH_REPOS=%s/REPO,…", err, opts.Registry, opts.Registry)
	}
	return dedupe(own), SearchSourceRepositories, nil
}

// catalog lists every repository of host (HOST/REPO, sorted) from
// /v2/_catalog. A registry without one (404, 405) or refusing it (401,
// 403: Docker Hub, GHCR and most clouds keep it to administrators) is an
// errdef.ErrUnsupported error.
func (c *Client) catalog(ctx context.Context, host string) ([]string, error) {
	if strings.ContainsAny(host, "/@ ") || host == "" {
		return nil, fmt.Errorf("%w: registry %q: want HOST[:PORT], e.g. registry.example.com", errdef.ErrInvalidInput, host)
	}
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return nil, fmt.Errorf("%w: registry %q: %v", errdef.ErrInvalidInput, host, err)
	}
	reg.Client = c.oci.HTTP()
	reg.PlainHTTP = c.oci.PlainHTTP(host)
	var out []string
	err = reg.Repositories(ctx, "", func(page []string) error {
		for _, r := range page {
			out = append(out, host+"/"+r)
		}
		return nil
	})
	if err != nil {
		var er *errcode.ErrorResponse
		if errors.As(err, &er) {
			switch er.StatusCode {
			case http.StatusNotFound, http.StatusMethodNotAllowed:
				return nil, fmt.Errorf("%w: %s has no catalog API (/v2/_catalog)", errdef.ErrUnsupported, host)
			case http.StatusUnauthorized, http.StatusForbidden:
				return nil, fmt.Errorf("%w: %s refuses its catalog (/v2/_catalog answered %d)", errdef.ErrUnsupported, host, er.StatusCode)
			}
		}
		return nil, fmt.Errorf("listing the repositories of %s: %w", host, err)
	}
	sort.Strings(out)
	return out, nil
}

// searchOne reads repo's newest version and matches terms against it.
// isModel is false, with no error, for a repository without a vN tag.
func (c *Client) searchOne(ctx context.Context, repoStr string, terms []string) (hit *SearchHit, isModel bool, err error) {
	ref, repo, err := c.openRepo(repoStr)
	if err != nil {
		return nil, false, err
	}
	tags, err := oci.ListTags(ctx, repo) // none for a repository deleted since the catalog listed it
	if err != nil {
		return nil, false, err
	}
	vs := oci.VersionTags(tags) // sorted by N
	if len(vs) == 0 {
		return nil, false, nil
	}
	latest := vs[len(vs)-1]
	in, err := c.Inspect(ctx, ref.Name()+":"+latest)
	if err != nil {
		return nil, true, err
	}
	matches := MatchModel(terms, ref.Name(), in.Annotations)
	if matches == nil {
		return nil, true, nil
	}
	return &SearchHit{Repository: ref.Name(), Version: latest, Digest: in.Digest,
		Description: in.Annotations[mediatypes.AnnotationDescription], Matches: matches}, true, nil
}

// MatchModel matches lower-case terms against a model's name (HOST/REPO)
// and annotation values: it returns the fields that contain a term (name
// first, then annotations by key), or nil unless every term is found in
// one of them. No terms match every model with an empty, non-nil list.
func MatchModel(terms []string, name string, annotations map[string]string) []SearchMatch {
	out := []SearchMatch{}
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	found := make([]bool, len(terms))
	try := func(field, value string) {
		lv, hit := strings.ToLower(value), false
		for i, t := range terms {
			if strings.Contains(lv, t) {
				found[i], hit = true, true
			}
		}
		if hit {
			out = append(out, SearchMatch{Field: field, Value: value})
		}
	}
	try("name", name)
	for _, k := range keys {
		try(k, annotations[k])
	}
	if slices.Contains(found, false) {
		return nil
	}
	return out
}
