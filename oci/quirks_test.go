package oci

import (
	"net/http"
	"strings"
	"testing"

	"github.com/modelreg/modelreg/internal/faultproxy"
)

// Registry quirks met in the field, each played by faultproxy rewriting
// one answer of olareg.

// ECR answers a chunk PATCH with 201 instead of 202 (kitops#821).
func TestUploadPatchAnswered201(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.RewriteStatus, Status: http.StatusCreated, Method: "PATCH"})
	files := []File{randomFile(t, t.TempDir(), "w.safetensors", 10<<20)}
	if _, err := UploadFiles(bg(t), tr.repo(t, "m/ecr"), files, TransferOptions{Retry: fastRetry, ChunkSize: 4 << 20}); err != nil {
		t.Fatal(err)
	}
	want := fileDigest(t, files[0].Abs)
	if files[0].Digest != want || !tr.hasBlob(t, "m/ecr", want) {
		t.Fatalf("digest %s, want %s in the registry", files[0].Digest, want)
	}
	if n := tr.countRequests("PATCH", "/blobs/uploads/"); n != 3 {
		t.Errorf("%d PATCH requests, want 3", n)
	}
}

// A registry or proxy that refuses PATCH with a plain 400 (no OCI error
// code) gets the file in one PUT, as for 405.
func TestUploadPatchRefusedWithPlain400(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: http.StatusBadRequest, Method: "PATCH", Body: "Bad Request\n"})
	files := []File{randomFile(t, t.TempDir(), "a.safetensors", 6<<20), randomFile(t, t.TempDir(), "b.safetensors", 5<<20)}
	if _, err := UploadFiles(bg(t), tr.repo(t, "m/nopatch"), files, TransferOptions{Retry: fastRetry, Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if want := fileDigest(t, f.Abs); f.Digest != want || !tr.hasBlob(t, "m/nopatch", want) {
			t.Errorf("%s: digest %s, want %s in the registry", f.Path, f.Digest, want)
		}
	}
	if n := tr.countRequests("PATCH", "/blobs/uploads/"); n != 1 {
		t.Errorf("%d PATCH requests, want 1 (later files go in one PUT at once)", n)
	}
}

// A proxy that answers 413 to bodies from 2 MiB: the chunked upload and
// the one-PUT upload of a small file both go again in chunks under the
// limit.
func TestUploadBodyTooLargeShrinksChunks(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: http.StatusRequestEntityTooLarge, MinBodyBytes: 2 << 20, Body: "<html>413 Request Entity Too Large</html>"})
	dir := t.TempDir()
	files := []File{randomFile(t, dir, "big.safetensors", 20<<20+7), randomFile(t, dir, "small.bin", 3<<20)}
	if _, err := UploadFiles(bg(t), tr.repo(t, "m/413"), files, TransferOptions{Retry: fastRetry, Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if want := fileDigest(t, f.Abs); f.Digest != want || !tr.hasBlob(t, "m/413", want) {
			t.Errorf("%s: digest %s, want %s in the registry", f.Path, f.Digest, want)
		}
	}
	if tr.proxy.Stats().Faults == 0 {
		t.Error("no body was refused: the test tests nothing")
	}
}

// A limit below the smallest chunk fails with advice naming --chunk-size.
func TestUploadBodyTooLargeGivesAdvice(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: http.StatusRequestEntityTooLarge, MinBodyBytes: 512 << 10, Body: "too large"})
	files := []File{randomFile(t, t.TempDir(), "big.safetensors", 8<<20)}
	_, err := UploadFiles(bg(t), tr.repo(t, "m/413x"), files, TransferOptions{Retry: fastRetry})
	if err == nil {
		t.Fatal("an upload through a proxy refusing every body over 512 KiB succeeded")
	}
	if !strings.Contains(err.Error(), "--chunk-size") || !strings.Contains(err.Error(), "413") {
		t.Errorf("error %q does not name the 413 and --chunk-size", err)
	}
	if n := tr.proxy.Stats().Faults; n > 5 {
		t.Errorf("%d bodies refused, want at most 5 (8 → 4 → 2 → 1 MiB)", n)
	}
}

// A registry that takes neither PATCH nor a PUT of the whole file says
// that no chunk size helps.
func TestUploadBodyTooLargeWithoutPatch(t *testing.T) {
	tr := startRegistry(t, false, faultproxy.Options{})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: http.StatusMethodNotAllowed, Method: "PATCH"})
	tr.proxy.Inject(faultproxy.Fault{Kind: faultproxy.Status, Status: http.StatusRequestEntityTooLarge, Method: "PUT", MinBodyBytes: 2 << 20, Body: "too large"})
	files := []File{randomFile(t, t.TempDir(), "big.safetensors", 6<<20)}
	_, err := UploadFiles(bg(t), tr.repo(t, "m/413put"), files, TransferOptions{Retry: fastRetry})
	if err == nil {
		t.Fatal("an upload through a registry refusing PATCH and large PUTs succeeded")
	}
	if !strings.Contains(err.Error(), "no --chunk-size helps") || strings.Contains(err.Error(), "smaller --chunk-size") {
		t.Errorf("error %q does not say that no chunk size helps", err)
	}
}
