package ui

import (
	"context"
	"net/http"
	"slices"

	"github.com/modelreg/modelreg"
)

// ModelsPage is the models page (GET /?q=QUERY): every model, or with a
// query those Client.Search matches, with what matched. GET /api/models
// answers its Models alone (the list, as before search existed).
type ModelsPage struct {
	// Query is the search box's text; "" lists every model.
	Query  string         `json:"query"`
	Models []ModelSummary `json:"models"`
	// Matches are the fields that matched, by repository (a query only).
	Matches map[string][]modelreg.SearchMatch `json:"matches"`
}

// SearchModels is the models page for query: Models filtered by
// Client.Search over the dashboard's repositories (names and the
// annotations of each latest version).
func (s *Server) SearchModels(ctx context.Context, query string) (*ModelsPage, error) {
	all, err := s.Models(ctx)
	if err != nil {
		return nil, err
	}
	p := &ModelsPage{Query: query, Models: all, Matches: map[string][]modelreg.SearchMatch{}}
	if query == "" {
		return p, nil
	}
	repos, err := s.repositories(ctx)
	if err != nil {
		return nil, err
	}
	res, err := s.cl.Search(ctx, query, modelreg.SearchOptions{Repositories: repos})
	if err != nil {
		return nil, err
	}
	for _, h := range res.Hits {
		p.Matches[h.Repository] = h.Matches
	}
	p.Models = slices.DeleteFunc(all, func(m ModelSummary) bool { _, ok := p.Matches[m.Repository]; return !ok })
	return p, nil
}

func (s *Server) modelsFromRequest(r *http.Request) (any, error) {
	return s.SearchModels(r.Context(), r.URL.Query().Get("q"))
}

func (s *Server) modelListFromRequest(r *http.Request) (any, error) {
	p, err := s.SearchModels(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		return nil, err
	}
	return p.Models, nil
}

// repositories are the dashboard's repositories: Options.Repositories,
// then those Options.ListRepositories lists (cached for Refresh).
func (s *Server) repositories(ctx context.Context) ([]string, error) {
	if s.opts.ListRepositories == nil {
		return s.opts.Repositories, nil
	}
	v, err := s.cached(ctx, "repositories", func(ctx context.Context) (any, error) {
		listed, err := s.opts.ListRepositories(ctx)
		if err != nil {
			return nil, err
		}
		out := slices.Clone(s.opts.Repositories)
		for _, r := range listed {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// allowed reports whether the dashboard shows repo. A listed repository
// that is not yet in the cached list (pushed a moment ago) is found on
// the next refresh.
func (s *Server) allowed(ctx context.Context, repo string) bool {
	if s.repos[repo] {
		return true
	}
	if s.opts.ListRepositories == nil {
		return false
	}
	repos, err := s.repositories(ctx)
	return err == nil && slices.Contains(repos, repo)
}
