package oci

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/modelreg/modelreg/internal/faultproxy"
)

// A large file goes up in PATCH chunks, hashed on the way: the blob the
// registry holds has the file's digest, the cache learns it, and nothing
// but POST, PATCH and PUT touches the blob.
func TestUploadChunkedHashesWhileSending(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	files := []File{randomFile(t, dir, "model.safetensors", 20<<20+123)}
	cache := DigestCache{Dir: t.TempDir()}
	rec := &recorder{}
	stats, err := UploadFiles(bg(t), tr.repo(t, "m/chunked"), files, TransferOptions{Cache: cache, ChunkSize: 4 << 20, Progress: rec})
	if err != nil {
		t.Fatal(err)
	}
	want := fileDigest(t, files[0].Abs)
	if files[0].Digest != want {
		t.Fatalf("digest %s, want %s", files[0].Digest, want)
	}
	if got := digest.FromBytes(tr.blobBytes(t, "m/chunked", want)); got != want {
		t.Fatalf("registry holds %s under %s", got, want)
	}
	if stats.Uploaded != 1 || stats.BytesUploaded != files[0].Size {
		t.Errorf("stats %+v", stats)
	}
	if n := tr.countRequests("PATCH", "/blobs/uploads/"); n != 6 {
		t.Errorf("%d PATCH requests, want 6 chunks of 4 MiB", n)
	}
	if n := tr.countRequests("HEAD", "/blobs/"); n != 0 {
		t.Errorf("%d HEAD requests before the first upload of an unhashed file, want 0", n)
	}
	if got := cache.Lookup(files[0].Abs); got != want {
		t.Errorf("cache holds %q after the upload, want %s", got, want)
	}
	if got := cache.Repositories(tr.proxy.Addr(), want); len(got) != 1 || got[0] != "m/chunked" {
		t.Errorf("repository hints %v", got)
	}
	fr := rec.files["model.safetensors"]
	if fr == nil || fr.bytes != files[0].Size || fr.done != 1 || fr.skipped {
		t.Errorf("progress %+v", fr)
	}
	if rec.total != files[0].Size || len(rec.finish) != 1 || rec.finish[0] != nil {
		t.Errorf("progress total %d finish %v", rec.total, rec.finish)
	}
}

// An upload whose connection breaks half way continues from the byte the
// registry confirms, and the blob's digest is right.
func TestUploadResumesAfterCut(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	size := int64(24 << 20)
	files := []File{randomFile(t, dir, "w.safetensors", size)}
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.CutRequest, Method: "PATCH", AfterBytes: size / 2, Times: 1})
	rec := &recorder{}
	_, err := UploadFiles(bg(t), tr.repo(t, "m/resume"), files, TransferOptions{Retry: fastRetry, Progress: rec})
	if err != nil {
		t.Fatal(err)
	}
	if tr.proxy.Pending() != 0 {
		t.Fatal("the cut was never injected")
	}
	want := fileDigest(t, files[0].Abs)
	if files[0].Digest != want {
		t.Fatalf("digest %s, want %s", files[0].Digest, want)
	}
	if got := digest.FromBytes(tr.blobBytes(t, "m/resume", want)); got != want {
		t.Fatalf("registry holds %s under %s", got, want)
	}
	if n := tr.countRequests("GET", "/blobs/uploads/"); n < 1 {
		t.Errorf("no upload status request after the cut")
	}
	// The bytes in flight at the cut are lost (socket buffers), but the
	// upload goes on from where the registry stopped: a PATCH after the
	// cut starts past byte 0, and far less than the whole blob is resent.
	resumed := false
	for _, r := range tr.proxy.Requests() {
		if r.Method == "PATCH" && r.Fault == "" && r.ContentRange != "" && !strings.HasPrefix(r.ContentRange, "0-") {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("no PATCH continued past byte 0 after the cut: %+v", tr.proxy.Requests())
	}
	if in := tr.proxy.Stats().BytesFromClients; float64(in) > 1.4*float64(size) {
		t.Errorf("%d bytes sent for a %d byte blob: the upload started over instead of resuming", in, size)
	}
	if fr := rec.files["w.safetensors"]; fr.bytes != size {
		t.Errorf("progress counted %d bytes, want %d", fr.bytes, size)
	}
}

// 503 and 429 answers are retried, and Retry-After is honoured.
func TestUploadRetries503And429(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	files := []File{randomFile(t, dir, "big.bin", 6<<20), randomFile(t, dir, "small.json", 1000)}
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: 429, RetryAfter: "1", Method: "POST", Times: 1})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: 503, Method: "PATCH", Times: 2})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: 503, Method: "PUT", Times: 1})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: 502, Method: "HEAD", Times: 1})
	start := time.Now()
	_, err := UploadFiles(bg(t), tr.repo(t, "m/retry"), files, TransferOptions{Retry: fastRetry, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("finished in %v: Retry-After: 1 was not honoured", el)
	}
	if p := tr.proxy.Pending(); p != 0 {
		t.Errorf("%d faults never hit", p)
	}
	for _, f := range files {
		if want := fileDigest(t, f.Abs); f.Digest != want || !tr.hasBlob(t, "m/retry", want) {
			t.Errorf("%s: digest %s, want %s in the registry", f.Path, f.Digest, want)
		}
	}
}

// When retries run out the error says what failed and how much moved.
func TestUploadGivesUpWithReport(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	files := []File{randomFile(t, dir, "big.bin", 10<<20)}
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: 503, Method: "PATCH"})
	_, err := UploadFiles(bg(t), tr.repo(t, "m/fail"), files, TransferOptions{Retry: RetryOptions{MinWait: time.Millisecond, MaxAttempts: 3}, ChunkSize: 4 << 20})
	if err == nil {
		t.Fatal("upload through a registry that always answers 503 succeeded")
	}
	var te *TransferError
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not a TransferError", err)
	}
	if te.Op != "upload" || te.Step != "PATCH" || te.Size != 10<<20 || te.Moved <= 0 {
		t.Errorf("TransferError %+v", te)
	}
	for _, want := range []string{"big.bin", "503", "3 tries", "of 10.0 MiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// A registry that refuses PATCH gets the file in one PUT.
func TestUploadRegistryRefusingPatch(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	files := []File{randomFile(t, dir, "a.bin", 9<<20), randomFile(t, dir, "b.bin", 7<<20)}
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: 405, Method: "PATCH"})
	_, err := UploadFiles(bg(t), tr.repo(t, "m/nopatch"), files, TransferOptions{Retry: fastRetry, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		want := fileDigest(t, f.Abs)
		if f.Digest != want {
			t.Fatalf("%s: digest %s, want %s", f.Path, f.Digest, want)
		}
		if got := digest.FromBytes(tr.blobBytes(t, "m/nopatch", want)); got != want {
			t.Fatalf("registry holds %s under %s", got, want)
		}
	}
	if n := tr.countRequests("PATCH", "/blobs/uploads/"); n != 1 {
		t.Errorf("%d PATCH requests, want 1: the refusal is remembered", n)
	}
}

// A wrong digest-cache entry never puts a wrong digest on the registry:
// for a large file the digest comes from the bytes sent, for a small one
// the registry refuses the cached digest and the file is hashed again, and
// an entry naming a blob of another size is caught by the HEAD.
func TestUploadRecoversFromWrongCacheEntry(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	cache := DigestCache{Dir: t.TempDir()}
	big := randomFile(t, dir, "big.safetensors", 9<<20)
	small := randomFile(t, dir, "small.json", 3000)
	other := randomFile(t, dir, "other.bin", 5000)
	otherDigest := fileDigest(t, other.Abs)
	wrong := digest.FromString("not the content")
	cache.Store(big.Abs, wrong)
	cache.Store(small.Abs, digest.FromString("also not the content"))
	// other.bin is in the registry; a third file's entry names it.
	if _, err := UploadFiles(bg(t), tr.repo(t, "m/cache"), []File{other}, TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	third := randomFile(t, dir, "third.txt", 4000)
	cache.Store(third.Abs, otherDigest)

	files := []File{big, small, third}
	if _, err := UploadFiles(bg(t), tr.repo(t, "m/cache"), files, TransferOptions{Cache: cache, Retry: fastRetry}); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		want := fileDigest(t, f.Abs)
		if f.Digest != want {
			t.Errorf("%s: digest %s, want %s", f.Path, f.Digest, want)
		}
		if got := digest.FromBytes(tr.blobBytes(t, "m/cache", want)); got != want {
			t.Errorf("%s: registry holds %s under %s", f.Path, got, want)
		}
		if got := cache.Lookup(f.Abs); got != want {
			t.Errorf("%s: cache still says %s, want %s", f.Path, got, want)
		}
	}
	if tr.hasBlob(t, "m/cache", wrong) {
		t.Error("the registry holds a blob under the wrong cached digest")
	}
}

// An unchanged file is not sent again (one HEAD), and a blob another
// repository of the registry holds is mounted, not sent.
func TestUploadSkipsAndMounts(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	cache := DigestCache{Dir: t.TempDir()}
	files := []File{randomFile(t, dir, "w.safetensors", 8<<20), randomFile(t, dir, "config.json", 100)}
	opts := TransferOptions{Cache: cache}
	if _, err := UploadFiles(bg(t), tr.repo(t, "team/base"), files, opts); err != nil {
		t.Fatal(err)
	}
	tr.proxy.ResetStats()
	stats, err := UploadFiles(bg(t), tr.repo(t, "team/base"), files, opts)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Skipped != 2 || stats.Uploaded != 0 {
		t.Errorf("re-push stats %+v, want 2 skipped", stats)
	}
	if s := tr.proxy.Stats(); s.Requests != 2 || s.BytesFromClients > 4096 {
		t.Errorf("re-push made %d requests sending %d bytes, want 2 HEADs", s.Requests, s.BytesFromClients)
	}

	tr.proxy.ResetStats()
	stats, err = UploadFiles(bg(t), tr.repo(t, "team/finetuned"), files, opts)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Mounted != 2 || stats.Uploaded != 0 {
		t.Errorf("push to a sibling repository: stats %+v, want 2 mounted", stats)
	}
	if in := tr.proxy.Stats().BytesFromClients; in > 16<<10 {
		t.Errorf("push to a sibling repository sent %d bytes", in)
	}
	for _, f := range files {
		if !tr.hasBlob(t, "team/finetuned", f.Digest) {
			t.Errorf("%s not in team/finetuned after the mount", f.Path)
		}
	}

	// MountFrom names a sibling the cache knows nothing about.
	cache2 := DigestCache{Dir: t.TempDir()}
	for _, f := range files {
		cache2.Store(f.Abs, f.Digest)
	}
	stats, err = UploadFiles(bg(t), tr.repo(t, "team/third"), files, TransferOptions{Cache: cache2, MountFrom: []string{"team/base"}})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Mounted != 2 {
		t.Errorf("push with MountFrom: stats %+v, want 2 mounted", stats)
	}
}

// A file that changes during the upload is an error, not a blob that
// mixes two versions under a digest the cache would keep.
func TestUploadFileChangedSinceScan(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	f := randomFile(t, dir, "w.bin", 1<<20)
	if err := os.WriteFile(f.Abs, []byte("shorter"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := UploadFiles(bg(t), tr.repo(t, "m/changed"), []File{f}, TransferOptions{})
	if err == nil || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("upload of a file that changed since the scan: %v", err)
	}
}

// A wrong cache entry that names a blob a sibling repository holds is not
// trusted for a mount: the mounted blob's size is checked, the entry
// forgotten, and the file's real bytes sent.
func TestUploadWrongCacheEntryDoesNotMount(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	cache := DigestCache{Dir: t.TempDir()}
	other := []File{randomFile(t, dir, "other.bin", 6<<20)}
	if _, err := UploadFiles(bg(t), tr.repo(t, "team/a"), other, TransferOptions{Cache: cache}); err != nil {
		t.Fatal(err)
	}
	files := []File{randomFile(t, dir, "w.safetensors", 5<<20)}
	f := &files[0]
	cache.Store(f.Abs, other[0].Digest) // wrong: names other.bin, held by team/a
	tr.proxy.ResetStats()
	stats, err := UploadFiles(bg(t), tr.repo(t, "team/b"), files, TransferOptions{Cache: cache, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	want := fileDigest(t, f.Abs)
	if f.Digest != want || stats.Mounted != 0 || stats.Uploaded != 1 {
		t.Fatalf("digest %s (want %s), stats %+v", f.Digest, want, stats)
	}
	if got := digest.FromBytes(tr.blobBytes(t, "team/b", want)); got != want {
		t.Fatalf("registry holds %s under %s", got, want)
	}
	if got := cache.Lookup(f.Abs); got != want {
		t.Errorf("cache says %s, want %s", got, want)
	}
	if n := tr.countRequests("POST", "/blobs/uploads/"); n < 1 {
		t.Errorf("no mount was tried (%d POSTs): the test does not test the check", n)
	}
}

// A registry that stops reading an upload half way, with the connection
// open, does not hang the push: the stalled PATCH is dropped after the
// stall timeout and the upload goes on from where the registry stopped.
func TestUploadStallResumes(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	size := int64(24 << 20)
	files := []File{randomFile(t, dir, "w.safetensors", size)}
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.StallRequest, Method: "PATCH", AfterBytes: size / 2, Times: 1})
	retry := fastRetry
	retry.StallTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(bg(t), 10*time.Second)
	defer cancel()
	if _, err := UploadFiles(ctx, tr.repo(t, "m/stall"), files, TransferOptions{Retry: retry}); err != nil {
		t.Fatal(err)
	}
	if tr.proxy.Pending() != 0 {
		t.Fatal("the stall was never injected")
	}
	want := fileDigest(t, files[0].Abs)
	if got := digest.FromBytes(tr.blobBytes(t, "m/stall", want)); got != want {
		t.Fatalf("registry holds %s under %s", got, want)
	}
}
