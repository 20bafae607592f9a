package policy

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/modelreg/modelreg/errdef"
)

// Decision is the outcome of evaluating one alias section over one
// evidence document. Its JSON form is what `--output json` prints and what
// an audit record stores.
type Decision struct {
	// Alias is the alias judged.
	Alias string `json:"alias"`
	// Allowed is true when every rule passed (also when the section has
	// no rules).
	Allowed bool `json:"allowed"`
	// PolicyDigest is the [Policy.Digest] of the policy applied.
	PolicyDigest string `json:"policyDigest"`
	// Rules lists every rule of the section, passed or failed, in the
	// order signatures, annotations, files, attestations[i], approvals,
	// requireAlias, condition. Never nil.
	Rules []RuleResult `json:"rules"`
}

// RuleResult is the outcome of one rule.
type RuleResult struct {
	// Rule names the rule: "signatures", "annotations", "files",
	// "attestations[i] (<predicateType>)", "approvals", "requireAlias" or
	// "condition".
	Rule string `json:"rule"`
	// Passed is true when the rule is satisfied.
	Passed bool `json:"passed"`
	// Reason says why, in a release owner's words, naming keys by path,
	// e.g. "2 of 2 required signers verified: keys/a.pub, keys/b.pub".
	Reason string `json:"reason"`
}

// Failures returns the rules that failed, in order; nil when none did.
func (d Decision) Failures() []RuleResult {
	var out []RuleResult
	for _, r := range d.Rules {
		if !r.Passed {
			out = append(out, r)
		}
	}
	return out
}

// Error returns nil when the decision allows the promotion, and otherwise an
// error wrapping errdef.ErrDenied whose message names the alias and every
// failing rule with its reason, e.g.
//
//	promotion to "production" refused: signatures: 0 of 1 required signers verified (no valid signature by keys/release.pub); files: no file matches "README.md"
func (d Decision) Error() error {
	if d.Allowed {
		return nil
	}
	fails := d.Failures()
	labels := make([]string, len(fails))
	count := map[string]int{}
	for i, f := range fails {
		labels[i] = ruleLabel(f.Rule)
		count[labels[i]]++
	}
	parts := make([]string, len(fails))
	for i, f := range fails {
		label := labels[i]
		if count[label] > 1 { // two attestation rules of one type
			label = f.Rule
		}
		parts[i] = label + ": " + f.Reason
	}
	msg := fmt.Sprintf("promotion to %q refused", d.Alias)
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, "; ")
	}
	return &deniedError{msg: msg}
}

// ruleLabel turns "attestations[0] (T)" into "attestation T"; other rule
// names read well as they are.
func ruleLabel(rule string) string {
	if rest, ok := strings.CutPrefix(rule, "attestations["); ok {
		if _, typ, ok := strings.Cut(rest, "] ("); ok && strings.HasSuffix(typ, ")") {
			return "attestation " + strings.TrimSuffix(typ, ")")
		}
	}
	return rule
}

// deniedError is a refusal; errors.Is(err, errdef.ErrDenied) holds.
type deniedError struct{ msg string }

func (e *deniedError) Error() string { return e.msg }
func (e *deniedError) Unwrap() error { return errdef.ErrDenied }

// Evaluate judges the evidence against the rules of alias. Every rule is
// evaluated, none short-circuits, and each is reported in the [Decision].
// ev.Alias is set to alias for the evaluation.
//
// A CEL condition that fails at run time (a missing key, a type mismatch,
// the cost limit) fails its rule, with the error as the reason; it is not a
// Go error. Evaluate returns an error wrapping errdef.ErrInvalidInput only
// when the policy has no section for alias, or when the evidence does not
// encode as JSON (e.g. a NaN in a predicate).
func (p *Policy) Evaluate(alias string, ev Evidence) (Decision, error) {
	rules, ok := p.Aliases[alias]
	if !ok {
		return Decision{}, fmt.Errorf("%w: policy %s has no section for alias %q (it protects %s)",
			errdef.ErrInvalidInput, p.Path, alias, strings.Join(p.AliasNames(), ", "))
	}
	if rules == nil {
		rules = &AliasRules{}
	}
	ev.Alias = alias
	vars, err := ev.celVars()
	if err != nil {
		return Decision{}, err
	}

	d := Decision{Alias: alias, PolicyDigest: p.Digest, Rules: []RuleResult{}}
	if rules.Signatures != nil {
		d.Rules = append(d.Rules, evalSignatures(*rules.Signatures, ev.Signatures))
	}
	if len(rules.Annotations) > 0 {
		d.Rules = append(d.Rules, evalAnnotations(rules.Annotations, ev.Annotations))
	}
	if len(rules.Files) > 0 {
		d.Rules = append(d.Rules, evalFiles(rules.Files, ev.Files))
	}
	for i, r := range rules.Attestations {
		d.Rules = append(d.Rules, evalAttestation(i, r, ev.Attestations, vars))
	}
	if rules.Approvals != nil {
		d.Rules = append(d.Rules, evalApprovals(*rules.Approvals, ev.Approvals))
	}
	if len(rules.RequireAlias) > 0 {
		d.Rules = append(d.Rules, p.evalRequireAlias(rules.RequireAlias, ev.Aliases))
	}
	if rules.Condition != "" {
		d.Rules = append(d.Rules, evalCondition(rules.Condition, rules.cond, vars))
	}
	d.Allowed = len(d.Failures()) == 0
	return d, nil
}

// keyRing is the distinct keys of a rule, by ID, in file order.
type keyRing struct {
	ids  []string
	path map[string]string // ID → first path naming it
}

func newKeyRing(keys []Key) keyRing {
	r := keyRing{path: map[string]string{}}
	for _, k := range keys {
		if _, dup := r.path[k.ID]; !dup {
			r.path[k.ID] = k.Path
			r.ids = append(r.ids, k.ID)
		}
	}
	return r
}

func (r keyRing) has(id string) bool { _, ok := r.path[id]; return ok }

// paths returns the paths of the ring's keys.
func (r keyRing) paths() []string {
	out := make([]string, len(r.ids))
	for i, id := range r.ids {
		out[i] = r.path[id]
	}
	return out
}

// split returns the paths of the ring's keys in ids and of those not in it.
func (r keyRing) split(ids map[string]bool) (in, out []string) {
	for _, id := range r.ids {
		if ids[id] {
			in = append(in, r.path[id])
		} else {
			out = append(out, r.path[id])
		}
	}
	return in, out
}

func evalSignatures(r SignatureRule, sigs []Signature) RuleResult {
	ring := newKeyRing(r.Keys)
	signed, foreign := map[string]bool{}, map[string]bool{}
	for _, s := range sigs {
		if ring.has(s.KeyID) {
			signed[s.KeyID] = true
		} else {
			foreign[s.KeyID] = true
		}
	}
	got, missing := ring.split(signed)
	res := thresholdResult("signatures", got, missing, max(r.MinSigners, 1),
		"required signers verified", "signed by", "no valid signature by")
	if len(foreign) > 0 {
		res.Reason += fmt.Sprintf("; ignored: signatures by %s this rule does not list", count(len(foreign), "other key"))
	}
	return res
}

// thresholdResult judges an N-of-M rule: got are the keys (by path) that
// count, missing those that do not, need the N. The reason reads e.g.
// "1 of 2 required approvals (approved by alice; none by bob, carol)".
func thresholdResult(rule string, got, missing []string, need int, what, gotBy, missingBy string) RuleResult {
	res := RuleResult{Rule: rule, Passed: len(got) >= need}
	res.Reason = fmt.Sprintf("%d of %d %s", len(got), need, what)
	if res.Passed {
		res.Reason += ": " + strings.Join(got, ", ")
		return res
	}
	var why []string
	if len(got) > 0 {
		why = append(why, gotBy+" "+strings.Join(got, ", "))
	}
	why = append(why, missingBy+" "+strings.Join(missing, ", "))
	res.Reason += " (" + strings.Join(why, "; ") + ")"
	return res
}

func evalApprovals(r ApprovalRule, approvals []Approval) RuleResult {
	ring := newKeyRing(r.Keys)
	approved, foreign := map[string]bool{}, map[string]bool{}
	times, who := map[string]int{}, map[string]string{}
	for _, a := range approvals {
		if !ring.has(a.KeyID) {
			foreign[a.KeyID] = true
			continue
		}
		approved[a.KeyID] = true
		times[a.KeyID]++
		if who[a.KeyID] == "" {
			who[a.KeyID] = a.Approver
		}
	}
	var got, missing, repeated []string
	for _, id := range ring.ids {
		p := ring.path[id]
		switch {
		case !approved[id]:
			missing = append(missing, p)
			continue
		case who[id] != "":
			got = append(got, who[id]+" ("+p+")")
		default:
			got = append(got, p)
		}
		if times[id] > 1 {
			repeated = append(repeated, fmt.Sprintf("%d approvals by %s count once", times[id], p))
		}
	}
	res := thresholdResult("approvals", got, missing, max(r.Min, 1),
		"required approvals", "approved by", "none by")
	if len(repeated) > 0 {
		res.Reason += "; " + strings.Join(repeated, ", ")
	}
	if len(foreign) > 0 {
		res.Reason += fmt.Sprintf("; ignored: approvals by %s this rule does not list", count(len(foreign), "other key"))
	}
	return res
}

func evalAnnotations(required []string, annotations map[string]string) RuleResult {
	var missing, empty []string
	for _, k := range required {
		v, ok := annotations[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case strings.TrimSpace(v) == "":
			empty = append(empty, k)
		}
	}
	res := RuleResult{Rule: "annotations", Passed: len(missing)+len(empty) == 0}
	if res.Passed {
		res.Reason = fmt.Sprintf("all %s set: %s", count(len(required), "required annotation"), strings.Join(required, ", "))
		return res
	}
	var why []string
	if len(missing) > 0 {
		why = append(why, "missing "+strings.Join(missing, ", "))
	}
	if len(empty) > 0 {
		why = append(why, "empty "+strings.Join(empty, ", "))
	}
	res.Reason = strings.Join(why, "; ")
	return res
}

func evalFiles(patterns []string, files []File) RuleResult {
	var matched, unmatched []string
	for _, pat := range patterns {
		var hits []string
		for _, f := range files {
			if ok, _ := path.Match(pat, path.Clean(f.Path)); ok {
				hits = append(hits, f.Path)
			}
		}
		switch len(hits) {
		case 0:
			unmatched = append(unmatched, strconv.Quote(pat)+folderHint(pat, files))
		case 1:
			matched = append(matched, fmt.Sprintf("%q: %s", pat, hits[0]))
		default:
			matched = append(matched, fmt.Sprintf("%q: %s (+%d more)", pat, hits[0], len(hits)-1))
		}
	}
	res := RuleResult{Rule: "files", Passed: len(unmatched) == 0}
	switch {
	case res.Passed:
		res.Reason = "every pattern matches a file: " + strings.Join(matched, ", ")
	case len(files) == 0:
		res.Reason = "the version has no files, so nothing matches " + strings.Join(unmatched, ", ")
	case len(unmatched) == 1:
		res.Reason = "no file matches " + unmatched[0]
	default:
		res.Reason = "no file matches any of these patterns: " + strings.Join(unmatched, ", ")
	}
	return res
}

// folderHint explains a pattern that misses a file only because the file is
// in a folder: path.Match's "*" does not cross "/".
func folderHint(pat string, files []File) string {
	if strings.Contains(pat, "/") {
		return ""
	}
	for _, f := range files {
		p := path.Clean(f.Path)
		if ok, _ := path.Match(pat, path.Base(p)); ok && strings.Contains(p, "/") {
			want := strings.Repeat("*/", strings.Count(p, "/")) + pat
			return fmt.Sprintf(` (%s is in a folder and "*" stops at "/"; %q would match it)`, p, want)
		}
	}
	return ""
}

func evalAttestation(i int, r AttestationRule, atts []Attestation, vars map[string]any) RuleResult {
	res := RuleResult{Rule: fmt.Sprintf("attestations[%d] (%s)", i, r.PredicateType)}
	ring := newKeyRing(r.Keys)
	allowed := strings.Join(ring.paths(), ", ")

	var ours []int // indexes into atts (and vars["attestations"])
	foreign := 0
	signers := map[string]bool{}
	for j, a := range atts {
		if a.PredicateType != r.PredicateType {
			continue
		}
		if !ring.has(a.KeyID) {
			foreign++
			continue
		}
		ours = append(ours, j)
		signers[a.KeyID] = true
	}
	if len(ours) == 0 {
		res.Reason = "no verified attestation of this type signed by " + allowed
		if foreign > 0 {
			res.Reason += fmt.Sprintf(" (ignored: %s of this type signed by keys this rule does not list)", count(foreign, "attestation"))
		}
		return res
	}
	signedBy, _ := ring.split(signers)
	by := strings.Join(signedBy, ", ")
	if r.Condition == "" {
		res.Passed = true
		res.Reason = fmt.Sprintf("%s signed by %s", count(len(ours), "verified attestation"), by)
		return res
	}
	if r.cond == nil {
		res.Reason = fmt.Sprintf("condition %s was never compiled (build policies with Load or Parse)", r.Condition)
		return res
	}

	decoded, _ := vars["attestations"].([]any)
	var details []string
	allFalse := true
	for _, j := range ours {
		v := make(map[string]any, len(vars)+1)
		for k, x := range vars {
			v[k] = x
		}
		if j < len(decoded) {
			if m, ok := decoded[j].(map[string]any); ok {
				v["predicate"] = m["predicate"]
			}
		}
		ok, err := r.cond.eval(v)
		switch {
		case err != nil:
			allFalse = false
			details = appendUnique(details, "error: "+err.Error())
		case ok:
			res.Passed = true
			res.Reason = fmt.Sprintf("%s holds for an attestation signed by %s", r.Condition, ring.path[atts[j].KeyID])
			if vals := r.cond.describeValues(v); vals != "" {
				res.Reason += " (" + vals + ")"
			}
			return res
		default:
			if vals := r.cond.describeValues(v); vals != "" {
				details = appendUnique(details, vals)
			}
		}
	}
	verdict := "is false"
	if !allFalse {
		verdict = "is not true"
	}
	res.Reason = fmt.Sprintf("%s %s for every attestation signed by %s", r.Condition, verdict, by)
	if len(details) > 0 {
		res.Reason += " (" + strings.Join(details, "; ") + ")"
	}
	return res
}

// evalRequireAlias checks that the version holds or held each required
// alias. For an alias this policy protects only a promotion record (Held)
// counts: its tag alone is a claim anyone with push rights can make.
func (p *Policy) evalRequireAlias(required []string, st AliasState) RuleResult {
	held, current := set(st.Held), set(st.Current)
	var ok, notHeld, tagOnly []string
	for _, a := range required {
		switch {
		case held[a]:
			ok = append(ok, a+" (promotion record)")
		case current[a] && !p.Protects(a):
			ok = append(ok, a+" (its tag points at this digest)")
		case current[a]:
			tagOnly = append(tagOnly, a)
		default:
			notHeld = append(notHeld, a)
		}
	}
	res := RuleResult{Rule: "requireAlias", Passed: len(notHeld)+len(tagOnly) == 0}
	if res.Passed {
		res.Reason = "the version holds or held " + strings.Join(ok, ", ")
		return res
	}
	var why []string
	if len(notHeld) > 0 {
		why = append(why, "the version has never held "+strings.Join(notHeld, ", ")+"; promote it there first")
	}
	for _, a := range tagOnly {
		why = append(why, fmt.Sprintf("the %s tag points at this digest but no valid promotion record says so, and this policy protects %s", a, a))
	}
	res.Reason = strings.Join(why, "; ")
	return res
}

func evalCondition(src string, c *condition, vars map[string]any) RuleResult {
	res := RuleResult{Rule: "condition"}
	if c == nil {
		res.Reason = fmt.Sprintf("%s was never compiled (build policies with Load or Parse)", src)
		return res
	}
	ok, err := c.eval(vars)
	switch {
	case err != nil:
		res.Reason = fmt.Sprintf("%s could not be evaluated: %v", src, err)
	case ok:
		res.Passed = true
		res.Reason = src + " is true"
	default:
		res.Reason = src + " is false"
		if vals := c.describeValues(vars); vals != "" {
			res.Reason += " (" + vals + ")"
		}
	}
	return res
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// count writes "1 key" or "2 keys".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
