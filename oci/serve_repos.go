package oci

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// Repositories lists the repositories the embedded registry holds, as
// HOST/REPO with its address as HOST, sorted. olareg has no catalog API;
// its directory store keeps one OCI image layout per repository, so a
// repository is a folder under the root holding an oci-layout file
// (written with the first blob or manifest). The walk does not descend
// into a layout's blobs.
func (e *EmbeddedRegistry) Repositories(ctx context.Context) ([]string, error) {
	var out []string
	err := filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == e.root {
				return err
			}
			return nil // removed while walking
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if d.Name() == "blobs" && p != e.root {
			return fs.SkipDir
		}
		if _, err := os.Stat(filepath.Join(p, "oci-layout")); err == nil && p != e.root {
			rel, err := filepath.Rel(e.root, p)
			if err != nil {
				return err
			}
			out = append(out, e.Addr+"/"+filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}
