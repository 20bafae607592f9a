package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Paths of the run, set once by TestMain and read-only afterwards.
var (
	// repoRoot is the root of the modelreg repository (the parent of the
	// package directory, which is the working directory of `go test`).
	repoRoot string
	// scratch is the temporary folder of the whole run, removed at the end.
	scratch string
	// modelregBin is the binary built from ./cmd/modelreg, or empty when
	// the build failed; modelregBuildErr then says why.
	modelregBin      string
	modelregBuildErr error
	// toolsDir holds the pinned peer tools (cosign, oras, registry).
	toolsDir string
	// modelsDir is ../shared/models relative to the repository root, or
	// MODELREG_TEST_MODELS.
	modelsDir string
	// fleet is every registry of the run, started or not (see registry.err).
	fleet []*registry
)

// buildTimeout bounds the build of ./cmd/modelreg; a cold build links the
// cosign library, which takes a few minutes on 2 cores.
const buildTimeout = 10 * time.Minute

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	toolsDir = filepath.Join(repoRoot, ".tools", "bin")
	modelsDir = filepath.Clean(filepath.Join(repoRoot, "..", "shared", "models"))
	if d := os.Getenv("MODELREG_TEST_MODELS"); d != "" {
		modelsDir = d
	}

	scratch, err = os.MkdirTemp("", "modelreg-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(scratch)

	start := time.Now()
	modelregBin, modelregBuildErr = buildModelreg(filepath.Join(scratch, "bin"))
	if modelregBuildErr != nil {
		// Tests that need the binary fail with this error; the harness
		// tests (TestFleet, TestPeerTools) still run.
		fmt.Fprintf(os.Stderr, "e2e: building ./cmd/modelreg failed; every test that runs modelreg will fail:\n%v\n", modelregBuildErr)
	} else {
		logf("built modelreg in %s", time.Since(start).Round(time.Millisecond))
	}

	fleet = startFleet(filepath.Join(scratch, "registries"))
	defer stopFleet(fleet)
	for _, r := range fleet {
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "e2e: registry %s did not start: %v\n", r.name, r.err)
		} else {
			logf("registry %s at %s (storage %s)", r.name, r.host, r.root)
		}
	}
	return m.Run()
}

// logf prints harness progress with -v only.
func logf(format string, args ...any) {
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
	}
}

// buildModelreg builds ./cmd/modelreg from the repository root into dir.
func buildModelreg(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go command not found in PATH: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "modelreg")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-tags", "urfave_cli_no_docs", "-o", out, "./cmd/modelreg")
	cmd.Dir = repoRoot
	cmd.SysProcAttr = childAttr()
	combined, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s", buildTimeout)
		}
		return "", fmt.Errorf("go build -o %s ./cmd/modelreg (in %s): %w\n%s", out, repoRoot, err, tail(string(combined), 4000))
	}
	return out, nil
}

// needModelreg fails the test when the binary could not be built.
func needModelreg(t testing.TB) {
	t.Helper()
	if modelregBuildErr != nil {
		t.Fatalf("the modelreg binary was not built, so this test cannot run: %v", modelregBuildErr)
	}
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
