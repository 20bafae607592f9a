package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestGitignoreCoversUsingIt (issue 10, item 11): what following the
// README's "Using it" in the checkout leaves (the embedded registry's data,
// key pairs, the policy) is ignored, so a private key cannot be committed
// by `git add -A`; and no tracked file is ignored.
func TestGitignoreCoversUsingIt(t *testing.T) {
	t.Parallel()
	left := []string{"registry-data/docker/registry/v2/blobs/x", "release.key", "keys/eval.key", "release.pub", "policy.yaml"}
	out, err := exec.Command("git", append([]string{"-C", "..", "check-ignore", "--no-index", "-v"}, left...)...).CombinedOutput()
	if err != nil {
		t.Errorf("git check-ignore: %v (exit 1 means some path is not ignored)\n%s", err, out)
	}
	for _, p := range left {
		if !strings.Contains(string(out), "\t"+p+"\n") {
			t.Errorf(".gitignore does not cover %s:\n%s", p, out)
		}
	}
	tracked, err := exec.Command("git", "-C", "..", "ls-files", "-ci", "--exclude-standard").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(tracked))) > 0 {
		t.Errorf("tracked files that .gitignore ignores (%v):\n%s", err, tracked)
	}
}
