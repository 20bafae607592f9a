package oci

import (
	"os"
	"path/filepath"
	"testing"
)

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if info.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCommitIntoUndoesOnFailure(t *testing.T) {
	dir := writeFiles(t, map[string]string{"README.md": "old card", "keep.txt": "mine"})
	before := readTree(t, dir)
	staging, err := os.MkdirTemp(dir, stagingMark)
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{"README.md": "new card", "sub/model.bin": "weights"} {
		full := filepath.Join(staging, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.MkdirTemp(dir, stagingMark)
	// "missing.bin" was never staged: its move fails after the others.
	if err := commitInto(dir, staging, old, []string{"README.md", "sub/model.bin", "missing.bin"}); err == nil {
		t.Fatal("commitInto succeeded with a file missing from staging")
	}
	os.RemoveAll(staging)
	os.RemoveAll(old)
	after := readTree(t, dir)
	if len(after) != len(before) {
		t.Fatalf("after a failed commit the folder holds %v, want %v", after, before)
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %q after a failed commit, want %q", k, after[k], v)
		}
	}
}

func TestCommitIntoReplaces(t *testing.T) {
	dir := writeFiles(t, map[string]string{"README.md": "old card", "keep.txt": "mine"})
	staging, _ := os.MkdirTemp(dir, stagingMark)
	old, _ := os.MkdirTemp(dir, stagingMark)
	os.WriteFile(filepath.Join(staging, "README.md"), []byte("new card"), 0o644)
	if err := commitInto(dir, staging, old, []string{"README.md"}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(old, "README.md")); err != nil || string(b) != "old card" {
		t.Errorf("the replaced file was not kept aside: %q, %v", b, err)
	}
	os.RemoveAll(staging)
	os.RemoveAll(old)
	got := readTree(t, dir)
	if got["README.md"] != "new card" || got["keep.txt"] != "mine" || len(got) != 3 {
		t.Errorf("after commit: %v", got)
	}
}

func TestRemoveStaleStaging(t *testing.T) {
	dir := t.TempDir()
	live, err := newStaging(dir, stagingMark)
	if err != nil {
		t.Fatal(err)
	}
	defer live.remove()
	dead := filepath.Join(dir, stagingMark+"12345-left-by-a-killed-pull")
	os.Mkdir(dead, 0o755)
	os.WriteFile(filepath.Join(dead, "part.bin"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(dir, "model"), 0o755)

	removeStaleStaging(dir, stagingMark)
	got := readTree(t, dir)
	if _, ok := got[filepath.Base(dead)+"/"]; ok {
		t.Error("the folder of a dead pull is still there")
	}
	for _, keep := range []string{filepath.Base(live.files) + "/", filepath.Base(live.old) + "/", "model/"} {
		if _, ok := got[keep]; !ok {
			t.Errorf("%s was removed while its pull holds it", keep)
		}
	}
	live.remove()
	if _, err := os.Stat(live.files); err == nil {
		t.Error("remove left the staging folder")
	}
}
