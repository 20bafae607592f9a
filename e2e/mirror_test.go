package e2e

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelreg/modelreg/internal/distconfig"
)

// hitProxy is a reverse proxy on loopback in front of a registry that
// counts the requests it passes, by "METHOD PATH".
type hitProxy struct {
	host string
	mu   sync.Mutex
	hits map[string]int
}

// startHitProxy serves a proxy to upstream (HOST:PORT, plain HTTP)
// until the test ends. tamper, when not nil, is called for blob GETs and
// may change the body before it is sent.
func startHitProxy(t *testing.T, upstream string, tamper func([]byte) []byte) *hitProxy {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: upstream}
	rp := httputil.NewSingleHostReverseProxy(u)
	cp := &hitProxy{hits: map[string]int{}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		cp.mu.Lock()
		cp.hits[req.Method+" "+req.URL.Path]++
		cp.mu.Unlock()
		if tamper != nil && req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:") {
			resp, err := http.Get(u.String() + req.URL.Path)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				http.Error(w, fmt.Sprint(resp.Status, err), http.StatusBadGateway)
				return
			}
			body = tamper(body)
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body)
			return
		}
		rp.ServeHTTP(w, req)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	cp.host = ln.Addr().String()
	return cp
}

// takeHits returns the counts since the last call and resets them.
func (cp *hitProxy) takeHits() map[string]int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	h := cp.hits
	cp.hits = map[string]int{}
	return h
}

// blobGets returns how often each blob of repo was fetched with GET, by
// digest, and resets every count.
func (cp *hitProxy) blobGets(repo string) map[string]int {
	return getsOf(cp.takeHits(), repo, "blobs")
}

// getsOf picks the GETs of repo's kind ("blobs" or "manifests") from hits,
// by digest or tag.
func getsOf(hits map[string]int, repo, kind string) map[string]int {
	out := map[string]int{}
	prefix := "GET /v2/" + repo + "/" + kind + "/"
	for k, n := range hits {
		if d, ok := strings.CutPrefix(k, prefix); ok {
			out[d] += n
		}
	}
	return out
}

// startProxyRegistry runs distribution v3 as a pull-through cache
// (proxy.remoteurl) of remote (HOST:PORT, plain HTTP).
func startProxyRegistry(t *testing.T, remote string) *registry {
	t.Helper()
	bin := toolPath(t, "registry")
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	r := &registry{name: "distribution-proxy", host: fmt.Sprintf("127.0.0.1:%d", port), root: filepath.Join(dir, "data"),
		layout: layoutDistribution, logPath: filepath.Join(dir, "server.log")}
	cfg := distconfig.YAML(r.host, r.root) + fmt.Sprintf("proxy:\n  remoteurl: %q\n", "http://"+remote)
	cfgPath := filepath.Join(dir, "config.yml")
	writeFile(t, cfgPath, []byte(cfg))
	stop, exited, err := startProcess(bin, []string{"serve", cfgPath}, []string{"OTEL_TRACES_EXPORTER=none"}, r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the proxy registry: %v", err)
		}
	})
	if err := waitReady(r.host, exited); err != nil {
		t.Fatalf("proxy registry: %v\nserver log:\n%s", err, readTail(r.logPath, 3000))
	}
	return r
}

// TestMirrorPullThroughCache: eight verified pulls at once of one
// production version, with distribution v3 in proxy mode as the mirror
// (given by --mirror, MODELREG_MIRRORS or registries.conf), get byte-identical
// files while the origin serves each blob only a few times; tags,
// signatures and records still come from the origin. A mirror that serves
// other bytes than the digest is refused and the pull still succeeds,
// from the origin.
func TestMirrorPullThroughCache(t *testing.T) {
	t.Parallel()
	var origin *registry
	for _, r := range fleet {
		if r.name == regDistribution {
			origin = r
		}
	}
	origin.need(t)
	counter := startHitProxy(t, origin.host, nil)
	via := *origin
	via.host = counter.host
	p := newPromo(t, &via)
	pol := p.policy("policy.yaml", authPolicy)
	src := copyModel(t, modelSilero)
	writeFile(t, filepath.Join(src, "README.md"), []byte("# silero\n\nThe mirror test's model.\n"))
	writeFile(t, filepath.Join(src, "extra.safetensors"), randomBytes(t, 3<<20))
	var pushed pushJSON
	p.c.okJSON(&pushed, "push", p.repository, src)
	p.sign(pushed.Digest)
	p.promoteOK(p.byDigest(pushed.Digest), "production", pol)

	mirror := startProxyRegistry(t, counter.host)
	mirrorCount := startHitProxy(t, mirror.host, nil)
	conf := filepath.Join(t.TempDir(), "registries.conf")
	writeFile(t, conf, []byte(fmt.Sprintf("[[registry]]\nprefix = %q\nlocation = %q\n\n[[registry.mirror]]\nlocation = %q\npull-from-mirror = \"digest-only\"\n",
		counter.host, counter.host, mirrorCount.host)))
	counter.blobGets(p.repo) // the push's requests do not count

	// round runs eight verified pulls at once through the mirror and
	// returns the blob GETs the origin and the mirror saw.
	const pulls = 8
	round := func(t *testing.T) (atOrigin, atMirror map[string]int) {
		t.Helper()
		results := make([]result, pulls)
		dirs := make([]string, pulls)
		errs := make([]error, pulls)
		var wg sync.WaitGroup
		for i := range pulls {
			dirs[i] = filepath.Join(t.TempDir(), "deploy")
			args := []string{"pull", p.ref(":production"), dirs[i], "--policy", pol, "--key", p.pub("release"), "-o", "json"}
			env := p.c.env
			switch i % 3 {
			case 0:
				args = append(args, "--mirror", mirrorCount.host)
			case 1:
				env = append(append([]string{}, env...), "MODELREG_MIRRORS="+mirrorCount.host)
			default:
				env = append(append([]string{}, env...), "CONTAINERS_REGISTRIES_CONF="+conf)
			}
			wg.Go(func() { results[i], errs[i] = runCommand(p.c.dir, env, modelregBin, args...) })
		}
		wg.Wait()
		for i := range pulls {
			if errs[i] != nil || results[i].code != exitOK {
				t.Fatalf("pull %d: %v\n%s", i, errs[i], results[i])
			}
			if strings.Contains(results[i].stderr, "mirror") {
				t.Errorf("pull %d warned about the mirror:\n%s", i, results[i])
			}
			assertSameFiles(t, src, dirs[i])
		}
		mirrorHits := mirrorCount.takeHits()
		atOrigin, atMirror = counter.blobGets(p.repo), getsOf(mirrorHits, p.repo, "blobs")
		if n := getsOf(mirrorHits, p.repo, "manifests")[pushed.Digest]; n != pulls {
			t.Errorf("the mirror served the manifest %s %d times, want %d (one per pull)", pushed.Digest, n, pulls)
		}
		t.Logf("blob GETs at the origin: %s", formatCounts(atOrigin))
		t.Logf("blob GETs at the mirror: %s", formatCounts(atMirror))
		if len(atMirror) < 4 {
			t.Errorf("the mirror served %d blobs, want the 3 files and the config: %v", len(atMirror), atMirror)
		}
		for d, n := range atMirror {
			if n != pulls {
				t.Errorf("the mirror served blob %s %d times, want %d (one per pull)", d, n, pulls)
			}
		}
		return atOrigin, atMirror
	}

	// Cold: distribution's proxy fetches a blob from the origin once and
	// caches it, but a request for a blob it is still fetching goes to
	// the origin too (registry/proxy/proxyblobstore.go, "inflight"), so
	// pulls that start together cost the origin up to one GET each.
	// Signatures and promotion records (not through the mirror) are read
	// at the origin by every pull.
	var mirrored []string
	t.Run("eight concurrent verified pulls, cold cache", func(t *testing.T) {
		atOrigin, atMirror := round(t)
		files := map[string]bool{}
		for _, f := range pushed.Files {
			files[f.Digest] = f.Size >= 1<<20 // smaller blobs take no lock (the digest cache's MinSize)
		}
		for d := range atMirror {
			mirrored = append(mirrored, d)
			n := atOrigin[d]
			switch {
			case files[d] && n != 1:
				// The pullers share a cache folder (p.c.env): one warms
				// the mirror while the others wait on the blob's lock.
				t.Errorf("the origin served file blob %s (1 MiB or more) %d times for %d pulls through the mirror, want 1 (the pullers on one machine coordinate per blob)", d, n, pulls)
			case n < 1 || n > pulls:
				// The config is read with the manifest, uncoordinated.
				t.Errorf("the origin served blob %s %d times for %d pulls through the mirror, want 1 to %d", d, n, pulls, pulls)
			}
		}
	})
	// Warm: the mirror holds every blob; the origin serves none of them.
	t.Run("eight concurrent verified pulls, warm cache", func(t *testing.T) {
		atOrigin, _ := round(t)
		for _, d := range mirrored {
			if n := atOrigin[d]; n != 0 {
				t.Errorf("the origin served blob %s %d times with the mirror's cache warm, want 0", d, n)
			}
		}
	})

	// A process that holds a file blob's lock and is killed with SIGKILL
	// (here flock(1), taking the same flock(2) lock a puller takes) does
	// not block a puller waiting on it: the kernel drops the lock with
	// the process. The pull is checked to be waiting first, so the test
	// fails if pulls stop taking the lock.
	t.Run("a lock holder killed with SIGKILL does not block the others", func(t *testing.T) {
		flockBin, err := exec.LookPath("flock")
		if err != nil {
			t.Fatalf("flock(1) (util-linux) not found: %v", err)
		}
		cache := t.TempDir()
		locks := filepath.Join(cache, "mirror-locks")
		if err := os.MkdirAll(locks, 0o700); err != nil {
			t.Fatal(err)
		}
		big := slices.MaxFunc(pushed.Files, func(a, b fileJSON) int { return cmp.Compare(a.Size, b.Size) })
		blob := strings.Replace(big.Digest, ":", "-", 1)
		holder := exec.Command(flockBin, "-o", filepath.Join(locks, blob+".lock"), "sleep", "300")
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		defer holder.Process.Kill()
		time.Sleep(200 * time.Millisecond) // flock(1) takes the lock
		dir := filepath.Join(t.TempDir(), "deploy")
		env := append(append([]string{}, p.c.env...), "MODELREG_CACHE_DIR="+cache)
		done := make(chan struct{})
		var res result
		var rerr error
		go func() {
			defer close(done)
			res, rerr = runCommand(p.c.dir, env, modelregBin, "pull", p.ref(":production"), dir, "--policy", pol, "--key", p.pub("release"), "--mirror", mirrorCount.host)
		}()
		select {
		case <-done:
			t.Fatalf("the pull finished while another process held the lock of blob %s: pulls through a mirror do not take it\n%s", big.Digest, res)
		case <-time.After(2 * time.Second):
		}
		if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = holder.Wait()
		start := time.Now()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("the pull still waits 30 s after the lock holder was killed")
		}
		t.Logf("the pull finished %s after the lock holder was killed", time.Since(start).Round(time.Millisecond))
		if rerr != nil || res.code != exitOK {
			t.Fatalf("pull: %v\n%s", rerr, res)
		}
		assertSameFiles(t, src, dir)
	})

	t.Run("a mirror that is down is passed over", func(t *testing.T) {
		dead, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		down := fmt.Sprintf("127.0.0.1:%d", dead)
		dir := filepath.Join(t.TempDir(), "deploy")
		start := time.Now()
		res := p.c.ok("pull", p.ref(":production"), dir, "--policy", pol, "--key", p.pub("release"), "--mirror", down)
		t.Logf("pull with the mirror down took %s", time.Since(start).Round(time.Millisecond))
		wantStderr(t, res, `mirror `+down+`.*passing over it for this pull, fetching the manifest from`)
		if strings.Contains(res.stderr, "fetching blob") {
			t.Errorf("the mirror that was down for the manifest was tried for blobs too:\n%s", res)
		}
		assertSameFiles(t, src, dir)
	})

	t.Run("a mirror serving tampered bytes is refused", func(t *testing.T) {
		// The manifest and the config (small) pass unchanged, so the
		// mirror is used for the files, whose bytes it changes.
		fake := startHitProxy(t, origin.host, func(b []byte) []byte {
			b = bytes.Clone(b)
			if len(b) > 4096 {
				b[len(b)/2] ^= 0x01
			}
			return b
		})
		dir := filepath.Join(t.TempDir(), "deploy")
		res := p.c.ok("pull", p.ref(":production"), dir, "--policy", pol, "--key", p.pub("release"), "--mirror", fake.host)
		wantStderr(t, res, `mirror `+fake.host+` served other bytes than the digest; refused`, `blob .* from `+regexp.QuoteMeta(p.r.host))
		assertSameFiles(t, src, dir)
		if got := fake.blobGets(p.repo); len(got) == 0 {
			t.Errorf("the fake mirror was never asked for a blob")
		}
	})
}

func formatCounts(m map[string]int) string {
	var parts []string
	for d, n := range m {
		parts = append(parts, fmt.Sprintf("%s…=%d", d[:min(len(d), 19)], n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
