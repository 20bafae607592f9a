package e2e

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
)

// TestPushChunkSizeAndHeaderWarning pushes, on every registry of the fleet,
// a 3 MiB + 1 B weight in 1 MiB PATCH chunks (--chunk-size) beside a
// safetensors file whose data offsets run past its end: the push succeeds
// with a warning naming the broken file on stderr and in the JSON, and
// the pull gives back the same files.
func TestPushChunkSizeAndHeaderWarning(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		repo := repoName(t)
		src := t.TempDir()
		writeFile(t, filepath.Join(src, "weights.bin"), randomBytes(t, 3<<20+1))
		header := `{"w":{"dtype":"U8","shape":[1000],"data_offsets":[0,1000]}}`
		bad := append(binary.LittleEndian.AppendUint64(nil, uint64(len(header))), header...)
		writeFile(t, filepath.Join(src, "model.safetensors"), append(bad, 0))

		var p struct {
			Version  string   `json:"version"`
			Warnings []string `json:"warnings"`
		}
		res := c.okJSON(&p, "push", r.ref(repo, ""), src, "--chunk-size", "1MiB")
		if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "model.safetensors") {
			t.Errorf("JSON warnings %q, want one naming model.safetensors", p.Warnings)
		}
		wantStderr(t, res, `warning: model\.safetensors: not a valid safetensors file`)

		out := filepath.Join(t.TempDir(), "out")
		c.ok("pull", r.ref(repo, ":"+p.Version), out)
		assertSameFiles(t, src, out)
	})
}

// TestPushChunkSizeBadValue refuses a chunk size it cannot read, naming the
// flag and the environment variable, with exit code 2.
func TestPushChunkSizeBadValue(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	res := c.fails([]int{exitUsage}, "push", "localhost:1/m", t.TempDir(), "--chunk-size", "12XB")
	wantStderr(t, res, `--chunk-size \(or MODELREG_CHUNK_SIZE\)`)
}
