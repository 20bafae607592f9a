package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// What a push takes from a folder and what moves (issue #10, items 1, 2,
// 3, 5 and 6). Requests are counted by a proxy in front of each registry
// of the fleet.

// requestLog is a reverse proxy in front of one registry that records
// every request ("METHOD PATH?QUERY").
type requestLog struct {
	host string // 127.0.0.1:PORT of the proxy
	mu   sync.Mutex
	reqs []string
}

// countingProxy starts a requestLog in front of r, stopped with the test.
// The registry sees the proxy's Host, so the upload locations it answers
// lead back through the proxy.
func countingProxy(t *testing.T, r *registry) *requestLog {
	t.Helper()
	target, err := url.Parse("http://" + r.host)
	if err != nil {
		t.Fatal(err)
	}
	l := &requestLog{}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, req.Method+" "+req.URL.RequestURI())
		l.mu.Unlock()
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	l.host = strings.TrimPrefix(srv.URL, "http://")
	return l
}

func (l *requestLog) ref(repo, suffix string) string { return l.host + "/" + repo + suffix }

// matching returns the requests that match the regular expression re.
func (l *requestLog) matching(re string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	rx := regexp.MustCompile(re)
	var out []string
	for _, r := range l.reqs {
		if rx.MatchString(r) {
			out = append(out, r)
		}
	}
	return out
}

// blobRequests are every request about a blob or a blob upload.
func (l *requestLog) blobRequests() []string { return l.matching(`^\S+ /v2/.+/blobs/`) }

// uploadsOf counts the uploads of blob d completed (PUT ...?digest=d, a
// monolithic or a chunked upload's last request).
func (l *requestLog) uploadsOf(d string) int {
	return len(l.matching(`^PUT /v2/.+/blobs/uploads/.*[?&]digest=`+regexp.QuoteMeta(url.QueryEscape(d))+`($|&)`)) +
		len(l.matching(`^PUT /v2/.+/blobs/uploads/.*[?&]digest=`+regexp.QuoteMeta(d)+`($|&)`))
}

// downloadsOf counts the GETs of blob d.
func (l *requestLog) downloadsOf(d string) int {
	return len(l.matching(`^GET /v2/.+/blobs/` + regexp.QuoteMeta(d) + `($|\?)`))
}

type pushFilesJSON struct {
	pushJSON
	BlobsUploaded     int `json:"blobsUploaded"`
	BlobsDeduplicated int `json:"blobsDeduplicated"`
	Skipped           []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"skipped"`
	SkippedCount int `json:"skippedCount"`
}

// TestPushRefusesExternalLinks: links leaving the model folder are refused
// before any request about a blob, each named; with the flag the file is
// pushed; a Hugging Face cache snapshot pushes as it is.
func TestPushRefusesExternalLinks(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		proxy := countingProxy(t, r)
		repo := repoName(t)
		src := copyModel(t, modelSilero)
		secret := filepath.Join(t.TempDir(), "secret.txt")
		writeFile(t, secret, []byte("TOKEN=do-not-publish\n"))
		if err := os.Symlink(secret, filepath.Join(src, "x")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/etc/passwd", filepath.Join(src, "passwd")); err != nil {
			t.Fatal(err)
		}
		res := c.fails([]int{exitError}, "push", proxy.ref(repo, ""), src)
		wantStderr(t, res, `\bx -> `+regexp.QuoteMeta(secret), `passwd -> /etc/passwd`, `leaves the model folder`, `--follow-external-links`)
		if got := proxy.blobRequests(); len(got) > 0 {
			t.Errorf("a refused push made %d blob requests: %v", len(got), got)
		}
		if got := proxy.matching(`^PUT /v2/.+/manifests/`); len(got) > 0 {
			t.Errorf("a refused push wrote manifests: %v", got)
		}

		if err := os.Remove(filepath.Join(src, "passwd")); err != nil {
			t.Fatal(err)
		}
		var p pushFilesJSON
		c.okJSON(&p, "push", r.ref(repo, ""), src, "--follow-external-links")
		if !slices.ContainsFunc(p.Files, func(f fileJSON) bool { return f.Path == "x" && f.Digest == fileSHA256(t, secret) }) {
			t.Errorf("--follow-external-links did not push x as the file it points at: %+v", p.Files)
		}

		// The hub cache: snapshots/REV/FILE -> ../../blobs/SHA.
		cache := filepath.Join(t.TempDir(), "hub", "models--org--silero")
		snap := filepath.Join(cache, "snapshots", "0123456789abcdef")
		mkdirAll(t, filepath.Join(cache, "blobs"))
		mkdirAll(t, filepath.Join(snap, "onnx"))
		onnxDigest := fileSHA256(t, filepath.Join(src, "silero_vad.onnx"))
		onnx := strings.TrimPrefix(onnxDigest, "sha256:")
		data, err := os.ReadFile(filepath.Join(src, "silero_vad.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(cache, "blobs", onnx), data)
		writeFile(t, filepath.Join(cache, "blobs", "cfg"), []byte(`{"model_type":"silero"}`))
		if err := os.Symlink("../../../blobs/"+onnx, filepath.Join(snap, "onnx", "silero_vad.onnx")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../blobs/cfg", filepath.Join(snap, "config.json")); err != nil {
			t.Fatal(err)
		}
		var hf pushFilesJSON
		c.okJSON(&hf, "push", r.ref(repo+"-hf", ""), snap)
		target := filepath.Join(t.TempDir(), "pulled")
		c.ok("pull", r.ref(repo+"-hf", ":"+hf.Version), target)
		fi, err := os.Lstat(filepath.Join(target, "onnx", "silero_vad.onnx"))
		if err != nil || !fi.Mode().IsRegular() || fileSHA256(t, filepath.Join(target, "onnx", "silero_vad.onnx")) != onnxDigest {
			t.Errorf("the pulled snapshot does not hold onnx/silero_vad.onnx as a regular file with its bytes: %v %v", fi, err)
		}
	})
}

// TestPushDotFiles: dot-files are pushed and pulled back; .git,
// .cache/huggingface and .modelregignore patterns are left out and
// reported; a credential is refused, named, before any blob request.
func TestPushDotFiles(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		repo := repoName(t)
		src := copyModel(t, modelFaceAPI)
		for p, content := range map[string]string{
			".gitattributes":                   "*.bin filter=lfs diff=lfs merge=lfs -text\n",
			".gitkeep":                         "",
			"extra/.hidden.json":               `{"kept":true}`,
			".git/HEAD":                        "ref: refs/heads/main\n",
			".cache/huggingface/download/x.md": "hub metadata\n",
			"train.log":                        "loss 0.1\n",
			"logs/run.txt":                     "run\n",
			".modelregignore":                  "# training output\n*.log\nlogs/\n",
		} {
			full := filepath.Join(src, filepath.FromSlash(p))
			mkdirAll(t, filepath.Dir(full))
			writeFile(t, full, []byte(content))
		}
		var p pushFilesJSON
		res := c.okJSON(&p, "push", r.ref(repo, ""), src)
		var paths []string
		for _, f := range p.Files {
			paths = append(paths, f.Path)
		}
		for _, want := range []string{".gitattributes", ".gitkeep", ".modelregignore", "extra/.hidden.json"} {
			if !slices.Contains(paths, want) {
				t.Errorf("push left out %s: %v\n%s", want, paths, res)
			}
		}
		var skipped []string
		for _, s := range p.Skipped {
			skipped = append(skipped, s.Path)
		}
		if want := []string{".cache/huggingface/", ".git/", "logs/", "train.log"}; !slices.Equal(skipped, want) || p.SkippedCount != len(want) {
			t.Errorf("skipped %v (count %d), want %v", skipped, p.SkippedCount, want)
		}
		text := c.ok("push", r.ref(repo, ""), src)
		wantStderr(t, result{stderr: text.stdout}, `skipped: 4`, `\.git/ \(git\)`, `train\.log \(ignore-file\)`)

		target := filepath.Join(t.TempDir(), "pulled")
		c.ok("pull", r.ref(repo, ":"+p.Version), target)
		for _, want := range []string{".gitattributes", ".gitkeep", ".modelregignore", "extra/.hidden.json"} {
			if _, err := os.Stat(filepath.Join(target, filepath.FromSlash(want))); err != nil {
				t.Errorf("pull did not write %s: %v", want, err)
			}
		}

		// A credential is refused before any blob moves, named.
		proxy := countingProxy(t, r)
		writeFile(t, filepath.Join(src, ".env"), []byte("HF_TOKEN=hf_secret\n"))
		mkdirAll(t, filepath.Join(src, "docker"))
		writeFile(t, filepath.Join(src, "docker", "config.json"), []byte(`{"auths":{"ghcr.io":{"auth":"dXNlcjpwYXNz"}}}`))
		res = c.fails([]int{exitError}, "push", proxy.ref(repo, ""), src)
		wantStderr(t, res, `\.env \(dotenv file\)`, `docker/config\.json \(docker config with auths\)`, `--allow-credentials`, `\.modelregignore`)
		if got := proxy.blobRequests(); len(got) > 0 {
			t.Errorf("a refused push made %d blob requests: %v", len(got), got)
		}
	})
}

// TestPushOversizedManifestUploadsNothing: a folder whose manifest would
// pass 4 MiB is refused with no blob request at all.
func TestPushOversizedManifestUploadsNothing(t *testing.T) {
	t.Parallel()
	// About 1 KiB of manifest per file: a 200-byte path appears three
	// times in each layer descriptor.
	src := t.TempDir()
	long := strings.Repeat("d", 100) + "/" + strings.Repeat("e", 90)
	const n = 4600
	for i := range n {
		dir := filepath.Join(src, fmt.Sprintf("%03d", i/100), long)
		if i%100 == 0 {
			mkdirAll(t, dir)
		}
		writeFile(t, filepath.Join(dir, fmt.Sprintf("%s-%05d.txt", strings.Repeat("f", 60), i)), []byte{byte(i)})
	}
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		proxy := countingProxy(t, r)
		res := c.fails([]int{exitError}, "push", proxy.ref(repoName(t), ""), src)
		wantStderr(t, res, `manifest`, fmt.Sprintf(`%d files`, n), `MiB`, `nothing is uploaded`)
		if got := proxy.blobRequests(); len(got) > 0 {
			t.Errorf("a refused push made %d blob requests (first: %v)", len(got), got[0])
		}
	})
}

// TestIdenticalBytesMoveOnce: two files with the same bytes and a hard
// link are one blob, uploaded once and downloaded once; the manifest lists
// every file and the pull writes every file, as separate copies.
func TestIdenticalBytesMoveOnce(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		proxy := countingProxy(t, r)
		repo := repoName(t)
		src := copyModel(t, modelSilero)
		small := randomBytes(t, 64<<10)
		large := randomBytes(t, 5<<20) // above the 4 MiB up to which files are hashed first
		writeFile(t, filepath.Join(src, "a.bin"), small)
		writeFile(t, filepath.Join(src, "copy", "a.bin"), small)
		if err := os.Link(filepath.Join(src, "a.bin"), filepath.Join(src, "hardlink.bin")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(src, "big1.bin"), large)
		writeFile(t, filepath.Join(src, "big2.bin"), large)
		if err := os.Link(filepath.Join(src, "silero_vad.onnx"), filepath.Join(src, "linked.onnx")); err != nil {
			t.Fatal(err)
		}

		var p pushFilesJSON
		c.okJSON(&p, "push", proxy.ref(repo, ""), src)
		if len(p.Files) != 7 {
			t.Fatalf("the manifest lists %d files, want 7: %+v", len(p.Files), p.Files)
		}
		digests := map[string]bool{}
		for _, f := range p.Files {
			digests[f.Digest] = true
		}
		if len(digests) != 3 || p.BlobsUploaded != 3 || p.BlobsDeduplicated != 4 {
			t.Errorf("%d digests, %d blobs uploaded, %d deduplicated; want 3, 3, 4", len(digests), p.BlobsUploaded, p.BlobsDeduplicated)
		}
		for d := range digests {
			if n := proxy.uploadsOf(d); n > 1 {
				t.Errorf("blob %s was uploaded %d times, want once", d, n)
			}
		}

		target := filepath.Join(t.TempDir(), "pulled")
		c.ok("pull", proxy.ref(repo, ":"+p.Version), target)
		for d := range digests {
			if n := proxy.downloadsOf(d); n != 1 {
				t.Errorf("blob %s was downloaded %d times, want once", d, n)
			}
		}
		assertSameFiles(t, src, target)
		a, errA := os.Stat(filepath.Join(target, "a.bin"))
		h, errH := os.Stat(filepath.Join(target, "hardlink.bin"))
		if errA != nil || errH != nil {
			t.Fatal(errA, errH)
		}
		if os.SameFile(a, h) {
			t.Errorf("the pull linked files with the same digest: writing one would change the other")
		}
	})
}

// TestPullIncludeGlobstar: ** in --include matches zero or more folders
// (huggingface_hub#3314 is the same trap), and a pattern without "/" still
// matches base names.
func TestPullIncludeGlobstar(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		repo := repoName(t)
		src := copyModel(t, modelSilero)
		for _, p := range []string{"config.json", "a/config.json", "a/b/tokenizer.json"} {
			writeFile(t, filepath.Join(src, filepath.FromSlash(p)), []byte(`{"p":"`+p+`"}`))
		}
		var p pushFilesJSON
		c.okJSON(&p, "push", r.ref(repo, ""), src)
		for pat, want := range map[string][]string{
			"**/*.json": {"a/b/tokenizer.json", "a/config.json", "config.json"},
			"*.json":    {"a/b/tokenizer.json", "a/config.json", "config.json"},
			"a/*.json":  {"a/config.json"},
			"a/**":      {"a/b/tokenizer.json", "a/config.json"},
		} {
			target := filepath.Join(t.TempDir(), "pulled")
			c.ok("pull", r.ref(repo, ":"+p.Version), target, "--include", pat)
			tr, _ := readTree(t, target)
			var got []string
			for path, e := range tr {
				if e != "dir" {
					got = append(got, path)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("--include %q wrote %v, want %v", pat, got, want)
			}
		}
	})
}
