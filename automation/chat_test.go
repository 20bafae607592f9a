package automation

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/modelreg/modelreg"
)

var sampleMove = Event{
	ID: "0123456789abcdef0123456789abcdef", Type: AliasMoved, Time: "2026-12-02T06:00:00Z",
	Repository: "registry.example.com/team/sentiment", Digest: "sha256:" + strings.Repeat("b", 64), Version: "v3",
	Alias: "production", OldDigest: "sha256:" + strings.Repeat("a", 64), NewDigest: "sha256:" + strings.Repeat("b", 64),
	Record: &modelreg.PromotionRecord{PromotionPredicate: modelreg.PromotionPredicate{Alias: "production", Sequence: 4, Actor: "alice@ci"}},
}

// conforms checks that got has every field the fixture (a documented
// example) has, with the same JSON kind, and the same value wherever the
// fixture's field is a fixed discriminator ("type", "contentType",
// "$schema", "version"); array elements are matched by their "type".
func conforms(t *testing.T, where string, fixture, got any) {
	t.Helper()
	switch f := fixture.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: want an object, got %T", where, got)
			return
		}
		for k, fv := range f {
			gv, ok := g[k]
			if !ok {
				t.Errorf("%s.%s: missing", where, k)
				continue
			}
			switch k {
			case "type", "contentType", "$schema", "version":
				if gv != fv {
					t.Errorf("%s.%s = %v; want %v", where, k, gv, fv)
				}
			}
			conforms(t, where+"."+k, fv, gv)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) == 0 {
			t.Errorf("%s: want a non-empty array, got %v", where, got)
			return
		}
		for i, fe := range f {
			typ, _ := fe.(map[string]any)["type"]
			var match any
			for _, ge := range g {
				if m, ok := ge.(map[string]any); ok && (typ == nil || m["type"] == typ) {
					if typ != nil && m["type"] == "section" && (fe.(map[string]any)["fields"] != nil) != (m["fields"] != nil) {
						continue
					}
					match = ge
					break
				}
			}
			if match == nil {
				t.Errorf("%s[%d]: no element of type %v", where, i, typ)
				continue
			}
			conforms(t, fmt.Sprintf("%s[%d]", where, i), fe, match)
		}
	case string:
		if _, ok := got.(string); !ok {
			t.Errorf("%s: want a string, got %T", where, got)
		}
	case nil:
		if got != nil {
			t.Errorf("%s: want null, got %v", where, got)
		}
	}
}

func roundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func fixture(t *testing.T, name string) any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSlackMessageConformsToIncomingWebhookFormat(t *testing.T) {
	got := roundTrip(t, SlackMessage(sampleMove))
	conforms(t, "slack", fixture(t, "slack-incoming-webhook.json"), got)
	b, _ := json.Marshal(got)
	for _, want := range []string{
		`"text":"registry.example.com/team/sentiment: alias production now names v3 (was sha256:aaaaaaaaaaaa)"`,
		`"url":"https://registry.example.com/v2/team/sentiment/manifests/sha256:bbbb`,
		`*Actor*\nalice@ci`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("slack message lacks %s:\n%s", want, b)
		}
	}
}

func TestTeamsMessageConformsToWorkflowAdaptiveCard(t *testing.T) {
	got := roundTrip(t, TeamsMessage(sampleMove))
	conforms(t, "teams", fixture(t, "teams-workflow-adaptive-card.json"), got)
	b, _ := json.Marshal(got)
	for _, want := range []string{`"title":"Alias","value":"production"`, `"type":"Action.OpenUrl"`, `"url":"https://registry.example.com/v2/team/sentiment/manifests/sha256:bbbb`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("teams message lacks %s:\n%s", want, b)
		}
	}
}

func TestSlackEscapesMarkup(t *testing.T) {
	// MODELREG_ACTOR is free text, and lands in the summary and the facts.
	e := sampleMove
	e.Type = PromotionRecorded
	e.Record = &modelreg.PromotionRecord{PromotionPredicate: modelreg.PromotionPredicate{Actor: "<!channel> & co"}}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(SlackMessage(e)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<!channel>") {
		t.Errorf("repository markup reached Slack unescaped: %s", b.String())
	}
}

func TestVersionURLLoopbackIsPlainHTTP(t *testing.T) {
	e := sampleMove
	e.Repository = "127.0.0.1:5000/team/m"
	if u := VersionURL(e); !strings.HasPrefix(u, "http://127.0.0.1:5000/v2/team/m/manifests/sha256:") {
		t.Errorf("VersionURL = %s", u)
	}
}
