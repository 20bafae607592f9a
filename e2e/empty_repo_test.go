package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// TestListingFollowsRegistry: versions and alias ls of a repository with
// no tag answer what the registry answers, as `oras repo tags` does: 404
// NAME_UNKNOWN (distribution and docker-registry, for a repository never
// pushed and for one holding only a blob) is not_found, exit 1; a tag list,
// even an empty one (olareg, which answers an empty list for both), lists
// nothing and exits 0. Each case is checked against the oras binary's
// exit code on the same reference, so the start-up comparison of the
// benchmark runs the same path in both tools.
func TestListingFollowsRegistry(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		name := repoName(t)
		repo, err := remote.NewRepository(r.host + "/" + name + "-blob")
		if err != nil {
			t.Fatal(err)
		}
		repo.PlainHTTP = true
		body := []byte("{}")
		desc := ocispec.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: digest.FromBytes(body), Size: int64(len(body))}
		if err := repo.Blobs().Push(context.Background(), desc, bytes.NewReader(body)); err != nil {
			t.Fatalf("pushing a blob to %s: %v", name, err)
		}
		for _, ref := range []string{r.ref(name+"-blob", ""), r.ref(name+"-never", "")} {
			o := c.with(t).tool("oras", "repo", "tags", "--plain-http", ref)
			if o.code != 0 && o.code != 1 {
				t.Fatalf("oras repo tags: unexpected exit code:\n%s", o)
			}
			for _, command := range []string{"versions", "alias ls"} {
				if o.code == 1 {
					e, _ := failsJSON(t, c, exitError, "not_found", command, ref)
					if !strings.Contains(e.Message, strings.TrimPrefix(ref, r.host+"/")) {
						t.Errorf("%s %s: message %q does not name the repository", command, ref, e.Message)
					}
					continue
				}
				var got map[string]json.RawMessage
				c.okJSON(&got, command, ref)
				key := map[string]string{"versions": "versions", "alias ls": "aliases"}[command]
				if string(got[key]) != "[]" {
					t.Errorf("%s %s (oras lists nothing, exit 0): %s is %s, want []", command, ref, key, got[key])
				}
			}
		}
	})
}
