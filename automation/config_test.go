package automation

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelreg/modelreg/errdef"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const issueExample = `apiVersion: modelreg.dev/v1
kind: Automations
sources:
  - repository: registry.example.com/team/*      # glob over repositories
    poll: 30s                                    # any registry; 0 = notifications only
    policy: policy.yaml                          # protected aliases and their promoters
automations:
  - name: evaluate-new-versions
    on: {event: version.created}
    webhook: {url: https://ci.example.com/hooks/eval, secretEnv: EVAL_HOOK_SECRET}
  - name: tell-the-team
    on: {event: alias.moved, alias: "^(staging|production)$"}
    slack: {webhookEnv: SLACK_WEBHOOK_URL}
    teams: {webhookEnv: TEAMS_WEBHOOK_URL}
  - name: page-on-hand-move
    on: {event: alias.untracked}                 # a move no promotion record explains
    command: ["/usr/local/bin/page", "--sev", "2"]   # event JSON on stdin
`

func TestLoadIssueExample(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "automations.yaml")
	cfg, err := Parse(file, []byte(issueExample), env("EVAL_HOOK_SECRET", "s3", "SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/X", "TEAMS_WEBHOOK_URL", "https://prod.example.logic.azure.com/workflows/1"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sources[0]
	if s.Repository != "registry.example.com/team/*" || s.Poll != 30*time.Second || s.Policy != filepath.Join(dir, "policy.yaml") || s.Line != 4 {
		t.Errorf("source = %+v", s)
	}
	if !s.Matches("registry.example.com/team/m") || s.Matches("registry.example.com/team/a/b") || s.Matches("other.example.com/team/m") {
		t.Error("source glob matches wrongly")
	}
	if len(cfg.Automations) != 3 {
		t.Fatalf("automations = %d", len(cfg.Automations))
	}
	a := cfg.Automations
	if string(a[0].Webhook.Secret) != "s3" || a[0].On.Event != VersionCreated || a[0].Retry.MaxAttempts != DefaultMaxAttempts {
		t.Errorf("automation 0 = %+v", a[0])
	}
	if a[1].Slack == nil || a[1].Teams == nil || !a[1].On.Match(Event{Type: AliasMoved, Alias: "production"}) || a[1].On.Match(Event{Type: AliasMoved, Alias: "latest"}) {
		t.Errorf("automation 1 = %+v", a[1])
	}
	if strings.Join(a[2].Command, " ") != "/usr/local/bin/page --sev 2" {
		t.Errorf("automation 2 command = %v", a[2].Command)
	}
}

func TestLoadReportsEveryProblemWithItsLine(t *testing.T) {
	src := `apiVersion: modelreg.dev/v2
kind: Automations
sources:
  - repository: "*/team"
    poll: soon
automations:
  - name: a
    on: {event: version.made}
    webhook: {url: ftp://x, secretEnv: UNSET_SECRET}
  - name: a
    on: {event: alias.moved, alias: "("}
    slack: {webhookEnv: UNSET_URL}
    colour: red
  - name: b
    on: {event: alias.moved}
`
	_, err := Parse("auto.yaml", []byte(src), env())
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("error does not wrap ErrInvalidInput: %v", err)
	}
	for _, want := range []string{
		"auto.yaml:1: apiVersion: is \"modelreg.dev/v2\"",
		"auto.yaml:4: sources[0].repository: \"*/team\"",
		"auto.yaml:5: sources[0].poll: \"soon\"",
		"auto.yaml:8: automations[0].on.event: unknown event \"version.made\"",
		"auto.yaml:9: automations[0].webhook.url: \"ftp://x\"",
		"auto.yaml:9: automations[0].webhook.secretEnv: the environment variable UNSET_SECRET is not set",
		"auto.yaml:11: automations[1].on.alias: not a regular expression",
		"auto.yaml:12: automations[1].slack.webhookEnv: the environment variable UNSET_URL is not set",
		"auto.yaml:13: automations[1].colour: unknown field",
		"auto.yaml:14: automations[2]: no target",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestLoadDuplicateNameAndSyntax(t *testing.T) {
	src := "apiVersion: modelreg.dev/v1\nkind: Automations\nsources: [{repository: r.example.com/m}]\nautomations:\n  - {name: a, on: {event: version.created}, command: [true]}\n  - {name: a, on: {event: version.created}, command: [true]}\n"
	_, err := Parse("f.yaml", []byte(src), env())
	if err == nil || !strings.Contains(err.Error(), `f.yaml:6: automations[1].name: "a" is used twice (first on line 5)`) {
		t.Errorf("duplicate names: %v", err)
	}
	_, err = Parse("f.yaml", []byte("sources: [\n  a: b\n"), env())
	if err == nil || !strings.HasPrefix(err.Error(), "f.yaml:") || !strings.Contains(err.Error(), "invalid YAML") {
		t.Errorf("syntax error: %v", err)
	}
}
