package oci

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/modelreg/modelreg/internal/faultproxy"
)

// Identical bytes move once: a large file, a copy of it and a hard link
// to it, and a small file with its copy, are two blobs, each uploaded
// once and downloaded once; every file gets its digest and is written by
// the pull, as a file of its own.
func TestIdenticalBytesMoveOnce(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	dir := t.TempDir()
	big := randomFile(t, dir, "big.bin", 6<<20+1) // above smallFileSize: hashed first only because of its twin
	small := randomFile(t, dir, "small.json", 1000)
	cp := func(src File, name string) File {
		b, err := os.ReadFile(src.Abs)
		if err != nil {
			t.Fatal(err)
		}
		f := src
		f.Path, f.Abs = name, filepath.Join(dir, name)
		if err := os.WriteFile(f.Abs, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	link := big
	link.Path, link.Abs = "link.bin", filepath.Join(dir, "link.bin")
	if err := os.Link(big.Abs, link.Abs); err != nil {
		t.Fatal(err)
	}
	files := []File{big, cp(big, "big-copy.bin"), link, small, cp(small, "small-copy.json")}
	rec := &recorder{}
	stats, err := UploadFiles(bg(t), tr.repo(t, "m/dedupe"), files, TransferOptions{Progress: rec})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Uploaded != 2 || stats.Deduplicated != 3 || stats.BytesUploaded != big.Size+small.Size {
		t.Errorf("stats %+v, want 2 uploaded, 3 deduplicated", stats)
	}
	if n := tr.countRequests("POST", "/blobs/uploads/"); n != 2 {
		t.Errorf("%d uploads started, want 2", n)
	}
	for _, f := range files {
		if want := fileDigest(t, f.Abs); f.Digest != want {
			t.Errorf("%s: digest %q, want %s", f.Path, f.Digest, want)
		}
		if fr := rec.files[f.Path]; fr == nil || fr.done != 1 {
			t.Errorf("%s: progress %+v", f.Path, fr)
		}
	}

	before := tr.countRequests("GET", "/blobs/sha256:")
	target := filepath.Join(t.TempDir(), "pulled")
	res, err := PullFiles(bg(t), tr.repo(t, "m/dedupe"), modelFiles(files), target, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := tr.countRequests("GET", "/blobs/sha256:") - before; n != 2 {
		t.Errorf("%d blob downloads, want 2", n)
	}
	if res.BytesDownloaded != big.Size+small.Size {
		t.Errorf("BytesDownloaded %d, want %d", res.BytesDownloaded, big.Size+small.Size)
	}
	for _, f := range files {
		b, err := os.ReadFile(f.Abs)
		if err != nil {
			t.Fatal(err)
		}
		sameContent(t, filepath.Join(target, f.Path), b)
	}
	a, _ := os.Stat(filepath.Join(target, "big.bin"))
	l, _ := os.Stat(filepath.Join(target, "link.bin"))
	if os.SameFile(a, l) {
		t.Error("the pull hard-linked two files: writing one would change the other")
	}
	noLeftovers(t, target)
}
