package e2e

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"oras.land/oras-go/v2"
	orasErrdef "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// Helpers of the promotion tests (issue 3): signed evaluations, approvals,
// promotion records, history, rollback and protected aliases at deploy
// time.

// Predicate types of modelreg's own in-toto statements.
const (
	predicateEvaluation = "https://modelreg.dev/evaluation/v1"
	predicatePromotion  = "https://modelreg.dev/promotion/v1"
)

// The key pairs of the promotion tests, made once per run (keygen runs
// scrypt, a second or two each) and copied into each test's release folder:
// release signs models, promoter signs promotion records, eval signs
// evaluations, alice and bob approve, rogue is known to no policy.
var promotionKeyNames = []string{"release", "promoter", "eval", "alice", "bob", "rogue"}

var (
	promotionKeysOnce sync.Once
	promotionKeysDir  string
	promotionKeysErr  error
)

// sharedPromotionKeys returns the folder holding NAME.key and NAME.pub for
// every name of promotionKeyNames, making them on first use.
func sharedPromotionKeys(t *testing.T, env []string) string {
	t.Helper()
	needModelreg(t)
	promotionKeysOnce.Do(func() {
		dir := filepath.Join(scratch, "promotion-keys")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			promotionKeysErr = err
			return
		}
		errs := make([]error, len(promotionKeyNames))
		var wg sync.WaitGroup
		for i, name := range promotionKeyNames {
			wg.Go(func() {
				r, err := runCommand(dir, env, modelregBin, "keygen", "--prefix", name)
				switch {
				case err != nil:
					errs[i] = fmt.Errorf("%v\n%s", err, r)
				case r.code != exitOK:
					errs[i] = fmt.Errorf("keygen --prefix %s: want exit code 0:\n%s", name, r)
				}
			})
		}
		wg.Wait()
		promotionKeysDir, promotionKeysErr = dir, errors.Join(errs...)
	})
	if promotionKeysErr != nil {
		t.Fatalf("making the key pairs of the promotion tests: %v", promotionKeysErr)
	}
	return promotionKeysDir
}

// promo is the fixture of one promotion test on one registry: a CLI, a
// repository, and a release folder holding keys/ (every key pair of
// promotionKeyNames) and the policy files, whose key paths are relative to
// it ("keys/release.pub").
type promo struct {
	t    *testing.T
	c    *cli
	r    *registry
	repo string
	// repository is HOST/REPO.
	repository string
	// dir is the release folder.
	dir string
}

func newPromo(t *testing.T, r *registry) *promo {
	t.Helper()
	c := newCLI(t)
	keys := sharedPromotionKeys(t, c.env)
	dir := filepath.Join(c.dir, "release")
	copyTree(t, keys, filepath.Join(dir, "keys"))
	repo := repoName(t)
	return &promo{t: t, c: c, r: r, repo: repo, repository: r.ref(repo, ""), dir: dir}
}

// at returns a copy of p that reports to t (a subtest).
func (p *promo) at(t *testing.T) *promo {
	cp := *p
	cp.t = t
	cp.c = p.c.with(t)
	return &cp
}

// as returns a copy of p whose commands run with MODELREG_ACTOR=actor.
func (p *promo) as(actor string) *promo {
	cp := *p
	cp.c = p.c.withEnv("MODELREG_ACTOR=" + actor)
	return &cp
}

// withEnv returns a copy of c with extra environment variables.
func (c *cli) withEnv(kv ...string) *cli {
	cp := *c
	cp.env = append(slices.Clone(c.env), kv...)
	return &cp
}

func (p *promo) ref(suffix string) string { return p.r.ref(p.repo, suffix) }

// byDigest is HOST/REPO@d.
func (p *promo) byDigest(d string) string { return p.ref("@" + d) }

// key and pub are the paths of a private and a public key.
func (p *promo) key(name string) string {
	return filepath.Join(p.dir, "keys", name+".key")
}
func (p *promo) pub(name string) string {
	return filepath.Join(p.dir, "keys", name+".pub")
}

// keyID is the ID modelreg gives a public key: sha256 of its PKIX DER.
func (p *promo) keyID(name string) string {
	p.t.Helper()
	data, err := os.ReadFile(p.pub(name))
	if err != nil {
		p.t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		p.t.Fatalf("%s holds no PEM block", p.pub(name))
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		p.t.Fatalf("%s: %v", p.pub(name), err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		p.t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// policy writes a policy file into the release folder and returns its path.
func (p *promo) policy(name, body string) string {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	writeFile(p.t, path, []byte(body))
	return path
}

// pushed is one pushed version and the folder it came from.
type pushed struct {
	pushJSON
	dir string
}

// push pushes a tiny model (README.md and a small .safetensors file of
// random bytes, so no two tests share a blob) as the next version.
func (p *promo) push(label string) pushed {
	p.t.Helper()
	dir := filepath.Join(p.t.TempDir(), label)
	writeFile(p.t, filepath.Join(dir, "README.md"), []byte("# "+label+"\n\nA tiny model of the promotion tests.\n"))
	writeFile(p.t, filepath.Join(dir, "model.safetensors"), randomBytes(p.t, 2048))
	var out pushJSON
	p.c.okJSON(&out, "push", p.repository, dir)
	if !out.Created || !strings.HasPrefix(out.Digest, "sha256:") {
		p.t.Fatalf("push %s: created %v digest %q", label, out.Created, out.Digest)
	}
	return pushed{pushJSON: out, dir: dir}
}

// sign signs digest d with the release key.
func (p *promo) sign(d string) {
	p.t.Helper()
	p.c.ok("sign", p.byDigest(d), "--key", p.key("release"))
}

// promote runs `promote REF --to ALIAS --policy POLICY --key promoter.key`.
func (p *promo) promote(ref, alias, policy string) result {
	p.t.Helper()
	return p.c.modelreg("promote", ref, "--to", alias, "--policy", policy, "--key", p.key("promoter"))
}

// promoteOK promotes and returns the decoded result.
func (p *promo) promoteOK(ref, alias, policy string) promoteResultJSON {
	p.t.Helper()
	var out promoteResultJSON
	p.c.okJSON(&out, "promote", ref, "--to", alias, "--policy", policy, "--key", p.key("promoter"))
	if !out.Moved || out.Record == nil {
		p.t.Fatalf("promote %s to %s: moved %v, record %v", ref, alias, out.Moved, out.Record)
	}
	return out
}

// denied requires exit code 3 and stderr matching every pattern.
func (p *promo) denied(res result, patterns ...string) {
	p.t.Helper()
	if res.code != exitDenied {
		p.t.Fatalf("want exit code %d (denied):\n%s", exitDenied, res)
	}
	wantStderr(p.t, res, patterns...)
}

// client is an oras-go client of the repository.
func (p *promo) client() *remote.Repository {
	return repoClient(p.t, p.r, p.repo)
}

// tagDigest returns the digest tag points at, or "" when the tag does not
// exist.
func (p *promo) tagDigest(tag string) string {
	p.t.Helper()
	desc, err := p.client().Resolve(opCtx(p.t), tag)
	if errors.Is(err, orasErrdef.ErrNotFound) {
		return ""
	}
	if err != nil {
		p.t.Fatalf("resolve %s:%s: %v", p.repository, tag, err)
	}
	return desc.Digest.String()
}

// assertAlias requires alias to point at want ("" means unset) according
// to both `alias ls -o json` and the registry itself (oras-go).
func (p *promo) assertAlias(alias, want string) {
	p.t.Helper()
	got, listed := aliasLs(p.c, p.repository)[alias]
	switch {
	case want == "" && listed:
		p.t.Errorf("alias ls: %s → %s, want it unset", alias, got)
	case want != "" && got != want:
		p.t.Errorf("alias ls: %s → %q, want %s", alias, got, want)
	}
	if d := p.tagDigest(alias); d != want {
		p.t.Errorf("the registry resolves %s:%s to %q, want %q", p.repository, alias, d, want)
	}
}

// history runs `history REPO [ALIAS] -o json` with extra flags.
func (p *promo) history(alias string, flags ...string) historyJSON {
	p.t.Helper()
	args := []string{p.repository}
	if alias != "" {
		args = append(args, alias)
	}
	var h historyJSON
	p.c.okJSON(&h, "history", append(args, flags...)...)
	return h
}

// aliasHistory returns the timeline of alias from `history REPO ALIAS
// --policy POLICY -o json`; ok is false when history does not list it.
func (p *promo) aliasHistory(alias, policy string) aliasHistoryJSON {
	p.t.Helper()
	h := p.history(alias, "--policy", policy)
	a, ok := h.alias(alias)
	if !ok {
		p.t.Fatalf("history %s %s does not list %s: %+v", p.repository, alias, alias, h)
	}
	return a
}

// assertNoRecords requires that no promotion record exists for alias.
func (p *promo) assertNoRecords(alias, policy string) {
	p.t.Helper()
	h := p.history("", "--policy", policy)
	if a, ok := h.alias(alias); ok && len(a.Records) > 0 {
		p.t.Errorf("history lists %d promotion records of %s, want none (a refused promotion must record nothing): %+v",
			len(a.Records), alias, a.Records)
	}
}

// moveTag points tag at the manifest d with oras-go, as anyone with push
// rights can.
func (p *promo) moveTag(d, tag string) {
	p.t.Helper()
	rc := p.client()
	desc, err := rc.Resolve(opCtx(p.t), d)
	if err != nil {
		p.t.Fatalf("resolve %s: %v", d, err)
	}
	if err := rc.Tag(opCtx(p.t), desc, tag); err != nil {
		p.t.Fatalf("tag %s as %s: %v", d, tag, err)
	}
	if got := p.tagDigest(tag); got != d {
		p.t.Fatalf("after moving %s by hand it resolves to %s, want %s", tag, got, d)
	}
}

// orasTag moves tag to the version tagged from with the oras CLI.
func (p *promo) orasTag(from, tag string) {
	p.t.Helper()
	p.c.toolOK("oras", "tag", "--plain-http", p.ref(":"+from), tag)
}

// cosignAttTag is the tag cosign stores the attestations of digest d under.
func cosignAttTag(t testing.TB, d string) string {
	t.Helper()
	return strings.TrimSuffix(cosignSigTag(t, d), ".sig") + ".att"
}

// copyAttestations copies the attestation manifest of digest from (in
// srcRepo) onto the attestation tag of digest to in p's repository, blobs
// included, and its bundle referrers too (copyReferrers): what an attacker
// with push rights can do.
func (p *promo) copyAttestations(srcRepo, from, to string) {
	p.t.Helper()
	p.copyReferrers(srcRepo, from, to)
	src := repoClient(p.t, p.r, srcRepo)
	if _, err := src.Resolve(opCtx(p.t), cosignAttTag(p.t, from)); errors.Is(err, orasErrdef.ErrNotFound) {
		return // written as referrers only
	}
	if _, err := oras.Copy(opCtx(p.t), src, cosignAttTag(p.t, from), p.client(), cosignAttTag(p.t, to), oras.DefaultCopyOptions); err != nil {
		p.t.Fatalf("copy %s/%s:%s to %s:%s: %v", p.r.host, srcRepo, cosignAttTag(p.t, from), p.repository, cosignAttTag(p.t, to), err)
	}
}

// JSON documents of the promotion commands. Unknown fields are allowed.
type (
	ruleJSON struct {
		Rule   string `json:"rule"`
		Passed bool   `json:"passed"`
		Reason string `json:"reason"`
	}
	decisionJSON struct {
		Alias        string     `json:"alias"`
		Allowed      bool       `json:"allowed"`
		PolicyDigest string     `json:"policyDigest"`
		Rules        []ruleJSON `json:"rules"`
	}
	recordJSON struct {
		Repository     string `json:"repository"`
		Alias          string `json:"alias"`
		Digest         string `json:"digest"`
		PreviousDigest string `json:"previousDigest"`
		Sequence       int64  `json:"sequence"`
		PreviousRecord string `json:"previousRecord"`
		Signer         string `json:"signer"`
		Actor          string `json:"actor"`
		PromotedAt     string `json:"promotedAt"`
		Reason         string `json:"reason"`
		Policy         struct {
			Digest  string `json:"digest"`
			Allowed bool   `json:"allowed"`
		} `json:"policy"`
		RecordDigest    string `json:"recordDigest"`
		KeyID           string `json:"keyId"`
		KeyPath         string `json:"keyPath"`
		Verified        bool   `json:"verified"`
		Version         string `json:"version"`
		PreviousVersion string `json:"previousVersion"`
	}
	promoteResultJSON struct {
		Alias     string       `json:"alias"`
		Reference string       `json:"reference"`
		Digest    string       `json:"digest"`
		Previous  string       `json:"previous"`
		Moved     bool         `json:"moved"`
		Decision  decisionJSON `json:"decision"`
		Record    *recordJSON  `json:"record"`
	}
	aliasHistoryJSON struct {
		Alias          string       `json:"alias"`
		Current        string       `json:"current"`
		CurrentVersion string       `json:"currentVersion"`
		Explained      bool         `json:"explained"`
		Records        []recordJSON `json:"records"`
	}
	historyJSON struct {
		Repository string             `json:"repository"`
		Aliases    []aliasHistoryJSON `json:"aliases"`
	}
	attestJSON struct {
		Reference     string          `json:"reference"`
		Digest        string          `json:"digest"`
		PredicateType string          `json:"predicateType"`
		KeyID         string          `json:"keyId"`
		Predicate     json.RawMessage `json:"predicate"`
	}
	evidenceJSON struct {
		Repository   string            `json:"repository"`
		Reference    string            `json:"reference"`
		Digest       string            `json:"digest"`
		Alias        string            `json:"alias"`
		ArtifactType string            `json:"artifactType"`
		Annotations  map[string]string `json:"annotations"`
		Config       map[string]any    `json:"config"`
		Files        []fileJSON        `json:"files"`
		Signatures   []struct {
			KeyID string `json:"keyId"`
		} `json:"signatures"`
		Attestations []struct {
			KeyID         string         `json:"keyId"`
			PredicateType string         `json:"predicateType"`
			Predicate     map[string]any `json:"predicate"`
		} `json:"attestations"`
		Approvals []struct {
			KeyID    string `json:"keyId"`
			Approver string `json:"approver"`
		} `json:"approvals"`
		Aliases struct {
			Current []string `json:"current"`
			Held    []string `json:"held"`
		} `json:"aliases"`
	}
	policyCheckJSON struct {
		Evidence evidenceJSON `json:"evidence"`
		Decision decisionJSON `json:"decision"`
	}
)

func (h historyJSON) alias(name string) (aliasHistoryJSON, bool) {
	for _, a := range h.Aliases {
		if a.Alias == name {
			return a, true
		}
	}
	return aliasHistoryJSON{}, false
}

// rule returns the result of the rule whose name starts with prefix.
func (d decisionJSON) rule(t testing.TB, prefix string) ruleJSON {
	t.Helper()
	for _, r := range d.Rules {
		if strings.HasPrefix(r.Rule, prefix) {
			return r
		}
	}
	t.Fatalf("the decision has no rule %q: %+v", prefix, d.Rules)
	return ruleJSON{}
}

// sequences lists the sequence numbers of records in order.
func sequences(rs []recordJSON) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Sequence
	}
	return out
}

// checkTimeline requires records to be one alias's records of p's
// repository, newest first, each with an RFC 3339 time of this run no later
// than the one before, an actor, and the promoter key as signer.
func checkTimeline(t *testing.T, p *promo, alias string, rs []recordJSON) {
	t.Helper()
	var last time.Time
	for i, r := range rs {
		if r.Alias != alias {
			t.Errorf("record %d of %s names alias %q", i, alias, r.Alias)
		}
		when, err := time.Parse(time.RFC3339, r.PromotedAt)
		if err != nil {
			t.Errorf("record %d (sequence %d): promotedAt %q is not RFC 3339: %v", i, r.Sequence, r.PromotedAt, err)
		} else {
			if i > 0 && when.After(last) {
				t.Errorf("records are not newest first: sequence %d at %s follows one at %s", r.Sequence, when, last)
			}
			if d := time.Since(when); d < -time.Minute || d > time.Hour {
				t.Errorf("record %d: promotedAt %s is not the time of this test run", r.Sequence, r.PromotedAt)
			}
			last = when
		}
		if r.Actor == "" {
			t.Errorf("record %d has no actor", r.Sequence)
		}
		if r.Signer != p.keyID("promoter") {
			t.Errorf("record %d: signer %q, want the promoter key %s", r.Sequence, r.Signer, p.keyID("promoter"))
		}
		if r.Repository != p.repository {
			t.Errorf("record %d: repository %q, want %q", r.Sequence, r.Repository, p.repository)
		}
	}
}

// inTotoStatement is the in-toto statement inside one line of `cosign
// verify-attestation` output (a DSSE envelope).
type inTotoStatement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string         `json:"predicateType"`
	Predicate     map[string]any `json:"predicate"`
}

// cosignStatements decodes the statements `cosign verify-attestation`
// printed, one DSSE envelope per line.
func cosignStatements(t *testing.T, r result) []inTotoStatement {
	t.Helper()
	var out []inTotoStatement
	for line := range strings.Lines(r.stdout) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var env struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Fatalf("cosign verify-attestation printed a line that is not a DSSE envelope: %v\n%s", err, r)
		}
		payload, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatalf("DSSE payload is not base64: %v\n%s", err, r)
		}
		var st inTotoStatement
		if err := json.Unmarshal(payload, &st); err != nil {
			t.Fatalf("DSSE payload is not an in-toto statement: %v\n%s", err, payload)
		}
		out = append(out, st)
	}
	return out
}

// lineOf returns the 1-based line of the first line of text containing s.
func lineOf(t testing.TB, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not found in\n%s", s, text)
	return 0
}
