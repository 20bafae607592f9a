package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveClients is how many clients push, sign and pull at once against
// `modelreg serve`.
const serveClients = 6

// TestServeConcurrentClients starts `modelreg serve`, built with the race
// detector, on a free port and runs six clients (the normal binary) at
// once against one new repository, each pushing a version of its own,
// signing it and pulling it back verified, while two more pull a version
// of another repository. Afterwards every version, file and signature is
// checked (the cosign CLI as the oracle); serve is restarted on the same
// data and every version pulled again at once. Each run of serve must
// stop on SIGTERM within the stop timeout with no data race or panic in
// its log.
func TestServeConcurrentClients(t *testing.T) {
	t.Parallel()
	needModelreg(t)
	serveBin := buildRaceModelreg(t)
	data := filepath.Join(t.TempDir(), "data")
	sv := startServe(t, serveBin, data)
	r := &registry{name: "serve", host: sv.host}
	c := newCLI(t)
	c.ok("keygen", "--prefix", "release")
	key, pub := filepath.Join(c.dir, "release.key"), filepath.Join(c.dir, "release.pub")
	// The clients push into a repository that does not exist yet, so their
	// first uploads create it at the same moment.
	repo := repoName(t)
	repository := r.ref(repo, "")

	// The version the readers pull while the others write.
	seedRepo := repo + "-seed"
	first := copyModel(t, modelSilero)
	var seed pushJSON
	c.okJSON(&seed, "push", r.ref(seedRepo, ""), first)
	c.ok("sign", r.ref(seedRepo, "@"+seed.Digest), "--key", key)

	dirs := make([]string, serveClients)
	for i := range dirs {
		dirs[i] = copyModel(t, modelSilero)
		writeFile(t, filepath.Join(dirs[i], "README.md"), []byte(fmt.Sprintf("# client %d of %d\n", i+1, serveClients)))
		writeFile(t, filepath.Join(dirs[i], "calibration.bin"), randomBytes(t, 256<<10))
	}
	pushes := make([]pushJSON, serveClients)
	// What each client and reader pulled while the others wrote; compared
	// after the run, from the test's goroutine.
	clientOut := make([]string, serveClients)
	readerOut := make([][]string, 2)
	errs := make(chan string, 4*serveClients)
	run := func(what string, args ...string) (result, bool) {
		res, err := runCommand(c.dir, c.env, modelregBin, args...)
		if err != nil || res.code != exitOK {
			errs <- fmt.Sprintf("%s: %v\n%s", what, err, res)
			return res, false
		}
		return res, true
	}
	outRoot := t.TempDir()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range dirs {
		wg.Go(func() {
			<-start
			res, ok := run(fmt.Sprintf("client %d push", i+1), jsonArgs("push", []string{repository, dirs[i]})...)
			if !ok {
				return
			}
			if err := json.Unmarshal([]byte(res.stdout), &pushes[i]); err != nil {
				errs <- fmt.Sprintf("client %d push: stdout is not JSON: %v\n%s", i+1, err, res)
				return
			}
			byDigest := r.ref(repo, "@"+pushes[i].Digest)
			if _, ok := run(fmt.Sprintf("client %d sign", i+1), "sign", byDigest, "--key", key); !ok {
				return
			}
			out := filepath.Join(outRoot, fmt.Sprintf("client-%d", i+1))
			if _, ok := run(fmt.Sprintf("client %d pull", i+1), "pull", byDigest, out, "--key", pub); ok {
				clientOut[i] = out
			}
		})
	}
	for i := range 2 {
		wg.Go(func() {
			<-start
			for j := range 3 {
				out := filepath.Join(outRoot, fmt.Sprintf("reader-%d-%d", i+1, j+1))
				if _, ok := run(fmt.Sprintf("reader %d pull %d", i+1, j+1), "pull", r.ref(seedRepo, "@"+seed.Digest), out, "--key", pub); ok {
					readerOut[i] = append(readerOut[i], out)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.Fatalf("serve log:\n%s", readTail(sv.log, 4000))
	}
	for i, out := range clientOut {
		assertSameFiles(t, dirs[i], out)
	}
	for _, outs := range readerOut {
		if len(outs) != 3 {
			t.Fatalf("a reader made %d pulls, want 3", len(outs))
		}
		for _, out := range outs {
			assertSameFiles(t, first, out)
		}
	}

	// Every version is listed once and resolves to its push; every one is
	// signed, as modelreg and the cosign CLI see it; every file is there.
	var vs versionsJSON
	c.okJSON(&vs, "versions", repository)
	listed := vs.versionMap()
	if len(listed) != serveClients {
		t.Errorf("versions lists %d versions, want %d: %v", len(listed), serveClients, listed)
	}
	seen := map[string]bool{}
	for i, p := range pushes {
		if seen[p.Version] {
			t.Errorf("client %d got version %s, which another push also got", i+1, p.Version)
		}
		seen[p.Version] = true
		if listed[p.Version] != p.Digest {
			t.Errorf("versions: %s → %q, client %d pushed %s", p.Version, listed[p.Version], i+1, p.Digest)
		}
		byDigest := r.ref(repo, "@"+p.Digest)
		c.ok("verify", byDigest, "--key", pub)
		res := c.toolOK("cosign3", "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", byDigest)
		if !strings.Contains(res.stdout, p.Digest) {
			t.Errorf("cosign verify output does not name %s:\n%s", p.Digest, res)
		}
	}
	sv.stop(t)

	// The data survives a restart, and the restarted server's first
	// requests (which load each repository's index again) come at once:
	// every version pulled by its tag, verified, at the same moment.
	sv = startServe(t, serveBin, data)
	r.host = sv.host
	errs = make(chan string, serveClients)
	outs := make([]string, serveClients)
	for i, p := range pushes {
		wg.Go(func() {
			outs[i] = filepath.Join(outRoot, "restarted-"+p.Version)
			if _, ok := run(p.Version+" after restart", "pull", r.ref(repo, ":"+p.Version), outs[i], "--key", pub); !ok {
				outs[i] = ""
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for i, out := range outs {
		if out != "" {
			assertSameFiles(t, dirs[i], out)
		}
	}
	sv.stop(t)
}

// served is one run of `modelreg serve`.
type served struct {
	host, log string
	stopFn    func() error
	exited    <-chan struct{}
	stopped   bool
}

// startServe runs bin serve on a free port with its data in data, and
// stops it when the test ends.
func startServe(t *testing.T, bin, data string) *served {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	sv := &served{host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), log: filepath.Join(t.TempDir(), "serve.log")}
	sv.stopFn, sv.exited, err = startProcess(bin, []string{"serve", "--addr", sv.host, "--root", data}, nil, sv.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !sv.stopped {
			_ = sv.stopFn()
		}
	})
	if err := waitReady(sv.host, sv.exited); err != nil {
		t.Fatalf("modelreg serve: %v\n%s", err, readTail(sv.log, 4000))
	}
	return sv
}

// stop sends SIGTERM, requires serve to exit within the stop timeout, and
// fails the test if its log reports a data race or a panic.
func (sv *served) stop(t *testing.T) {
	t.Helper()
	sv.stopped = true
	if err := sv.stopFn(); err != nil {
		t.Fatalf("stopping modelreg serve: %v", err)
	}
	<-sv.exited
	b, err := os.ReadFile(sv.log)
	if err != nil {
		t.Fatal(err)
	}
	if log := string(b); strings.Contains(log, "DATA RACE") || strings.Contains(log, "panic:") {
		t.Errorf("modelreg serve reported a data race or panic; its log:\n%s", tail(log, 20000))
	}
}

// buildRaceModelreg builds ./cmd/modelreg with -race for this test: the
// race detector then watches the embedded registry (olareg) under real
// concurrent clients, as `make race` watches it in-process.
func buildRaceModelreg(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "modelreg-race")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-race", "-o", out, "./cmd/modelreg")
	cmd.Dir = repoRoot
	cmd.SysProcAttr = childAttr()
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -race -o %s ./cmd/modelreg (in %s): %v\n%s", out, repoRoot, err, tail(string(b), 4000))
	}
	t.Logf("built modelreg with -race in %s", time.Since(start).Round(time.Millisecond))
	return out
}
