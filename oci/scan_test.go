package oci

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/modelreg/modelreg/errdef"
)

func scanPaths(t *testing.T, dir string, opts ScanOptions) ([]string, []SkippedPath) {
	t.Helper()
	s, err := ScanModelDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range s.Files {
		paths = append(paths, f.Path)
	}
	return paths, s.Skipped
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// wantRefused checks that err is bad input naming every one of names.
func wantRefused(t *testing.T, err error, names ...string) {
	t.Helper()
	if !errors.Is(err, errdef.ErrInvalidInput) {
		t.Fatalf("want an invalid-input error naming %v, got %v", names, err)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error does not name %s: %v", n, err)
		}
	}
}

func TestScanDotFilesAndSkips(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"model.onnx":                       "w",
		".gitattributes":                   "*.onnx filter=lfs",
		".gitkeep":                         "",
		"sub/.hidden/notes.txt":            "n",
		".git/HEAD":                        "ref: refs/heads/main",
		"sub/.git":                         "gitdir: ../.git/modules/sub",
		".cache/huggingface/download/x":    "meta",
		".cache/other.txt":                 "kept",
		".modelreg-pull-123-abc/half.bin":  "stale",
		".env.example":                     "TOKEN=",
		"docker/config.json":               `{"credsStore":"desktop"}`,
		"certs/ca.pem":                     "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
		"keys/cosign.pub":                  "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
		"sub/deeper/.modelregignore":       "*.tmp\n",
		"sub/deeper/a.tmp":                 "x",
		"a.tmp":                            "kept: the deeper ignore file does not apply here",
		"logs/run1.log":                    "l",
		".modelregignore":                  "# comment\n\nlogs/\n*.log\n!keep.log\n/anchored.txt\nweights/**/tmp.bin\r\n",
		"keep.log":                         "k",
		"sub/deeper/also.log":              "l",
		"sub/deeper/.modelregignore.extra": "e",
		"anchored.txt":                     "root only",
		"sub/anchored.txt":                 "kept",
		"weights/a/b/tmp.bin":              "x",
	})
	paths, skipped := scanPaths(t, dir, ScanOptions{})
	want := []string{
		".cache/other.txt", ".env.example", ".gitattributes", ".gitkeep", ".modelregignore",
		"a.tmp", "certs/ca.pem", "docker/config.json", "keep.log", "keys/cosign.pub", "model.onnx",
		"sub/.hidden/notes.txt", "sub/anchored.txt", "sub/deeper/.modelregignore", "sub/deeper/.modelregignore.extra",
	}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("files\n got %q\nwant %q", paths, want)
	}
	wantSkipped := []SkippedPath{
		{".cache/huggingface/", SkipHFCache},
		{".git/", SkipGit},
		{".modelreg-pull-123-abc/", SkipPullStaging},
		{"anchored.txt", SkipIgnoreFile},
		{"logs/", SkipIgnoreFile},
		{"sub/.git", SkipGit},
		{"sub/deeper/a.tmp", SkipIgnoreFile},
		{"sub/deeper/also.log", SkipIgnoreFile},
		{"weights/a/b/tmp.bin", SkipIgnoreFile},
	}
	if !reflect.DeepEqual(skipped, wantSkipped) {
		t.Errorf("skipped\n got %v\nwant %v", skipped, wantSkipped)
	}
}

func TestScanRefusesCredentials(t *testing.T) {
	files := map[string]string{
		"model.onnx":          "w",
		".env":                "HF_TOKEN=hf_x",
		"sub/.env.production": "X=1",
		".netrc":              "machine x login y password z",
		"deploy/id_ed25519":   "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n",
		"signing/release.key": "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJr\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
		"tls/server.pem":      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n",
		"docker/config.json":  `{"auths":{"ghcr.io":{"auth":"dXNlcjpwYXNz"}}}`,
		"cosign.key":          "not even PEM",
	}
	dir := writeFiles(t, files)
	_, err := ScanModelDir(dir, ScanOptions{})
	wantRefused(t, err, ".env (dotenv", "sub/.env.production", ".netrc", "deploy/id_ed25519 (PEM private key)",
		"signing/release.key", "tls/server.pem", "docker/config.json (docker config with auths)", "cosign.key", "--allow-credentials", IgnoreFile)
	if !strings.Contains(err.Error(), "8 file(s)") {
		t.Errorf("error does not count the 8 files: %v", err)
	}

	// The flag pushes them all.
	paths, _ := scanPaths(t, dir, ScanOptions{AllowCredentials: true})
	if len(paths) != len(files) {
		t.Errorf("with AllowCredentials: %d files %v, want %d", len(paths), paths, len(files))
	}

	// An ignore file that leaves them out makes the push safe.
	writeFile(t, filepath.Join(dir, IgnoreFile), ".env*\n.netrc\ndeploy/\n*.key\ntls/\ndocker/\n")
	paths, skipped := scanPaths(t, dir, ScanOptions{})
	if want := []string{IgnoreFile, "model.onnx"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("with the ignore file: files %q, want %q", paths, want)
	}
	if len(skipped) != 8 {
		t.Errorf("with the ignore file: skipped %v, want 8 entries", skipped)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScanLinks(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "passwd")
	writeFile(t, secret, "root:x:0:0")
	dir := writeFiles(t, map[string]string{"model.onnx": "w", "sub/config.json": "{}"})
	symlink(t, "model.onnx", filepath.Join(dir, "alias.onnx"))              // inside, relative
	symlink(t, "../sub/config.json", filepath.Join(dir, "cfg/config.json")) // inside, through ..
	symlink(t, filepath.Join(dir, "sub"), filepath.Join(dir, "chain"))      // a folder link...
	if err := os.Remove(filepath.Join(dir, "chain")); err != nil {          // ...replaced by a chain of file links
		t.Fatal(err)
	}
	symlink(t, "alias.onnx", filepath.Join(dir, "chain.onnx"))

	paths, _ := scanPaths(t, dir, ScanOptions{})
	if want := []string{"alias.onnx", "cfg/config.json", "chain.onnx", "model.onnx", "sub/config.json"}; !reflect.DeepEqual(paths, want) {
		t.Fatalf("links inside: files %q, want %q", paths, want)
	}

	symlink(t, secret, filepath.Join(dir, "x"))
	symlink(t, "../../"+filepath.Base(outside)+"/passwd", filepath.Join(dir, "sub/y")) // relative, leaving
	_, err := ScanModelDir(dir, ScanOptions{})
	wantRefused(t, err, "x -> "+secret, "sub/y", "leaves the model folder", "--follow-external-links", "2 link(s)")

	// The flag follows them; the file is stored under the link's name.
	s, err := ScanModelDir(dir, ScanOptions{FollowExternalLinks: true})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, f := range s.Files {
		found = found || (f.Path == "x" && f.Size == int64(len("root:x:0:0")))
	}
	if !found {
		t.Errorf("FollowExternalLinks: x missing from %v", s.Files)
	}

	// An ignored link is neither refused nor followed.
	writeFile(t, filepath.Join(dir, IgnoreFile), "x\nsub/y\n")
	if _, err := ScanModelDir(dir, ScanOptions{}); err != nil {
		t.Errorf("ignored external links: %v", err)
	}
}

func TestScanLinkLoopsFoldersAndDangling(t *testing.T) {
	for name, setup := range map[string]func(t *testing.T, dir string){
		"loop": func(t *testing.T, dir string) {
			symlink(t, "b", filepath.Join(dir, "a"))
			symlink(t, "a", filepath.Join(dir, "b"))
		},
		"self": func(t *testing.T, dir string) { symlink(t, "self", filepath.Join(dir, "self")) },
		"folder-inside": func(t *testing.T, dir string) {
			symlink(t, ".", filepath.Join(dir, "again"))
		},
		"folder-outside": func(t *testing.T, dir string) { symlink(t, t.TempDir(), filepath.Join(dir, "elsewhere")) },
		"dangling":       func(t *testing.T, dir string) { symlink(t, "missing.bin", filepath.Join(dir, "gone")) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"model.onnx": "w"})
			setup(t, dir)
			for _, ext := range []bool{false, true} {
				_, err := ScanModelDir(dir, ScanOptions{FollowExternalLinks: ext})
				wantRefused(t, err, "refused")
			}
		})
	}
}

// TestScanHuggingFaceCache pushes a snapshot of the hub cache layout,
// whose files are links to ../../blobs/SHA, without any flag.
func TestScanHuggingFaceCache(t *testing.T) {
	cache := t.TempDir()
	repo := filepath.Join(cache, "models--org--name")
	snap := filepath.Join(repo, "snapshots", "0123abc")
	blobs := filepath.Join(repo, "blobs")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(blobs, "aaa"), `{"model_type":"bert"}`)
	writeFile(t, filepath.Join(blobs, "bbb"), "weights")
	symlink(t, "../../blobs/aaa", filepath.Join(snap, "config.json"))
	symlink(t, "../../../blobs/bbb", filepath.Join(snap, "onnx", "model.onnx"))
	paths, _ := scanPaths(t, snap, ScanOptions{})
	if want := []string{"config.json", "onnx/model.onnx"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("files %q, want %q", paths, want)
	}
	// Reached through a link to the snapshot, as scripts often do.
	via := filepath.Join(t.TempDir(), "current")
	symlink(t, snap, via)
	if paths, _ := scanPaths(t, via, ScanOptions{}); len(paths) != 2 {
		t.Errorf("through a link to the snapshot: %q", paths)
	}
	// Another model's blobs are outside this model's cache folder.
	other := filepath.Join(cache, "models--org--other", "blobs")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(other, "ccc"), "x")
	symlink(t, "../../../models--org--other/blobs/ccc", filepath.Join(snap, "stolen.bin"))
	_, err := ScanModelDir(snap, ScanOptions{})
	wantRefused(t, err, "stolen.bin", "leaves the model folder")
}

func TestCheckPackable(t *testing.T) {
	files := make([]File, 0, 5000)
	for i := range 5000 {
		p := strings.Repeat("d", 150) + "/" + strings.Repeat("f", 100) + "-" + string(rune('a'+i%26)) + strings.Repeat("0", 4)
		files = append(files, File{Path: p + "/" + strconv.Itoa(i), Size: 1, Mode: 0o644})
	}
	err := CheckPackable(files, Metadata{Name: "m"})
	wantRefused(t, err, "manifest", "5000 files", "distribution-spec#293")
	if err := CheckPackable(files[:100], Metadata{Name: "m"}); err != nil {
		t.Errorf("100 files: %v", err)
	}
}
