package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionBash loads `modelreg completion bash` into a real bash and
// runs the completion function the way bash does on TAB: commands,
// subcommands and flags come from the binary itself.
func TestCompletionBash(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	script := filepath.Join(t.TempDir(), "modelreg.bash")
	writeFile(t, script, []byte(c.ok("completion", "bash").stdout))
	// modelreg on PATH, as the script completes the command named modelreg.
	bin := t.TempDir()
	if err := os.Symlink(modelregBin, filepath.Join(bin, "modelreg")); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) string {
		t.Helper()
		line := `source "$1"; complete -p modelreg || exit 9; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _modelreg_complete; echo "${COMPREPLY[*]}"`
		cmd := exec.Command("bash", append([]string{"--norc", "--noprofile", "-c", line, "bash", script}, words...)...)
		cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if !strings.HasPrefix(lines[0], "complete ") || !strings.HasSuffix(lines[0], " modelreg") {
			t.Fatalf("complete -p modelreg: %q", lines[0])
		}
		return lines[len(lines)-1]
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"modelreg", "pu"}, "push pull"},
		{[]string{"modelreg", "pro"}, "promote"},
		{[]string{"modelreg", "alias", "s"}, "set"},
		{[]string{"modelreg", "pull", "--inc"}, "--include"},
		{[]string{"modelreg", "pull", "localhost:5000/team/model", "--pol"}, "--policy"},
		{[]string{"modelreg", "completion", "--he"}, "--help"},
	} {
		if got := complete(tc.words...); got != tc.want {
			t.Errorf("completing %q: got %q, want %q", tc.words, got, tc.want)
		}
	}
}

// TestCompletionScripts: the zsh and fish scripts name modelreg and cover
// every command (zsh asks the binary like bash; fish lists them), and an
// unknown shell is a usage error.
func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	zsh := c.ok("completion", "zsh").stdout
	if !strings.HasPrefix(zsh, "#compdef modelreg\n") || !strings.Contains(zsh, "compdef _modelreg modelreg") || !strings.Contains(zsh, "--generate-bash-completion") {
		t.Errorf("zsh script:\n%s", zsh)
	}
	fish := c.ok("completion", "fish").stdout
	for _, command := range []string{"push", "pull", "promote", "history", "completion"} {
		if !strings.Contains(fish, "complete -r -c modelreg -n '__fish_modelreg_no_subcommand' -a '"+command+"'") {
			t.Errorf("fish script does not complete the command %s", command)
		}
	}
	if !strings.Contains(fish, "__fish_seen_subcommand_from pull' -f -l include") {
		t.Errorf("fish script does not complete pull --include")
	}
	res := c.fails([]int{exitUsage}, "completion", "tcsh")
	wantStderr(t, res, `bash, zsh or fish`)
}
