package modelreg

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// Tags is Versions and Aliases of repoStr from one listing of its tags,
// each tag resolved once: for readers that show both (the dashboard), at
// half the requests of calling the two. Errors are those of Versions.
func (c *Client) Tags(ctx context.Context, repoStr string) (*VersionList, *AliasList, error) {
	ref, repo, err := c.openRepo(repoStr)
	if err != nil {
		return nil, nil, err
	}
	vs, as, m, err := tagState(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	if len(vs) == 0 && len(as) == 0 {
		return nil, nil, repositoryNotFound(ref)
	}
	vl := &VersionList{Repository: ref.Name(), Versions: []VersionInfo{}}
	al := &AliasList{Repository: ref.Name(), Aliases: []AliasInfo{}}
	byDigest := map[digest.Digest]string{}
	for _, v := range vs {
		d, ok := m[v]
		if !ok {
			continue
		}
		byDigest[d] = v
		vi := VersionInfo{Version: v, Digest: d.String(), Aliases: []string{}}
		for _, a := range as {
			if m[a] == d {
				vi.Aliases = append(vi.Aliases, a)
			}
		}
		vl.Versions = append(vl.Versions, vi)
	}
	for _, a := range as {
		if d, ok := m[a]; ok {
			al.Aliases = append(al.Aliases, AliasInfo{Alias: a, Digest: d.String(), Version: byDigest[d]})
		}
	}
	return vl, al, nil
}
