package oci

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	// "missing.bin" was never staged: its move fails after the others.
	if err := commitInto(dir, staging, []string{"README.md", "sub/model.bin", "missing.bin"}); err == nil {
		t.Fatal("commitInto succeeded with a file missing from staging")
	}
	os.RemoveAll(staging)
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
	os.WriteFile(filepath.Join(staging, "README.md"), []byte("new card"), 0o644)
	if err := commitInto(dir, staging, []string{"README.md"}); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(staging)
	got := readTree(t, dir)
	if got["README.md"] != "new card" || got["keep.txt"] != "mine" || len(got) != 3 {
		t.Errorf("after commit: %v", got)
	}
}

func TestRemoveStaleStaging(t *testing.T) {
	dir := t.TempDir()
	// A process that has exited: its PID is free (for a while at least).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(cmd.ProcessState.Pid())
	live := strconv.Itoa(os.Getppid())
	for _, name := range []string{stagingMark + dead + "-123", stagingMark + live + "-456", stagingMark + "x-789", "model.bin"} {
		os.Mkdir(filepath.Join(dir, name), 0o755)
	}
	removeStaleStaging(dir, stagingMark)
	got := readTree(t, dir)
	if _, ok := got[stagingMark+dead+"-123/"]; ok {
		t.Error("the folder of a dead pull is still there")
	}
	for _, keep := range []string{stagingMark + live + "-456/", stagingMark + "x-789/", "model.bin/"} {
		if _, ok := got[keep]; !ok {
			t.Errorf("%s was removed", keep)
		}
	}
}
