package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelreg/modelreg/internal/distconfig"
)

// watchSecret keys the HMAC of the test's webhooks; watchToken is the
// bearer token of the watcher's notifications endpoint.
const (
	watchSecret = "e2e-hook-secret"
	watchToken  = "e2e-watch-token"
)

const watchPolicy = `apiVersion: modelreg.dev/v1
kind: PromotionPolicy
aliases:
  staging:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]}
  production:
    signatures: {keys: [keys/release.pub]}
    promoters: {keys: [keys/promoter.pub]}
`

// hook is one delivery the receiver took.
type hook struct {
	event, delivery string
	at              time.Time
	body            map[string]any
}

// receiver is a webhook receiver on 127.0.0.1 that checks every delivery's
// signature (failing the test on a bad one) and can play down (503).
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	got  []hook
	down bool
	// refused counts deliveries answered 503.
	refused int
	// hold delays the answer to each delivery taken, so a test can kill
	// the watcher while it waits (a cut delivery).
	hold time.Duration
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("X-Modelreg-Timestamp")
		mac := hmac.New(sha256.New, []byte(watchSecret))
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Modelreg-Signature-256"))) {
			t.Errorf("delivery %s: bad signature %q", r.Header.Get("X-Modelreg-Delivery"), r.Header.Get("X-Modelreg-Signature-256"))
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
			t.Errorf("delivery %s: timestamp %q is not now", r.Header.Get("X-Modelreg-Delivery"), ts)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("delivery body is not JSON: %v", err)
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.down {
			rc.refused++
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if m["id"] != r.Header.Get("X-Modelreg-Delivery") || m["type"] != r.Header.Get("X-Modelreg-Event") {
			t.Errorf("headers %s %s do not match the body %v", r.Header.Get("X-Modelreg-Delivery"), r.Header.Get("X-Modelreg-Event"), m)
		}
		rc.got = append(rc.got, hook{event: r.Header.Get("X-Modelreg-Event"), delivery: r.Header.Get("X-Modelreg-Delivery"), at: time.Now(), body: m})
		if hold := rc.hold; hold > 0 {
			rc.mu.Unlock()
			time.Sleep(hold)
			rc.mu.Lock()
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setDown(d bool) {
	rc.mu.Lock()
	rc.down = d
	rc.mu.Unlock()
}

func (rc *receiver) hooks() []hook {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hook(nil), rc.got...)
}

// waitFor waits until a delivery of type event matching match arrives
// after index from, and returns it and how long after since it came.
func (rc *receiver) waitFor(from int, event string, match func(hook) bool, since time.Time, limit time.Duration) (hook, time.Duration) {
	rc.t.Helper()
	deadline := time.Now().Add(limit + 15*time.Second) // report how late, rather than just "missing"
	for time.Now().Before(deadline) {
		hs := rc.hooks()
		for _, h := range hs[min(from, len(hs)):] {
			if h.event == event && (match == nil || match(h)) {
				return h, h.at.Sub(since)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	rc.t.Fatalf("no %s delivery within %s; got %s", event, limit+15*time.Second, describeHooks(rc.hooks()))
	return hook{}, 0
}

func describeHooks(hs []hook) string {
	var parts []string
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%s(%v %v %s)", h.event, h.body["version"], h.body["alias"], h.delivery[:8]))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// watcher is a `modelreg watch` process.
type watcher struct {
	t      *testing.T
	cmd    *exec.Cmd
	done   chan struct{}
	logBuf *bytes.Buffer
	mu     *sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func startWatch(t *testing.T, c *cli, args ...string) *watcher {
	t.Helper()
	needModelreg(t)
	w := &watcher{t: t, done: make(chan struct{}), logBuf: &bytes.Buffer{}, mu: &sync.Mutex{}}
	w.cmd = exec.Command(modelregBin, append([]string{"watch", "--log-format", "json"}, args...)...)
	w.cmd.Dir = c.dir
	w.cmd.Env = append(append([]string(nil), c.env...), "HOOK_SECRET="+watchSecret, "MODELREG_WATCH_TOKEN="+watchToken)
	w.cmd.SysProcAttr = childAttr()
	w.cmd.Stderr = lockedWriter{w.mu, w.logBuf}
	w.cmd.Stdout = lockedWriter{w.mu, w.logBuf}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		w.kill()
		w.checkLogs()
		if t.Failed() {
			t.Logf("watch log:\n%s", tail(w.logs(), 8000))
		}
	})
	w.waitLog(`"msg":"watching"`, 30*time.Second)
	return w
}

func (w *watcher) logs() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.logBuf.String()
}

func (w *watcher) waitLog(s string, limit time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if strings.Contains(w.logs(), s) {
			return
		}
		select {
		case <-w.done:
			w.t.Fatalf("watch exited:\n%s", w.logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	w.t.Fatalf("watch did not log %s within %s:\n%s", s, limit, w.logs())
}

// kill ends the watcher with SIGKILL, as a crash or OOM kill would.
func (w *watcher) kill() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Kill()
	<-w.done
}

// checkLogs fails the test when a secret appears in the logs.
func (w *watcher) checkLogs() {
	if l := w.logs(); strings.Contains(l, watchSecret) || strings.Contains(l, watchToken) {
		w.t.Errorf("a secret appears in the watch logs:\n%s", l)
	}
}

// automationsFile writes the automations file of the watch tests: one
// webhook automation per event type the issue names, retrying fast.
func automationsFile(t *testing.T, dir, repository, poll, policy, url string) string {
	return automationsFileWith(t, dir, repository, poll, "", policy, url)
}

// automationsFileWith is automationsFile with the source's referrers
// interval ("" for the default).
func automationsFileWith(t *testing.T, dir, repository, poll, referrers, policy, url string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: modelreg.dev/v1\nkind: Automations\nsources:\n  - repository: %s\n    poll: %s\n    policy: %s\n", repository, poll, policy)
	if referrers != "" {
		fmt.Fprintf(&b, "    referrers: %s\n", referrers)
	}
	b.WriteString("automations:\n")
	for _, a := range []struct{ name, on string }{
		{"versions", "{event: version.created}"},
		{"moves", `{event: alias.moved, alias: "^(staging|production)$"}`},
		{"records", "{event: promotion.recorded}"},
		{"hand-moves", "{event: alias.untracked}"},
		{"signatures", "{event: signature.added}"},
		{"attestations", "{event: attestation.added}"},
	} {
		fmt.Fprintf(&b, "  - name: %s\n    on: %s\n    webhook: {url: %q, secretEnv: HOOK_SECRET}\n    retry: {maxAttempts: 100, backoff: 200ms, maxBackoff: 1s}\n", a.name, a.on, url)
	}
	path := filepath.Join(dir, "automations.yaml")
	writeFile(t, path, []byte(b.String()))
	return path
}

// startNotifyingDistribution runs distribution v3 with notifications
// posted to the watcher at watchAddr (not started yet: distribution keeps
// retrying until it is).
func startNotifyingDistribution(t *testing.T, watchAddr string) *registry {
	t.Helper()
	dir := t.TempDir()
	r := &registry{name: "distribution-notifications", root: filepath.Join(dir, "data"), layout: layoutDistribution, tagDelete: true, logPath: filepath.Join(dir, "server.log")}
	mkdirAll(t, r.root)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	r.host = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := distconfig.YAML(r.host, r.root) + fmt.Sprintf(`notifications:
  endpoints:
    - name: modelreg-watch
      url: http://%s/events
      headers:
        Authorization: [Bearer %s]
      timeout: 2s
      threshold: 3
      backoff: 100ms
`, watchAddr, watchToken)
	cfgPath := filepath.Join(dir, "config.yml")
	writeFile(t, cfgPath, []byte(cfg))
	stop, exited, err := startProcess(filepath.Join(toolsDir, "registry"), []string{"serve", cfgPath}, []string{"OTEL_TRACES_EXPORTER=none"}, r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	if err := waitReady(r.host, exited); err != nil {
		t.Fatalf("distribution with notifications: %v\n%s", err, readTail(r.logPath, 3000))
	}
	return r
}

// TestWatch drives `modelreg watch` through the life of a model on
// distribution v3 (woken by its notifications, no polling) and on olareg
// (polling): push, promote to staging and production, a hand move of
// production, a kill -9 between two pushes; each change must reach the
// receiver exactly once (a repeat only with the same X-Modelreg-Delivery),
// signed, within 2 s with notifications and one poll interval without. A
// `modelreg sign`, a `modelreg attest` and a `modelreg --legacy-tags sign`
// of a version seen before arrive once each, within 2 s with
// notifications and one referrers interval (every second poll) without;
// the signature that was part of the baseline and the promotion records'
// referrers fire none.
func TestWatch(t *testing.T) {
	t.Parallel()
	const pollInterval = 2 * time.Second
	cases := []struct {
		name      string
		poll      string
		referrers string
		limit     time.Duration
		refLimit  time.Duration
	}{
		{"distribution-notifications", "0", "", 2 * time.Second, 2 * time.Second},
		// one interval, plus the reading itself
		{regOlareg, "2s", "4s", pollInterval + time.Second, 2*pollInterval + time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var r *registry
			watchPort, err := freePort()
			if err != nil {
				t.Fatal(err)
			}
			listen := fmt.Sprintf("127.0.0.1:%d", watchPort)
			if tc.poll == "0" {
				r = startNotifyingDistribution(t, listen)
			} else {
				for _, f := range fleet {
					if f.name == regOlareg {
						r = f
					}
				}
				r.need(t)
			}
			p := newPromo(t, r)
			pol := p.policy("policy.yaml", watchPolicy)
			v1 := p.push("v1") // before the watcher: part of the baseline
			p.sign(v1.Digest)
			rc := newReceiver(t)
			state := filepath.Join(t.TempDir(), "state")
			auto := automationsFileWith(t, p.dir, p.repository, tc.poll, tc.referrers, pol, rc.srv.URL+"/hook")
			args := []string{"--automations", auto, "--state", state}
			if tc.poll == "0" {
				args = append(args, "--listen", listen)
			}
			w := startWatch(t, p.c, args...)

			check := func(what string, since time.Time, lat time.Duration) {
				t.Helper()
				if lat > tc.limit {
					t.Errorf("%s arrived %s after the change; want within %s", what, lat.Round(time.Millisecond), tc.limit)
				}
			}
			version := func(v string) func(hook) bool { return func(h hook) bool { return h.body["version"] == v } }
			alias := func(a string) func(hook) bool { return func(h hook) bool { return h.body["alias"] == a } }

			// The baseline fired nothing for v1.
			v2 := p.push("v2")
			at := time.Now()
			_, lat := rc.waitFor(0, "version.created", version(v2.Version), at, tc.limit)
			check("version.created "+v2.Version, at, lat)
			n0 := len(rc.hooks())
			p.sign(v2.Digest)
			at = time.Now()
			h, lat := rc.waitFor(n0, "signature.added", nil, at, tc.refLimit)
			if lat > tc.refLimit {
				t.Errorf("signature.added arrived %s after the sign; want within %s", lat.Round(time.Millisecond), tc.refLimit)
			}
			if h.body["digest"] != v2.Digest || h.body["version"] != v2.Version || h.body["keyId"] != p.keyID("release") || h.body["verified"] != true || h.body["format"] != "bundle" {
				t.Errorf("signature.added = %v; want v2 %s, verified, by the release key %s, a bundle", h.body, v2.Digest, p.keyID("release"))
			}
			p.c.ok("attest", p.byDigest(v2.Digest), "--key", p.key("release"), "--metric", "accuracy=0.93")
			at = time.Now()
			h, lat = rc.waitFor(n0, "attestation.added", nil, at, tc.refLimit)
			if lat > tc.refLimit {
				t.Errorf("attestation.added arrived %s after the attest; want within %s", lat.Round(time.Millisecond), tc.refLimit)
			}
			if h.body["digest"] != v2.Digest || h.body["predicateType"] != "https://modelreg.dev/evaluation/v1" || h.body["verified"] != true || h.body["referrer"] == nil {
				t.Errorf("attestation.added = %v; want v2 %s, the evaluation predicate, verified, with its referrer digest", h.body, v2.Digest)
			}
			// A cosign v2 .sig tag layer has no manifest of its own: it is
			// seen all the same, by the key that verified it.
			n1 := len(rc.hooks())
			p.c.ok("--legacy-tags", "sign", p.byDigest(v2.Digest), "--key", p.key("promoter"))
			at = time.Now()
			h, lat = rc.waitFor(n1, "signature.added", nil, at, tc.refLimit)
			if lat > tc.refLimit {
				t.Errorf("legacy signature.added arrived %s after the sign; want within %s", lat.Round(time.Millisecond), tc.refLimit)
			}
			if h.body["digest"] != v2.Digest || h.body["keyId"] != p.keyID("promoter") || h.body["verified"] != true || h.body["format"] != "legacy" {
				t.Errorf("legacy signature.added = %v; want v2 %s, verified, by the promoter key %s, legacy", h.body, v2.Digest, p.keyID("promoter"))
			}

			for _, a := range []string{"staging", "production"} {
				n := len(rc.hooks())
				p.promoteOK(p.byDigest(v2.Digest), a, pol)
				at = time.Now()
				_, lat = rc.waitFor(n, "alias.moved", alias(a), at, tc.limit)
				check("alias.moved "+a, at, lat)
				rc.waitFor(n, "promotion.recorded", alias(a), at, tc.limit)
			}
			n := len(rc.hooks())
			p.c.ok("alias", "set", "--force", p.byDigest(v1.Digest), "production") // a hand move
			at = time.Now()
			h, lat = rc.waitFor(n, "alias.untracked", alias("production"), at, tc.limit)
			check("alias.untracked", at, lat)
			if h.body["newDigest"] != v1.Digest || h.body["oldDigest"] != v2.Digest {
				t.Errorf("alias.untracked names %v → %v; want %s → %s", h.body["oldDigest"], h.body["newDigest"], v2.Digest, v1.Digest)
			}

			// A delivery cut by kill -9: the receiver took v3's event but
			// the watcher dies before the answer; v4 is pushed while it is
			// down, v5 after the restart.
			rc.mu.Lock()
			rc.hold = 5 * time.Second
			rc.mu.Unlock()
			v3 := p.push("v3")
			cut, _ := rc.waitFor(0, "version.created", version(v3.Version), time.Now(), tc.limit)
			w.kill()
			rc.mu.Lock()
			rc.hold = 0
			rc.mu.Unlock()
			v4 := p.push("v4")
			startWatch(t, p.c, args...)
			v5 := p.push("v5")
			at = time.Now()
			rc.waitFor(0, "version.created", version(v4.Version), at, tc.limit)
			rc.waitFor(0, "version.created", version(v5.Version), at, tc.limit)
			repeats := 0
			for _, h := range rc.hooks() {
				if h.delivery == cut.delivery {
					repeats++
				}
			}
			if repeats != 2 {
				t.Errorf("the delivery cut by the kill (%s) arrived %d times; want twice, with the same X-Modelreg-Delivery", cut.delivery, repeats)
			}

			if tc.poll == "0" {
				// A forged notification, even with the token, only makes the
				// watcher read the registry again: no event comes of it.
				forged := fmt.Sprintf(`{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":%q,"tag":"v99","digest":"sha256:%s"}}]}`, p.repo, strings.Repeat("f", 64))
				for _, tok := range []string{"", watchToken} {
					req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/events", strings.NewReader(forged))
					req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
					if tok != "" {
						req.Header.Set("Authorization", "Bearer "+tok)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if want := map[bool]int{true: 401, false: 200}[tok == ""]; resp.StatusCode != want {
						t.Errorf("notification with token %q: status %d; want %d", tok, resp.StatusCode, want)
					}
				}
			}
			time.Sleep(max(tc.limit, tc.refLimit)) // room for anything that should not come
			want := map[string]int{"version.created": 4, "alias.moved": 2, "promotion.recorded": 2, "alias.untracked": 1, "signature.added": 2, "attestation.added": 1}
			got := map[string]int{}
			ids := map[string]string{}
			for _, h := range rc.hooks() {
				if prev, seen := ids[h.delivery]; seen {
					if prev != h.event {
						t.Errorf("delivery id %s was used for %s and %s", h.delivery, prev, h.event)
					}
					continue // a repeat of a delivery cut by the kill
				}
				ids[h.delivery] = h.event
				got[h.event]++
			}
			for e, n := range want {
				if got[e] != n {
					t.Errorf("got %d distinct %s deliveries; want %d: %s", got[e], e, n, describeHooks(rc.hooks()))
				}
			}
			if len(got) != len(want) {
				t.Errorf("unexpected event types: %v", got)
			}
			if len(rc.hooks()) != len(ids) {
				t.Logf("repeats (same delivery id): %d", len(rc.hooks())-len(ids))
			}
			ds := p.c.ok("watch", "deliveries", "--state", state)
			if !strings.Contains(ds.stdout, "version.created") || !strings.Contains(ds.stdout, "delivered") {
				t.Errorf("watch deliveries does not list the deliveries:\n%s", ds)
			}
		})
	}
}

// TestWatchReceiverOutage: the receiver answers 503 for 30 s while three
// versions arrive; after it recovers, all three arrive, in order, once.
func TestWatchReceiverOutage(t *testing.T) {
	t.Parallel()
	var r *registry
	for _, f := range fleet {
		if f.name == regOlareg {
			r = f
		}
	}
	r.need(t)
	p := newPromo(t, r)
	pol := p.policy("policy.yaml", watchPolicy)
	rc := newReceiver(t)
	auto := automationsFile(t, p.dir, p.repository, "1s", pol, rc.srv.URL+"/hook")
	state := filepath.Join(t.TempDir(), "state")
	startWatch(t, p.c, "--automations", auto, "--state", state)

	rc.setDown(true)
	downAt := time.Now()
	var versions []string
	for _, l := range []string{"a", "b", "c"} {
		versions = append(versions, p.push(l).Version)
	}
	time.Sleep(30*time.Second - time.Since(downAt))
	rc.mu.Lock()
	refused := rc.refused
	rc.mu.Unlock()
	if refused == 0 {
		t.Fatalf("the watcher made no attempt during the outage")
	}
	rc.setDown(false)
	up := time.Now()
	rc.waitFor(0, "version.created", func(h hook) bool { return h.body["version"] == versions[2] }, up, 5*time.Second)
	time.Sleep(2 * time.Second)
	var order []string
	for _, h := range rc.hooks() {
		if h.event == "version.created" {
			order = append(order, h.body["version"].(string))
		}
	}
	if strings.Join(order, ",") != strings.Join(versions, ",") {
		t.Errorf("versions arrived as %v; want %v, once each, in order", order, versions)
	}
	t.Logf("%d attempts refused during the outage; all delivered %s after recovery", refused, time.Since(up).Round(time.Millisecond))
	ds := p.c.ok("watch", "deliveries", "--state", state, "--limit", "0")
	if !strings.Contains(ds.stdout, "retrying") {
		t.Errorf("watch deliveries does not show the retries:\n%s", ds)
	}
}

// TestServeAutomations: `modelreg serve --automations` notices each
// manifest its embedded registry accepts (versions and signatures) and
// delivers within 2 s, with no polling at all.
func TestServeAutomations(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	r := &registry{name: "serve", host: host}
	p := newPromo(t, r)
	p.c = c
	pol := p.policy("policy.yaml", watchPolicy)
	rc := newReceiver(t)
	auto := automationsFile(t, p.dir, host+"/team/*", "0", pol, rc.srv.URL+"/hook")
	w := &watcher{t: t, done: make(chan struct{}), logBuf: &bytes.Buffer{}, mu: &sync.Mutex{}}
	w.cmd = exec.Command(modelregBin, "serve", "--addr", host, "--root", filepath.Join(t.TempDir(), "root"),
		"--automations", auto, "--state", filepath.Join(t.TempDir(), "state"))
	w.cmd.Env = append(append([]string(nil), c.env...), "HOOK_SECRET="+watchSecret)
	w.cmd.SysProcAttr = childAttr()
	w.cmd.Stderr = lockedWriter{w.mu, w.logBuf}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		w.kill()
		if t.Failed() {
			t.Logf("serve log:\n%s", tail(w.logs(), 8000))
		}
	})
	w.waitLog("watching", 30*time.Second)
	p.repo, p.repository = "team/served", host+"/team/served"
	for _, label := range []string{"v1", "v2"} {
		v := p.push(label)
		at := time.Now()
		_, lat := rc.waitFor(0, "version.created", func(h hook) bool { return h.body["version"] == v.Version }, at, 2*time.Second)
		if lat > 2*time.Second {
			t.Errorf("version.created %s arrived after %s; want within 2 s", v.Version, lat)
		}
		// The PUT of the signature's referrer manifest wakes the watcher
		// too, though no tag changed.
		p.sign(v.Digest)
		at = time.Now()
		h, lat := rc.waitFor(0, "signature.added", func(h hook) bool { return h.body["version"] == v.Version }, at, 2*time.Second)
		if lat > 2*time.Second || h.body["verified"] != true {
			t.Errorf("signature.added %s arrived after %s, verified %v; want within 2 s, verified", v.Version, lat, h.body["verified"])
		}
	}
}
