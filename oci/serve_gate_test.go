package oci

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

func TestRepoGateLocks(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		want           []gateLock
	}{
		{"GET", "/v2/", nil},
		{"GET", "/v2/team/m/manifests/v1", []gateLock{{"team/m", true}}},
		{"PUT", "/v2/team/m/manifests/sha256:ab", []gateLock{{"team/m", true}}},
		{"GET", "/v2/team/m/tags/list", []gateLock{{"team/m", true}}},
		{"GET", "/v2/team/m/referrers/sha256:ab", []gateLock{{"team/m", true}}},
		{"POST", "/v2/team/m/blobs/uploads/", []gateLock{{"team/m", true}}},
		{"POST", "/v2/team/m/blobs/uploads/?mount=sha256:ab&from=team/n", []gateLock{{"team/m", true}, {"team/n", false}}},
		{"GET", "/v2/team/m/blobs/sha256:ab", []gateLock{{"team/m", false}}},
		{"HEAD", "/v2/m/blobs/sha256:ab", []gateLock{{"m", false}}},
		{"PATCH", "/v2/team/m/blobs/uploads/abc", nil},
		{"PUT", "/v2/team/m/blobs/uploads/abc?digest=sha256:ab", nil},
	} {
		got := locksFor(httptest.NewRequest(tc.method, tc.target, nil))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %s: locks %v, want %v", tc.method, tc.target, got, tc.want)
		}
	}
}

// TestEmbeddedRegistryConcurrentFirstWrites pushes to new repositories
// from many goroutines at once (first uploads, manifests, tags, mounts in
// both directions between two repositories) while others read. Under
// `go test -race` it catches the race in olareg v0.2.2's directory store
// that repoGate orders (see serve_gate.go); without -race it checks that
// the gate neither deadlocks nor loses a write.
func TestEmbeddedRegistryConcurrentFirstWrites(t *testing.T) {
	reg, err := NewEmbeddedRegistry("127.0.0.1:0", filepath.Join(t.TempDir(), "registry"))
	if err != nil {
		t.Fatal(err)
	}
	go reg.Serve(context.Background())
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func(name string) *remote.Repository {
		r, err := remote.NewRepository(reg.Addr + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		r.PlainHTTP = true
		return r
	}
	const writers = 8
	blobs := make([][]byte, writers)
	for i := range blobs {
		blobs[i] = bytes.Repeat([]byte{byte(i)}, 4096+i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*writers)
	for _, name := range []string{"gate/a", "gate/b"} {
		for i := range writers {
			wg.Go(func() {
				r := open(name)
				desc := content.NewDescriptorFromBytes("application/octet-stream", blobs[i])
				if err := r.Push(ctx, desc, bytes.NewReader(blobs[i])); err != nil {
					errs <- fmt.Errorf("push blob %d to %s: %w", i, name, err)
					return
				}
				m, err := oras.PackManifest(ctx, r, oras.PackManifestVersion1_1, "application/vnd.test", oras.PackManifestOptions{Layers: []ocispec.Descriptor{desc}})
				if err != nil {
					errs <- fmt.Errorf("manifest %d in %s: %w", i, name, err)
					return
				}
				if err := r.Tag(ctx, m, fmt.Sprintf("t%d", i)); err != nil {
					errs <- fmt.Errorf("tag %d in %s: %w", i, name, err)
				}
			})
			wg.Go(func() {
				// Readers of the same repositories, also before they exist.
				r := open(name)
				d := digest.FromBytes(blobs[i])
				_, _ = r.Blobs().Resolve(ctx, d.String())
				_, _ = r.Resolve(ctx, fmt.Sprintf("t%d", i))
				_ = r.Tags(ctx, "", func([]string) error { return nil })
			})
		}
	}
	wg.Wait()
	// Mounts in opposite directions at once: the gate takes its locks in
	// name order, so this must not deadlock.
	for i := range writers {
		from, to := "gate/a", "gate/b"
		if i%2 == 1 {
			from, to = to, from
		}
		wg.Go(func() {
			b := []byte(fmt.Sprintf("mounted %d", i))
			desc := content.NewDescriptorFromBytes("application/octet-stream", b)
			if err := open(from).Push(ctx, desc, bytes.NewReader(b)); err != nil {
				errs <- err
				return
			}
			if err := open(to).Mount(ctx, desc, from, nil); err != nil {
				errs <- fmt.Errorf("mount %d from %s to %s: %w", i, from, to, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, name := range []string{"gate/a", "gate/b"} {
		for i := range writers {
			if _, err := open(name).Resolve(ctx, fmt.Sprintf("t%d", i)); err != nil {
				t.Errorf("%s:t%d: %v", name, i, err)
			}
		}
	}
}
