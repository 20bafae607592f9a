package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The JSON error document (issue 10, item 9) and a repository that does
// not exist (item 10): every failure with --output json prints one JSON
// document on stdout whose "error" member has a stable code, the exit
// code, the message and, for a denial, every failing rule; the text on
// stderr stays.

// errorDocJSON is the "error" member of a failure's JSON document.
type errorDocJSON struct {
	Code     string `json:"code"`
	ExitCode int    `json:"exitCode"`
	Message  string `json:"message"`
	Rules    []struct {
		Rule   string `json:"rule"`
		Passed bool   `json:"passed"`
		Reason string `json:"reason"`
	} `json:"rules"`
}

// failsJSON runs `modelreg ARGS… --output json`, requires exit code want,
// one JSON document on stdout with an "error" member of code, and the
// text on stderr; it returns the error member and the whole document.
func failsJSON(t *testing.T, c *cli, want int, code string, command string, args ...string) (errorDocJSON, map[string]json.RawMessage) {
	t.Helper()
	res := c.with(t).modelreg(jsonArgs(command, args)...)
	if res.code != want {
		t.Fatalf("want exit code %d:\n%s", want, res)
	}
	var top map[string]json.RawMessage
	decodeJSON(t, res, &top)
	var e errorDocJSON
	if err := json.Unmarshal(top["error"], &e); err != nil || e.Code != code || e.ExitCode != want || e.Message == "" {
		t.Fatalf("error member %s (%v): want code %q, exitCode %d and a message\n%s", top["error"], err, code, want, res)
	}
	if !strings.Contains(res.stderr, "modelreg: "+e.Message) {
		t.Errorf("stderr does not carry the message %q:\n%s", e.Message, res)
	}
	if code != "denied" && len(e.Rules) > 0 {
		t.Errorf("code %s carries rules %+v; only denials do", code, e.Rules)
	}
	return e, top
}

// TestJSONErrorDeniedPull: a pull refused at deploy time (production moved
// by hand to an unsigned version) prints one document carrying the
// reasons, on every registry.
func TestJSONErrorDeniedPull(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		p := newPromo(t, r)
		pol := p.policy("policy.yaml", `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  production:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]}
`)
		v := p.push("unsigned")
		p.moveTag(v.Digest, "production")
		target := t.TempDir()

		e, top := failsJSON(t, p.c, exitDenied, "denied", "pull", p.ref(":production"), target, "--policy", pol)
		var rules []string
		for _, r := range e.Rules {
			if r.Passed || r.Reason == "" {
				t.Errorf("rule %+v: want only failing rules, each with a reason", r)
			}
			rules = append(rules, r.Rule)
		}
		if !slices.Contains(rules, "signatures") || len(rules) < 2 {
			t.Errorf("failing rules %v: want signatures and the missing promotion record", rules)
		}
		var digest string
		_ = json.Unmarshal(top["digest"], &digest)
		if digest != v.Digest || string(top["denied"]) != "true" {
			t.Errorf("document: digest %s denied %s, want %s and true", top["digest"], top["denied"], v.Digest)
		}

		e, _ = failsJSON(t, p.c, exitDenied, "denied", "pull", p.ref(":production"), target, "--key", p.pub("release"))
		if len(e.Rules) != 1 || e.Rules[0].Rule != "signatures" || !strings.Contains(e.Rules[0].Reason, "release.pub") {
			t.Errorf("pull --key: rules %+v, want one failing signatures rule naming release.pub", e.Rules)
		}

		// A refused promotion: one document, the result beside "error".
		e, top = failsJSON(t, p.c, exitDenied, "denied", "promote", p.ref(":"+v.Version), "--to", "production", "--policy", pol, "--key", p.key("promoter"))
		if string(top["moved"]) != "false" || len(e.Rules) == 0 || e.Rules[0].Rule != "signatures" {
			t.Errorf("refused promote: moved %s, rules %+v; want false and the signatures rule", top["moved"], e.Rules)
		}
	})
}

// TestMissingRepository: history of a repository that was never pushed
// exits 1 with not found on every registry (they answer 404 NAME_UNKNOWN
// or an empty list), while history, versions and alias ls work once it
// holds a version. versions and alias ls of a missing repository follow
// the registry's answer, as oras does: TestListingFollowsRegistry.
func TestMissingRepository(t *testing.T) {
	t.Parallel()
	forEachRegistry(t, func(t *testing.T, r *registry) {
		c := newCLI(t)
		repo := repoName(t)
		missing := r.ref(repo+"-misspelt", "")
		for _, command := range []string{"history"} {
			res := c.with(t).modelreg(append(strings.Fields(command), missing)...)
			if res.code != exitError {
				t.Errorf("%s of a missing repository: want exit code 1:\n%s", command, res)
			}
			wantStderr(t, res, `not found`, regexp.QuoteMeta(repo+"-misspelt"))
			failsJSON(t, c, exitError, "not_found", command, missing)
		}
		var p pushJSON
		c.okJSON(&p, "push", r.ref(repo, ""), copyModel(t, modelSilero))
		c.ok("versions", r.ref(repo, ""))
		c.ok("history", r.ref(repo, ""))
		c.ok("alias", "ls", r.ref(repo, ""))
	})
}

// TestJSONErrorCodes: usage errors, bad input, an unreachable registry and
// a registry that wants credentials each get their code.
func TestJSONErrorCodes(t *testing.T) {
	t.Parallel()
	c := newCLI(t)

	t.Run("usage", func(t *testing.T) {
		failsJSON(t, c, exitUsage, "usage", "pull", "127.0.0.1:1/e2e/usage:v1")
		failsJSON(t, c, exitUsage, "usage", "versions", "--no-such-flag", "127.0.0.1:1/e2e/usage")
	})
	t.Run("uppercase repository", func(t *testing.T) {
		e, _ := failsJSON(t, c, exitError, "invalid_input", "versions", "127.0.0.1:1/Team/Sentiment")
		if !strings.Contains(e.Message, "must be lowercase") || !strings.Contains(e.Message, "127.0.0.1:1/team/sentiment") {
			t.Errorf("message %q: want the lowercase rule and the name to use", e.Message)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		failsJSON(t, c, exitError, "unavailable", "versions", "127.0.0.1:1/e2e/unreachable")
	})
	t.Run("unauthorized", func(t *testing.T) {
		// A registry that wants credentials we do not have, as a private
		// registry answers an anonymous client.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("WWW-Authenticate", `Basic realm="e2e"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
		}))
		defer srv.Close()
		host := strings.TrimPrefix(srv.URL, "http://")
		failsJSON(t, c, exitError, "unauthorized", "versions", host+"/e2e/private")
		failsJSON(t, c, exitError, "unauthorized", "pull", host+"/e2e/private:v1", t.TempDir())
	})
}
