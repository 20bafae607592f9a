package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// Exit codes of the CLI contract (DESIGN.md, "Command line").
const (
	exitOK     = 0
	exitError  = 1
	exitUsage  = 2
	exitDenied = 3
)

// cosignPassword protects every key pair made by the tests (COSIGN_PASSWORD).
const cosignPassword = "e2e-key-password"

// cmdTimeout bounds one command; a push or pull of the test models takes
// well under a second.
const cmdTimeout = 3 * time.Minute

// deadProxy is a proxy address nothing listens on. Tools that try the
// internet (cosign's TUF update) fail fast instead of leaving the machine;
// Go clients never proxy loopback hosts, so the registries stay reachable.
const deadProxy = "http://127.0.0.1:9"

// Names of the real model folders under ../shared/models.
const (
	modelSilero  = "silero-vad-v5" // one ONNX file
	modelFaceAPI = "face-api-tiny" // 2 .bin shards + 2 weights manifests
)

var models = []string{modelSilero, modelFaceAPI}

// cli runs modelreg and peer tools for one test with a fresh HOME and
// DOCKER_CONFIG, COSIGN_PASSWORD set and no route to the internet.
type cli struct {
	t *testing.T
	// dir is the working directory of every command (keygen writes here).
	dir string
	env []string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	home := t.TempDir()
	work := filepath.Join(home, "work")
	mkdirAll(t, work)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"TMPDIR=" + os.TempDir(),
		"COSIGN_PASSWORD=" + cosignPassword,
		"TUF_ROOT=" + filepath.Join(home, ".sigstore", "root"),
		"HTTPS_PROXY=" + deadProxy, "https_proxy=" + deadProxy,
		"HTTP_PROXY=" + deadProxy, "http_proxy=" + deadProxy,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	}
	return &cli{t: t, dir: work, env: env}
}

// result is what one command did.
type result struct {
	args   []string
	code   int
	stdout string
	stderr string
}

func (r result) String() string {
	return fmt.Sprintf("$ %s\nexit code %d\n--- stdout\n%s\n--- stderr\n%s", strings.Join(r.args, " "), r.code,
		tail(r.stdout, 6000), tail(r.stderr, 6000))
}

// with returns a copy of c that reports to t (a subtest must not fail its
// parent's t); HOME and the working directory stay the same.
func (c *cli) with(t *testing.T) *cli {
	cp := *c
	cp.t = t
	return &cp
}

// in returns a copy of c whose commands run in dir.
func (c *cli) in(dir string) *cli {
	cp := *c
	cp.dir = dir
	return &cp
}

// exec runs bin with args in c.dir and returns what it did. It fails the
// test only when the command cannot run at all or times out.
func (c *cli) exec(bin string, args ...string) result {
	c.t.Helper()
	r, err := runCommand(c.dir, c.env, bin, args...)
	if err != nil {
		c.t.Fatalf("%v\n%s", err, r)
	}
	return r
}

// runCommand runs bin; the error is set only when it could not run or
// timed out (a non-zero exit is in result.code). It is safe to call from
// goroutines other than the test's.
func runCommand(dir string, env []string, bin string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = childAttr()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	r := result{args: append([]string{filepath.Base(bin)}, args...), stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("command timed out after %s", cmdTimeout)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		return r, fmt.Errorf("cannot run %s: %w", bin, err)
	}
	return r, nil
}

// modelreg runs the built binary.
func (c *cli) modelreg(args ...string) result {
	c.t.Helper()
	needModelreg(c.t)
	return c.exec(modelregBin, args...)
}

// tool runs a pinned peer tool from .tools/bin (cosign, oras, registry).
func (c *cli) tool(name string, args ...string) result {
	c.t.Helper()
	return c.exec(toolPath(c.t, name), args...)
}

// toolPath is the path of a pinned tool; the test fails if it is missing.
func toolPath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(toolsDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found at %s: run `make tools` (builds the tools pinned in tools/go.mod into .tools/bin): %v", name, p, err)
	}
	return p
}

// ok runs modelreg and fails the test unless it exits 0.
func (c *cli) ok(args ...string) result {
	c.t.Helper()
	r := c.modelreg(args...)
	if r.code != exitOK {
		c.t.Fatalf("want exit code 0:\n%s", r)
	}
	return r
}

// jsonArgs builds the arguments of `modelreg COMMAND --output json ARGS…`;
// command may hold several words ("alias ls").
func jsonArgs(command string, args []string) []string {
	return append(append(strings.Fields(command), "--output", "json"), args...)
}

// okJSON runs `modelreg COMMAND --output json ARGS…`, requires exit 0 and
// decodes the one JSON document on stdout into v.
func (c *cli) okJSON(v any, command string, args ...string) result {
	c.t.Helper()
	r := c.ok(jsonArgs(command, args)...)
	decodeJSON(c.t, r, v)
	return r
}

// fails runs modelreg and requires one of the exit codes in want.
func (c *cli) fails(want []int, args ...string) result {
	c.t.Helper()
	r := c.modelreg(args...)
	if !slices.Contains(want, r.code) {
		c.t.Fatalf("want exit code in %v:\n%s", want, r)
	}
	return r
}

// toolOK runs a peer tool and fails the test unless it exits 0.
func (c *cli) toolOK(name string, args ...string) result {
	c.t.Helper()
	r := c.tool(name, args...)
	if r.code != exitOK {
		c.t.Fatalf("want exit code 0:\n%s", r)
	}
	return r
}

// decodeJSON requires stdout to be exactly one JSON document and decodes it.
func decodeJSON(t testing.TB, r result, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not a JSON document: %v\n%s", err, r)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON document:\n%s", r)
	}
}

// wantStderr requires every pattern (case-insensitive regular expressions)
// to match the command's stderr.
func wantStderr(t testing.TB, r result, patterns ...string) {
	t.Helper()
	matched := true
	for _, p := range patterns {
		if !regexp.MustCompile("(?is)" + p).MatchString(r.stderr) {
			t.Errorf("stderr does not match %q:\n%s", p, r)
			matched = false
		}
	}
	if matched {
		// With -v, show the message a user gets.
		t.Logf("$ %s\nexit code %d, stderr:\n%s", strings.Join(r.args, " "), r.code, strings.TrimSpace(r.stderr))
	}
}

// modelDir is the path of a real model under ../shared/models; the test
// fails with a clear message when it is missing.
func modelDir(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(modelsDir, name)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		t.Fatalf("model folder %s is missing: the e2e tests need the real models of the shared folder "+
			"beside the repository (%s/../shared/models, described in its SOURCES.md), or MODELREG_TEST_MODELS "+
			"naming a folder with silero-vad-v5 and face-api-tiny: %v", dir, repoRoot, err)
	}
	return dir
}

// copyModel copies a real model into a new temporary folder and returns it.
func copyModel(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	copyTree(t, modelDir(t, name), dst)
	return dst
}

// copyTree copies the regular files and folders of src into dst, files
// with mode 0644 (the shared models are read-only).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		default:
			return fmt.Errorf("%s: not a regular file or folder", p)
		}
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

func mkdirAll(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes data to path, creating parent folders.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	mkdirAll(t, filepath.Dir(path))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// randomBytes returns n random bytes (unique content for each test, so
// tests never share a blob in distribution's global blob store).
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// repoName makes a unique repository name from the test name, e.g.
// "e2e/testflow-olareg-silero-vad-v5-3fa9c1".
func repoName(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(t.Name()) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.TrimSuffix(b.String(), "-")
	if len(name) > 80 {
		name = name[:80]
	}
	return "e2e/" + name + "-" + hex.EncodeToString(randomBytes(t, 3))
}

// fileSHA256 returns "sha256:<hex>" of a file.
func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return "sha256:" + sha256Hex(data)
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// tree maps each path of a folder (relative, forward slashes) to what is
// there: "dir", "file sha256:<hex> <n> bytes" or "symlink -> target".
// Modes and times are not compared.
type tree map[string]string

// readTree lists every path under dir, relative with forward slashes.
// A missing dir gives an empty tree and ok=false.
func readTree(t testing.TB, dir string) (tr tree, ok bool) {
	t.Helper()
	tr = tree{}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return tr, false
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			tr[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			tr[rel] = "symlink -> " + target
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tr[rel] = fmt.Sprintf("file sha256:%s %d bytes", sha256Hex(data), len(data))
		default:
			tr[rel] = "special " + d.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return tr, true
}

// diffTrees lists the differences between two trees, sorted by path.
func diffTrees(want, got tree) []string {
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("missing %s (want %s)", p, w))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("differs %s: got %s, want %s", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s (%s)", p, g))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// assertSameFiles requires got to hold exactly the files and folders of
// want, byte for byte, under the same relative paths, and nothing else.
func assertSameFiles(t testing.TB, want, got string) {
	t.Helper()
	wt, ok := readTree(t, want)
	if !ok {
		t.Fatalf("expected folder %s does not exist", want)
	}
	gt, ok := readTree(t, got)
	if !ok {
		t.Fatalf("folder %s does not exist (want a copy of %s)", got, want)
	}
	if diffs := diffTrees(wt, gt); len(diffs) > 0 {
		t.Fatalf("%s differs from %s:\n  %s", got, want, strings.Join(diffs, "\n  "))
	}
	// The hashes above already compare contents; compare the bytes as
	// well so a failure can never come from the comparison itself.
	for p, e := range wt {
		if e == "dir" {
			continue
		}
		a, errA := os.ReadFile(filepath.Join(want, filepath.FromSlash(p)))
		b, errB := os.ReadFile(filepath.Join(got, filepath.FromSlash(p)))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s: contents differ (%v, %v)", p, errA, errB)
		}
	}
}

// snapshot is the listing and content of a folder at one moment.
type snapshot struct {
	dir    string
	exists bool
	tree   tree
}

func takeSnapshot(t testing.TB, dir string) snapshot {
	t.Helper()
	tr, ok := readTree(t, dir)
	return snapshot{dir: dir, exists: ok, tree: tr}
}

// assertUnchanged requires the folder to be exactly as in the snapshot.
func (s snapshot) assertUnchanged(t testing.TB, after result) {
	t.Helper()
	now := takeSnapshot(t, s.dir)
	if now.exists != s.exists {
		t.Fatalf("%s: existed before: %v, exists now: %v (the failed command must leave it as it was)\n%s", s.dir, s.exists, now.exists, after)
	}
	if diffs := diffTrees(s.tree, now.tree); len(diffs) > 0 {
		t.Fatalf("%s changed although the command failed:\n  %s\n%s", s.dir, strings.Join(diffs, "\n  "), after)
	}
}

// targetWithSentinel makes PARENT/target holding a sentinel file and
// returns the target and a snapshot of PARENT, so a check afterwards sees
// both changes inside the target and debris left beside it.
func targetWithSentinel(t testing.TB) (target string, parent snapshot) {
	t.Helper()
	parentDir := filepath.Join(t.TempDir(), "deploy")
	target = filepath.Join(parentDir, "model")
	writeFile(t, filepath.Join(target, "sentinel.txt"), []byte("present before the pull; must survive a refused pull\n"))
	return target, takeSnapshot(t, parentDir)
}
