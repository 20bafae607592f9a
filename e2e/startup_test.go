package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestStartupComputesNoHash runs `modelreg version` with the Go runtime's
// init trace (GODEBUG=inittrace=1) and checks that the olareg config
// package, which every command links for `modelreg serve`, no longer
// computes a bcrypt hash at package init: olareg v0.2.2 hashed the empty
// password there (about 75 ms of CPU and 5.4 KB of allocations on every
// command); our patched copy (third_party/olareg) does it on first use.
// The check counts allocated bytes, not time, so a busy machine cannot
// fail it.
func TestStartupComputesNoHash(t *testing.T) {
	t.Parallel()
	out := initTrace(t)
	// init PKG @T ms, C ms clock, B bytes, A allocs
	re := regexp.MustCompile(`(?m)^init github\.com/olareg/olareg/config @\S+ ms, (\S+) ms clock, (\d+) bytes, (\d+) allocs$`)
	m := re.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no init trace line for github.com/olareg/olareg/config in:\n%s", out)
	}
	bytes, _ := strconv.Atoi(string(m[2]))
	// The bcrypt state alone is over 4 KiB (blowfish S-boxes); the lazy
	// version allocates under 100 bytes.
	if bytes >= 1024 {
		t.Errorf("olareg/config init allocated %d bytes (%s ms): it computes its bcrypt hash at start-up again; see third_party/olareg/PATCHES.md", bytes, m[1])
	}
}

// TestStartupOurInitsAllocateLittle runs `modelreg version` with
// GODEBUG=inittrace=1 and checks that no package of this module allocates
// more than 8 KiB at init: regexps with counted repetitions ({0,127}
// compiles to ~60 KB), CEL environments and the goldmark renderer are built
// on first use (sync.OnceValue), not on every command. It also checks that
// urfave/cli's man-page writer (go-md2man, blackfriday) is not linked: the
// binary is built with -tags urfave_cli_no_docs. Bytes, not time, so a busy
// machine cannot fail it.
func TestStartupOurInitsAllocateLittle(t *testing.T) {
	t.Parallel()
	out := initTrace(t)
	re := regexp.MustCompile(`(?m)^init (\S+) @\S+ ms, (\S+) ms clock, (\d+) bytes, (\d+) allocs$`)
	ours := 0
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		pkg := m[1]
		if strings.Contains(pkg, "russross/blackfriday") || strings.Contains(pkg, "go-md2man") {
			t.Errorf("%s is initialized at start-up: build with -tags urfave_cli_no_docs (see the Makefile's BUILD_TAGS)", pkg)
		}
		if !strings.HasPrefix(pkg, "github.com/modelreg/modelreg") {
			continue
		}
		ours++
		if b, _ := strconv.Atoi(m[3]); b > 8<<10 {
			t.Errorf("init %s allocated %d bytes (%s ms): a package-level value is built at start-up; make it lazy (sync.OnceValue)", pkg, b, m[2])
		}
	}
	if ours == 0 {
		t.Fatalf("no init trace line of github.com/modelreg/modelreg in:\n%s", out)
	}
}

// initTrace runs `modelreg version` with GODEBUG=inittrace=1 and returns
// what it printed: one line "init PKG @T ms, C ms clock, B bytes, A allocs"
// per package init.
func initTrace(t *testing.T) []byte {
	t.Helper()
	needModelreg(t)
	cmd := exec.Command(modelregBin, "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("modelreg version: %v\n%s", err, out)
	}
	return out
}
