package modelreg

import (
	"context"
)

// Tags is Versions and Aliases of repoStr from one listing of its tags,
// each tag resolved once: for readers that show both (the dashboard), at
// half the requests of calling the two. Errors are those of Versions.
func (c *Client) Tags(ctx context.Context, repoStr string) (*VersionList, *AliasList, error) {
	s, err := c.Snapshot(ctx, repoStr, SnapshotOptions{})
	if err != nil {
		return nil, nil, err
	}
	vl, al := s.Lists()
	return vl, al, nil
}
