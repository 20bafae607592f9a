package oci

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/internal/faultproxy"
)

// pushed uploads random files of the given sizes to repository name
// directly (not through the proxy) and returns them with their bytes.
func pushed(t *testing.T, tr *testRegistry, name string, sizes map[string]int64) ([]File, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	var files []File
	for p, n := range sizes {
		files = append(files, randomFile(t, dir, p, n))
	}
	if _, err := UploadFiles(bg(t), tr.direct(t, name), files, TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	content := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f.Abs)
		if err != nil {
			t.Fatal(err)
		}
		content[f.Path] = b
	}
	return files, content
}

// A single-stream download cut at half way ends with the right file, no
// temporary leftovers, and at most 10% more bytes moved than the blob.
func TestDownloadCutHalfwaySingleStream(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	size := int64(24 << 20)
	files, content := pushed(t, tr, "m/cut", map[string]int64{"w.safetensors": size})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.CutResponse, Method: "GET", PathContains: "/blobs/sha256:", AfterBytes: size / 2, Times: 1})
	dir := filepath.Join(t.TempDir(), "out")
	rec := &recorder{}
	opts := PullOptions{TransferOptions: TransferOptions{Retry: fastRetry, RangeStreams: 1, Progress: rec}}
	res, err := PullFiles(bg(t), tr.repo(t, "m/cut"), modelFiles(files), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if tr.proxy.Pending() != 0 {
		t.Fatal("the cut was never injected")
	}
	sameContent(t, filepath.Join(dir, "w.safetensors"), content["w.safetensors"])
	noLeftovers(t, dir)
	if out := tr.proxy.Stats().BytesToClients; float64(out) > 1.1*float64(size) {
		t.Errorf("%d bytes moved for a %d byte blob", out, size)
	}
	ranged := 0
	for _, r := range tr.proxy.Requests() {
		if r.Method == "GET" && strings.HasPrefix(r.Range, "bytes=") && r.Status == 206 {
			ranged++
		}
	}
	if ranged != 1 {
		t.Errorf("%d ranged GETs after the cut, want 1 resuming request", ranged)
	}
	if !res.Files[0].Downloaded || res.BytesDownloaded != size {
		t.Errorf("result %+v", res)
	}
	if fr := rec.files["w.safetensors"]; fr == nil || fr.bytes != size || fr.done != 1 {
		t.Errorf("progress %+v", fr)
	}
}

// A large blob comes as parallel byte ranges written in place: the same
// bytes, several 206 answers, and a cut or truncated part resumes within
// the part.
func TestDownloadRangedParallel(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	size := int64(40<<20 + 4321)
	files, content := pushed(t, tr, "m/ranged", map[string]int64{"big.safetensors": size, "config.json": 300})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.CutResponse, Method: "GET", PathContains: "/blobs/sha256:", AfterBytes: 3 << 20, Times: 2})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.TruncateResponse, Method: "GET", PathContains: "/blobs/sha256:", AfterBytes: 1 << 20, Times: 1})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: 503, Method: "GET", PathContains: "/blobs/sha256:", Times: 1})
	dir := filepath.Join(t.TempDir(), "out")
	opts := PullOptions{TransferOptions: TransferOptions{Retry: fastRetry, RangeThreshold: 8 << 20, PartSize: 4 << 20, RangeStreams: 4, SingleStreamRate: -1}}
	if _, err := PullFiles(bg(t), tr.repo(t, "m/ranged"), modelFiles(files), dir, opts); err != nil {
		t.Fatal(err)
	}
	if p := tr.proxy.Pending(); p != 0 {
		t.Fatalf("%d faults never hit", p)
	}
	for p, b := range content {
		sameContent(t, filepath.Join(dir, p), b)
	}
	noLeftovers(t, dir)
	partial := 0
	for _, r := range tr.proxy.Requests() {
		if r.Status == 206 {
			partial++
		}
	}
	if partial < 11 {
		t.Errorf("%d partial answers, want at least the 11 parts", partial)
	}
	if out := tr.proxy.Stats().BytesToClients; float64(out) > 1.1*float64(size) {
		t.Errorf("%d bytes moved for %d bytes of blobs", out, size)
	}
}

// A download cut at half way in ranged mode moves at most 10% more than
// the blob.
func TestDownloadRangedCutHalfway(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	size := int64(32 << 20)
	files, content := pushed(t, tr, "m/rcut", map[string]int64{"w.safetensors": size})
	// The first stream is cut half way, inside its timed first part (one
	// part of nearly the whole blob): the rest comes as one range.
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.CutResponse, Method: "GET", PathContains: "/blobs/sha256:", AfterBytes: size / 2, Times: 1})
	dir := filepath.Join(t.TempDir(), "out")
	opts := PullOptions{TransferOptions: TransferOptions{Retry: fastRetry, RangeThreshold: 8 << 20, PartSize: size - 1, RangeStreams: 2}}
	if _, err := PullFiles(bg(t), tr.repo(t, "m/rcut"), modelFiles(files), dir, opts); err != nil {
		t.Fatal(err)
	}
	if tr.proxy.Pending() != 0 {
		t.Fatal("the cut was never injected")
	}
	sameContent(t, filepath.Join(dir, "w.safetensors"), content["w.safetensors"])
	noLeftovers(t, dir)
	if out := tr.proxy.Stats().BytesToClients; float64(out) > 1.1*float64(size) {
		t.Errorf("%d bytes moved for a %d byte blob", out, size)
	}
}

// A large blob on a fast link stays one stream: one GET, hashed as it
// lands, no parallel ranges.
func TestDownloadFastLinkStaysOneStream(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	size := int64(24<<20 + 17)
	files, content := pushed(t, tr, "m/fast", map[string]int64{"w.safetensors": size})
	dir := filepath.Join(t.TempDir(), "out")
	// 1 MiB/s counts as fast: the first 4 MiB never take 4 s on loopback.
	opts := PullOptions{TransferOptions: TransferOptions{Retry: fastRetry, RangeThreshold: 8 << 20, PartSize: 4 << 20, SingleStreamRate: 1 << 20}}
	if _, err := PullFiles(bg(t), tr.repo(t, "m/fast"), modelFiles(files), dir, opts); err != nil {
		t.Fatal(err)
	}
	sameContent(t, filepath.Join(dir, "w.safetensors"), content["w.safetensors"])
	if n := blobGETs(tr); n != 1 {
		t.Errorf("%d blob GETs, want 1 stream", n)
	}
}

// A large blob whose first part arrives slower than SingleStreamRate goes
// on as parallel ranges, and the bytes are right.
func TestDownloadSlowLinkSwitchesToRanges(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{BytesPerSecond: 16 << 20})
	size := int64(24 << 20)
	files, content := pushed(t, tr, "m/slow", map[string]int64{"w.safetensors": size})
	dir := filepath.Join(t.TempDir(), "out")
	opts := PullOptions{TransferOptions: TransferOptions{Retry: fastRetry, RangeThreshold: 8 << 20, PartSize: 4 << 20, RangeStreams: 4}}
	if _, err := PullFiles(bg(t), tr.repo(t, "m/slow"), modelFiles(files), dir, opts); err != nil {
		t.Fatal(err)
	}
	sameContent(t, filepath.Join(dir, "w.safetensors"), content["w.safetensors"])
	noLeftovers(t, dir)
	// The first stream and the five parts after its first 4 MiB.
	if n := blobGETs(tr); n != 6 {
		t.Errorf("%d blob GETs, want 6: one stream, then 5 ranges", n)
	}
	if out := tr.proxy.Stats().BytesToClients; float64(out) > 1.1*float64(size) {
		t.Errorf("%d bytes moved for a %d byte blob", out, size)
	}
}

// blobGETs counts the blob GETs the proxy saw.
func blobGETs(tr *testRegistry) int {
	n := 0
	for _, r := range tr.proxy.Requests() {
		if r.Method == "GET" && strings.Contains(r.Path, "/blobs/sha256:") {
			n++
		}
	}
	return n
}

// A registry that ignores Range gets one stream, and the bytes are right.
func TestDownloadRegistryIgnoringRanges(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	size := int64(12 << 20)
	files, content := pushed(t, tr, "m/norange", map[string]int64{"w.bin": size})
	repo := tr.repo(t, "m/norange")
	// Strip the Range header on the way, as a registry without range
	// support would ignore it.
	tc := newTransferClient(repo, TransferOptions{Retry: fastRetry, RangeThreshold: 1 << 20, PartSize: 1 << 20})
	tc.hc = stripRange{tc.hc}
	out, err := os.Create(filepath.Join(t.TempDir(), "w.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := tc.download(bg(t), ocispec.Descriptor{Digest: files[0].Digest, Size: size}, out, noProgress{}); err != nil {
		t.Fatal(err)
	}
	sameContent(t, out.Name(), content["w.bin"])
	if n := len(tr.proxy.Requests()); n != 1 {
		t.Errorf("%d requests, want 1 whole-blob GET", n)
	}
}

// stripRange drops the Range header of every request.
type stripRange struct{ remote.Client }

func (s stripRange) Do(req *http.Request) (*http.Response, error) {
	req.Header.Del("Range")
	return s.Client.Do(req)
}

// Content that does not match its digest is refused, ranged or not, and
// nothing is left behind.
func TestDownloadRefusesTamperedBlob(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts TransferOptions
	}{
		{"single", TransferOptions{RangeStreams: 1}},
		{"ranged", TransferOptions{RangeThreshold: 4 << 20, PartSize: 1 << 20, SingleStreamRate: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := startRegistry(t, true, faultproxy.Options{})
			size := int64(6 << 20)
			files, _ := pushed(t, tr, "m/tamper", map[string]int64{"w.bin": size})
			blob := filepath.Join(tr.root, "m", "tamper", "blobs", "sha256", files[0].Digest.Encoded())
			b, err := os.ReadFile(blob)
			if err != nil {
				t.Fatalf("olareg's blob file: %v", err)
			}
			b[size-10] ^= 0xff
			if err := os.WriteFile(blob, b, 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "out")
			tc.opts.Retry = fastRetry
			_, err = PullFiles(bg(t), tr.repo(t, "m/tamper"), modelFiles(files), dir, PullOptions{TransferOptions: tc.opts})
			if !errors.Is(err, errdef.ErrIntegrity) {
				t.Fatalf("pull of a tampered blob: %v, want ErrIntegrity", err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("target folder exists after a refused pull: %v", err)
			}
			noLeftovers(t, dir)
		})
	}
}

// A pull records the files it writes in the digest cache: pulling again
// downloads nothing and hashes nothing, and a push of the folder finds
// the digests there.
func TestPullRecordsDigests(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	files, _ := pushed(t, tr, "m/again", map[string]int64{"a.safetensors": 5 << 20, "b.json": 10})
	cache := DigestCache{Dir: t.TempDir()}
	dir := filepath.Join(t.TempDir(), "out")
	opts := PullOptions{TransferOptions: TransferOptions{Cache: cache}}
	if _, err := PullFiles(bg(t), tr.repo(t, "m/again"), modelFiles(files), dir, opts); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if got := cache.Lookup(filepath.Join(dir, f.Path)); got != f.Digest {
			t.Errorf("cache entry of pulled %s: %q, want %s", f.Path, got, f.Digest)
		}
	}
	tr.proxy.ResetStats()
	res, err := PullFiles(bg(t), tr.repo(t, "m/again"), modelFiles(files), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesDownloaded != 0 || tr.proxy.Stats().Requests != 0 {
		t.Errorf("second pull downloaded %d bytes in %d requests", res.BytesDownloaded, tr.proxy.Stats().Requests)
	}
	// A push of the pulled folder to another repository mounts the blobs.
	var again []File
	for _, f := range files {
		again = append(again, File{Path: f.Path, Abs: filepath.Join(dir, f.Path), Size: f.Size, Role: f.Role})
	}
	stats, err := UploadFiles(bg(t), tr.repo(t, "m/copy"), again, TransferOptions{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Mounted != 2 {
		t.Errorf("push of a pulled folder: %+v, want 2 mounted", stats)
	}
}

// DownloadBlob keeps its contract: the file holds the blob, or is gone.
func TestDownloadBlobNotFound(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dst := filepath.Join(t.TempDir(), "x")
	err := DownloadBlob(bg(t), tr.repo(t, "m/none"), ocispec.Descriptor{Digest: digest.Digest("sha256:" + strings.Repeat("a", 64)), Size: 10}, dst)
	if !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("download of a missing blob: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("destination exists after a failed download")
	}
}

// TestDefaultCacheSkipsSmallFiles: the default digest cache keeps no entry
// for a file under DefaultCacheMinSize (hashing it again is cheaper than
// an entry file) and keeps one for a file of that size.
func TestDefaultCacheSkipsSmallFiles(t *testing.T) {
	t.Setenv("MODELREG_CACHE_DIR", t.TempDir())
	c := DefaultDigestCache()
	dir := t.TempDir()
	small := randomFile(t, dir, "small.bin", DefaultCacheMinSize-1)
	large := randomFile(t, dir, "large.bin", DefaultCacheMinSize)
	for _, f := range []File{small, large} {
		if _, err := c.HashFile(f.Abs); err != nil {
			t.Fatal(err)
		}
	}
	if d := c.Lookup(small.Abs); d != "" {
		t.Errorf("small file: cache entry %s, want none", d)
	}
	if d, want := c.Lookup(large.Abs), fileDigest(t, large.Abs); d != want {
		t.Errorf("file of DefaultCacheMinSize: cache entry %q, want %s", d, want)
	}
	entries, _ := os.ReadDir(c.Dir)
	if len(entries) != 1 {
		t.Errorf("cache folder holds %d entries, want 1 (the large file's)", len(entries))
	}
}
