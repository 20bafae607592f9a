package automation

import (
	"fmt"
	"net"
	"strings"
)

// Summary is the one-line text of an event, for chat messages and logs.
func Summary(e Event) string {
	v := versionOr(e.Version, e.Digest)
	switch e.Type {
	case VersionCreated:
		return fmt.Sprintf("New model version %s of %s", v, e.Repository)
	case AliasMoved:
		if e.NewDigest == "" {
			return fmt.Sprintf("%s: alias %s was removed (it named %s)", e.Repository, e.Alias, short(e.OldDigest))
		}
		was := "unset"
		if e.OldDigest != "" {
			was = short(e.OldDigest)
		}
		return fmt.Sprintf("%s: alias %s now names %s (was %s)", e.Repository, e.Alias, v, was)
	case AliasUntracked:
		return fmt.Sprintf("%s: protected alias %s was moved to %s outside `modelreg promote`: no promoter-signed record explains it", e.Repository, e.Alias, v)
	case PromotionRecorded:
		who := ""
		if e.Record != nil && e.Record.Actor != "" {
			who = " by " + e.Record.Actor
		}
		return fmt.Sprintf("%s: %s promoted to %s%s", e.Repository, v, e.Alias, who)
	case SignatureAdded, AttestationAdded:
		what := "signature"
		if e.Type == AttestationAdded {
			what = "attestation " + e.PredicateType
		}
		trust := "not verified by a policy key"
		if e.Verified != nil && *e.Verified {
			trust = "verified by key " + short(e.KeyID)
		}
		return fmt.Sprintf("%s: new %s of %s, %s", e.Repository, what, v, trust)
	}
	return e.Type + " " + e.Repository
}

func versionOr(v, d string) string {
	if v != "" {
		return v
	}
	return short(d)
}

func short(d string) string {
	if len(d) > 19 && strings.HasPrefix(d, "sha256:") {
		return d[:19]
	}
	return d
}

// VersionURL is the link chat messages give for the event's version: the
// registry's manifest URL (distribution-spec GET /v2/REPO/manifests/DIGEST),
// plain http for loopback hosts as modelreg speaks to them.
func VersionURL(e Event) string {
	host, repo, _ := strings.Cut(e.Repository, "/")
	scheme := "https"
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
		scheme = "http"
	}
	return fmt.Sprintf("%s://%s/v2/%s/manifests/%s", scheme, host, repo, e.Digest)
}

// facts are the name/value pairs both chat formats show.
func facts(e Event) [][2]string {
	f := [][2]string{{"Repository", e.Repository}}
	if e.Version != "" {
		f = append(f, [2]string{"Version", e.Version})
	}
	if e.Alias != "" {
		f = append(f, [2]string{"Alias", e.Alias})
	}
	f = append(f, [2]string{"Digest", e.Digest})
	if e.OldDigest != "" && e.Type != VersionCreated {
		f = append(f, [2]string{"Previous", e.OldDigest})
	}
	if e.Record != nil {
		f = append(f, [2]string{"Sequence", fmt.Sprint(e.Record.Sequence)}, [2]string{"Actor", e.Record.Actor})
	}
	if e.PredicateType != "" {
		f = append(f, [2]string{"Predicate type", e.PredicateType})
	}
	if e.KeyID != "" {
		f = append(f, [2]string{"Key", e.KeyID})
	}
	if e.Verified != nil {
		f = append(f, [2]string{"Verified", fmt.Sprint(*e.Verified)})
	}
	return f
}

// SlackMessage is the body of a Slack incoming-webhook POST: a text
// fallback (notifications, screen readers) and Block Kit blocks — a
// section, its fields, and a button linking the version
// (https://api.slack.com/messaging/webhooks, https://api.slack.com/block-kit).
func SlackMessage(e Event) map[string]any {
	summary := Summary(e)
	var fields []map[string]any
	for _, f := range facts(e) {
		fields = append(fields, map[string]any{"type": "mrkdwn", "text": "*" + f[0] + "*\n" + slackEscape(f[1])})
	}
	return map[string]any{
		"text": slackEscape(summary),
		"blocks": []map[string]any{
			{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*" + slackEscape(e.Type) + "* " + slackEscape(summary)}},
			{"type": "section", "fields": fields},
			{"type": "actions", "elements": []map[string]any{{
				"type": "button", "text": map[string]any{"type": "plain_text", "text": "Open version"}, "url": VersionURL(e),
			}}},
			{"type": "context", "elements": []map[string]any{{"type": "mrkdwn", "text": "modelreg watch · event " + e.ID}}},
		},
	}
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// TeamsMessage is the body of a Teams workflow webhook POST ("When a Teams
// webhook request is received"): a message with one Adaptive Card 1.4
// attachment holding the summary, a FactSet and an Action.OpenUrl to the
// version (https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using).
func TeamsMessage(e Event) map[string]any {
	var fs []map[string]any
	for _, f := range facts(e) {
		fs = append(fs, map[string]any{"title": f[0], "value": f[1]})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body": []map[string]any{
			{"type": "TextBlock", "text": e.Type, "weight": "Bolder", "size": "Medium"},
			{"type": "TextBlock", "text": Summary(e), "wrap": true},
			{"type": "FactSet", "facts": fs},
		},
		"actions": []map[string]any{{"type": "Action.OpenUrl", "title": "Open version", "url": VersionURL(e)}},
	}
	return map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	}
}
