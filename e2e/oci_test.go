package e2e

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"
)

// JSON documents of the CLI contract (`--output json`). Fields the tests
// do not read are left out; unknown fields are allowed.
type (
	fileJSON struct {
		Path      string `json:"path"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
		MediaType string `json:"mediaType"`
	}
	pushJSON struct {
		Reference  string     `json:"reference"`
		Repository string     `json:"repository"`
		Digest     string     `json:"digest"`
		Version    string     `json:"version"`
		Tags       []string   `json:"tags"`
		Created    bool       `json:"created"`
		Files      []fileJSON `json:"files"`
	}
	pullJSON struct {
		Reference       string     `json:"reference"`
		Digest          string     `json:"digest"`
		Directory       string     `json:"directory"`
		Files           []fileJSON `json:"files"`
		BytesDownloaded int64      `json:"bytesDownloaded"`
	}
	versionsJSON struct {
		Repository string `json:"repository"`
		Versions   []struct {
			Version string   `json:"version"`
			Digest  string   `json:"digest"`
			Aliases []string `json:"aliases"`
		} `json:"versions"`
	}
	inspectJSON struct {
		Reference    string            `json:"reference"`
		Digest       string            `json:"digest"`
		MediaType    string            `json:"mediaType"`
		ArtifactType string            `json:"artifactType"`
		Annotations  map[string]string `json:"annotations"`
		Config       map[string]any    `json:"config"`
		Files        []fileJSON        `json:"files"`
	}
	aliasesJSON struct {
		Repository string `json:"repository"`
		Aliases    []struct {
			Alias   string `json:"alias"`
			Digest  string `json:"digest"`
			Version string `json:"version"`
		} `json:"aliases"`
	}
)

// aliasMap returns alias → digest.
func (a aliasesJSON) aliasMap() map[string]string {
	m := map[string]string{}
	for _, e := range a.Aliases {
		m[e.Alias] = e.Digest
	}
	return m
}

// versionMap returns version → digest.
func (v versionsJSON) versionMap() map[string]string {
	m := map[string]string{}
	for _, e := range v.Versions {
		m[e.Version] = e.Digest
	}
	return m
}

// opTimeout bounds one oras-go call made by a test.
const opTimeout = time.Minute

// repoClient is an oras-go client for HOST/REPO over plain HTTP.
func repoClient(t testing.TB, r *registry, repo string) *remote.Repository {
	t.Helper()
	rc, err := remote.NewRepository(r.host + "/" + repo)
	if err != nil {
		t.Fatalf("repository %s/%s: %v", r.host, repo, err)
	}
	rc.PlainHTTP = true
	return rc
}

func opCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// pushBlob uploads data and returns its descriptor.
func pushBlob(t testing.TB, rc *remote.Repository, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	desc, err := oras.PushBytes(opCtx(t), rc, mediaType, data)
	if err != nil {
		t.Fatalf("push blob to %s: %v", rc.Reference, err)
	}
	return desc
}

// pushManifest uploads a manifest and tags it.
func pushManifest(t testing.TB, rc *remote.Repository, m ocispec.Manifest, tag string) ocispec.Descriptor {
	t.Helper()
	m.Versioned.SchemaVersion = 2
	m.MediaType = ocispec.MediaTypeImageManifest
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := oras.TagBytes(opCtx(t), rc, ocispec.MediaTypeImageManifest, data, tag)
	if err != nil {
		t.Fatalf("push manifest %s:%s: %v", rc.Reference, tag, err)
	}
	return desc
}

// resolve returns the digest a tag points to.
func resolve(t testing.TB, rc *remote.Repository, tag string) string {
	t.Helper()
	desc, err := rc.Resolve(opCtx(t), tag)
	if err != nil {
		t.Fatalf("resolve %s:%s: %v", rc.Reference.Registry+"/"+rc.Reference.Repository, tag, err)
	}
	return desc.Digest.String()
}

// fetchManifest returns the manifest a reference points to.
func fetchManifest(t testing.TB, rc *remote.Repository, reference string) (ocispec.Descriptor, ocispec.Manifest) {
	t.Helper()
	desc, data, err := oras.FetchBytes(opCtx(t), rc, reference, oras.DefaultFetchBytesOptions)
	if err != nil {
		t.Fatalf("fetch manifest %s/%s %s: %v", rc.Reference.Registry, rc.Reference.Repository, reference, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest %s: %v", reference, err)
	}
	return desc, m
}

// cosignSigTag is the tag cosign stores the signatures of digest d under.
func cosignSigTag(t testing.TB, d string) string {
	t.Helper()
	dg, err := digest.Parse(d)
	if err != nil {
		t.Fatalf("digest %q: %v", d, err)
	}
	return dg.Algorithm().String() + "-" + dg.Encoded() + ".sig"
}

// tamperBlob flips one byte in the stored copy of blob d, keeping its size,
// so only a digest check can notice.
func tamperBlob(t testing.TB, r *registry, repo, d string) {
	t.Helper()
	dg, err := digest.Parse(d)
	if err != nil {
		t.Fatalf("digest %q: %v", d, err)
	}
	path := r.blobPath(repo, dg)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("stored blob %s of %s not found at %s: %v", d, r.name, path, err)
	}
	if len(data) == 0 {
		t.Fatalf("stored blob %s is empty", path)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("tamper %s: %v", path, err)
	}
	if got := "sha256:" + sha256Hex(data); got == d {
		t.Fatalf("tampering did not change the content of %s", path)
	}
}
