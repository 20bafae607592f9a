package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/modelreg/modelreg/internal/distconfig"
)

// Deploy test bounds. Building the image compiles the static binary (a few
// minutes cold on 2 cores, seconds when cached); a pod starts in seconds.
const (
	imageBuildTimeout = 15 * time.Minute
	podTimeout        = 2 * time.Minute
	// maxImageBytes is the size the image must stay under (issue 8).
	maxImageBytes = 60_000_000
)

// Placeholders of the shipped manifests (deploy/kubernetes) that the test
// replaces; any other "registry.example.com" or "REPLACE-WITH" left in
// what it plays fails the test, so the manifests stay playable as shipped.
const (
	placeholderModel  = "registry.example.com/team/sentiment:production"
	placeholderImage  = "registry.example.com/modelreg/modelreg:dev"
	placeholderServer = "registry.example.com/team/sentiment-server:1.0"
	placeholderAuth   = `"registry.example.com": {"auth": "REPLACE-WITH-base64-of-user:token"}`
)

// TestDeployOnKubernetes builds the image with `make image`, then runs the
// shipped Secret, ConfigMap and the Deployment's pod template through
// `podman kube play --network host` against a registry on loopback that
// requires a password (so the init container must read the mounted
// dockerconfigjson Secret):
//
//	(a) production signed and promoted: the init container exits 0, the
//	    app container (a stand-in server that prints the sha256 of every
//	    file it sees) sees byte-identical files;
//	(c) the pod restarted on its volume: the init container verifies and
//	    downloads nothing;
//	(b) production moved by hand to another signed version, in a new pod:
//	    the init container exits 3 saying why, the app never starts.
//
// Podman specifics, all made here and not on the machine: runc and no
// default ulimits (CONTAINERS_CONF), an infra image of our own (podman
// would build one around catatonit), the Deployment's template as a Pod
// with restartPolicy Never (podman restarts a failing init container of an
// Always pod in a loop) and init containers of type "always" (so they run
// again on a pod restart, as kubelet runs them in a new pod sandbox).
func TestDeployOnKubernetes(t *testing.T) {
	needModelreg(t)
	id := strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36)
	work := t.TempDir()
	pm := newPodman(t, work)

	// The image, exactly as `make image` builds it.
	image := "localhost/modelreg-e2e:" + id
	version := "e2e-" + id
	pm.cleanup("rmi", "-f", image)
	makeImage(t, pm, image, version, filepath.Join(work, "image-context"))
	if r := pm.ok("run", "--rm", image, "version"); !strings.Contains(r.stdout, "modelreg "+version) {
		t.Fatalf("`podman run --rm %s version` does not print version %s:\n%s", image, version, r)
	}
	size, err := strconv.ParseInt(strings.TrimSpace(pm.ok("image", "inspect", "--format", "{{.Size}}", image).stdout), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s: %.1f MB", image, float64(size)/1e6)
	if size >= maxImageBytes {
		t.Errorf("image is %d bytes, want under %d", size, maxImageBytes)
	}
	appImage, pauseImage := buildHelperImages(t, pm, work, id)
	pm.infraImage(pauseImage)

	// A registry that wants a password, and a model in it.
	reg, user, pass := startAuthRegistry(t, filepath.Join(work, "registry"))
	c := newCLI(t)
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	writeFile(t, filepath.Join(c.dir, "..", ".docker", "config.json"), fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`, reg, auth))
	c.ok("keygen", "--prefix", "release")
	c.ok("keygen", "--prefix", "promoter")
	manifests := readShippedManifests(t)
	policyPath := filepath.Join(c.dir, "policy.yaml")
	writeFile(t, policyPath, []byte(manifests.configMapData(t, "policy.yaml")))
	repo := reg + "/e2e/deploy"
	var v1, v2 pushJSON
	c.okJSON(&v1, "push", repo, modelDir(t, modelFaceAPI))
	c.okJSON(&v2, "push", repo, modelDir(t, modelSilero))
	c.ok("sign", repo+"@"+v1.Digest, "--key", "release.key")
	c.ok("sign", repo+"@"+v2.Digest, "--key", "release.key")
	c.ok("promote", repo+"@"+v1.Digest, "--to", "production", "--policy", policyPath, "--key", "promoter.key")

	secretDir, err := os.MkdirTemp("", "modelreg-e2e-secret-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(secretDir) })
	if err := os.Chmod(secretDir, 0o755); err != nil { // readable by uid 65532
		t.Fatal(err)
	}
	_, podYAML := manifests.render(t, id, renderValues{
		model: repo + ":production", image: image, server: appImage, registry: reg, auth: auth, secretDir: secretDir,
		keys: map[string]string{"release.pub": filepath.Join(c.dir, "release.pub"), "promoter.pub": filepath.Join(c.dir, "promoter.pub")},
	})
	podFile := filepath.Join(work, "play", "pod.yaml")
	writeFile(t, podFile, podYAML)
	pod := "sentiment-" + id
	initCtr, serverCtr := pod+"-pull-model", pod+"-server"
	down := func() {
		pm.run("kube", "down", podFile)
		pm.run("pod", "rm", "-f", "-t", "0", pod)
		pm.run("volume", "rm", "-f", "modelreg-trust-"+id, "modelreg-pull-"+id, "model-files-"+id, "modelreg-scratch-"+id)
	}
	t.Cleanup(down)

	// (a) A signed, promoted production.
	pm.play(t, podFile, initCtr)
	if code := pm.exitCode(t, initCtr); code != exitOK {
		t.Fatalf("init container exit code %d, want 0:\n%s", code, pm.logs(initCtr))
	}
	if ro := pm.inspect(t, initCtr, "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}"); ro != "true 65532:65532" {
		t.Errorf("init container read-only root and user: %q, want true 65532:65532 (from the manifest)", ro)
	}
	wantFiles := fileDigests(t, modelDir(t, modelFaceAPI))
	if got := pm.waitServerFiles(t, serverCtr, 1); got != wantFiles {
		t.Fatalf("the app container sees\n%s\nwant the files of %s:\n%s\ninit container log:\n%s", got, modelFaceAPI, wantFiles, pm.logs(initCtr))
	}
	if got := lastFilesLine(pm.logs(initCtr)); !strings.Contains(got, "(4 downloaded, 0 already there") {
		t.Errorf("first pod start: init container says %q, want 4 files downloaded", got)
	}

	// (c) The pod restarted on its volume.
	started := pm.inspect(t, initCtr, "{{.State.StartedAt}}")
	pm.ok("pod", "stop", "-t", "5", pod)
	pm.ok("pod", "start", pod)
	pm.waitState(t, initCtr, func() bool {
		return pm.inspect(t, initCtr, "{{.State.StartedAt}}") != started && pm.inspect(t, initCtr, "{{.State.Status}}") == "exited"
	})
	if code := pm.exitCode(t, initCtr); code != exitOK {
		t.Fatalf("after the restart the init container exit code is %d, want 0:\n%s", code, pm.logs(initCtr))
	}
	if got := lastFilesLine(pm.logs(initCtr)); !strings.Contains(got, "(0 downloaded, 4 already there, 0 B)") {
		t.Errorf("after the restart the init container says %q, want nothing downloaded:\n%s", got, pm.logs(initCtr))
	}
	if got := pm.waitServerFiles(t, serverCtr, 2); got != wantFiles {
		t.Fatalf("after the restart the app container sees\n%s\nwant\n%s", got, wantFiles)
	}

	// (b) production moved by hand to another signed version, a new pod.
	down()
	c.toolOK("oras", "tag", "--plain-http", repo+"@"+v2.Digest, "production")
	pm.playFails(t, podFile)
	if code := pm.exitCode(t, initCtr); code != exitDenied {
		t.Fatalf("init container exit code %d, want %d (denied):\n%s", code, exitDenied, pm.logs(initCtr))
	}
	log := pm.logs(initCtr)
	for _, p := range []string{`denied`, `production`, `not trusted for ` + regexp.QuoteMeta(v2.Digest), `newest promotion record .* names ` + regexp.QuoteMeta(v1.Digest), `moved outside .modelreg promote`} {
		if !regexp.MustCompile("(?s)" + p).MatchString(log) {
			t.Errorf("init container log does not match %q:\n%s", p, log)
		}
	}
	t.Logf("refused init container says:\n%s", strings.TrimSpace(log))
	if st := pm.inspect(t, serverCtr, "{{.State.Status}} {{.State.StartedAt}}"); !strings.HasPrefix(st, "created 0001-01-01") {
		t.Errorf("app container state %q, want created and never started", st)
	}
}

// podman runs podman with a containers.conf of the test's own.
type podman struct {
	t    *testing.T
	dir  string // working directory: no subfolder named like an image
	conf string
	env  []string
	base string // containers.conf without the infra image
}

func newPodman(t *testing.T, work string) *podman {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman not found (apt-get install -y podman runc; .ci/run installs them): %v", err)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatalf("runc not found (apt-get install -y runc): %v", err)
	}
	pm := &podman{t: t, dir: filepath.Join(work, "play"), conf: filepath.Join(work, "containers.conf"),
		// runc: crun fails with "cgroups in hybrid mode not supported" on
		// these machines; no default ulimits: setting them is refused.
		base: "[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = \"runc\"\n"}
	mkdirAll(t, pm.dir)
	writeFile(t, pm.conf, []byte(pm.base))
	// No DOCKER_CONFIG: podman would read it for its own pulls.
	pm.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(), "CONTAINERS_CONF=" + pm.conf}
	return pm
}

// infraImage makes image the pods' infra (pause) container.
func (pm *podman) infraImage(image string) {
	writeFile(pm.t, pm.conf, fmt.Appendf(nil, "%sinfra_image = %q\ninfra_command = \"/pause\"\n", pm.base, image))
}

func (pm *podman) run(args ...string) result {
	pm.t.Helper()
	r, err := runCommand(pm.dir, pm.env, "podman", args...)
	if err != nil {
		pm.t.Fatalf("%v\n%s", err, r)
	}
	return r
}

func (pm *podman) ok(args ...string) result {
	pm.t.Helper()
	r := pm.run(args...)
	if r.code != 0 {
		pm.t.Fatalf("want exit code 0:\n%s", r)
	}
	return r
}

// cleanup runs podman args when the test ends, ignoring the result.
func (pm *podman) cleanup(args ...string) {
	pm.t.Cleanup(func() { _, _ = runCommand(pm.dir, pm.env, "podman", args...) })
}

// play plays file; when it fails the logs of initCtr say why.
func (pm *podman) play(t *testing.T, file, initCtr string) {
	t.Helper()
	if r := pm.run("kube", "play", "--build=false", "--network", "host", file); r.code != 0 {
		t.Fatalf("want exit code 0:\n%s\nlog of %s:\n%s", r, initCtr, pm.logs(initCtr))
	}
}

// playFails plays file and requires podman to report the failed init
// container.
func (pm *podman) playFails(t *testing.T, file string) {
	t.Helper()
	r := pm.run("kube", "play", "--build=false", "--network", "host", file)
	if r.code == 0 || !strings.Contains(r.stderr, "init container") {
		t.Fatalf("want kube play to fail on the init container:\n%s", r)
	}
}

func (pm *podman) inspect(t *testing.T, ctr, format string) string {
	t.Helper()
	return strings.TrimSpace(pm.ok("inspect", "--type", "container", "--format", format, ctr).stdout)
}

func (pm *podman) exitCode(t *testing.T, ctr string) int {
	t.Helper()
	n, err := strconv.Atoi(pm.inspect(t, ctr, "{{.State.ExitCode}}"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// logs is a container's stdout and stderr.
func (pm *podman) logs(ctr string) string {
	r := pm.run("logs", ctr)
	return r.stdout + r.stderr
}

func (pm *podman) waitState(t *testing.T, ctr string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(podTimeout)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach the expected state within %s; log:\n%s", ctr, podTimeout, pm.logs(ctr))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitServerFiles waits until the stand-in server has reported its files
// n times (once per start) and returns its last report.
func (pm *podman) waitServerFiles(t *testing.T, ctr string, n int) string {
	t.Helper()
	var reports []string
	pm.waitState(t, ctr, func() bool {
		reports = strings.SplitAfter(pm.logs(ctr), "modelapp: ready\n")
		return len(reports) > n
	})
	lines := strings.Split(strings.TrimSpace(strings.TrimSuffix(reports[n-1], "modelapp: ready\n")), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// lastFilesLine is the last "files: …" line of pull's text output.
func lastFilesLine(log string) string {
	m := regexp.MustCompile(`files: \d+ \(.*\)`).FindAllString(log, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1]
}

// fileDigests is what the stand-in server prints for the files of dir.
func fileDigests(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		lines = append(lines, fmt.Sprintf("sha256:%s %d %s", hex.EncodeToString(sum[:]), len(b), filepath.ToSlash(rel)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// makeImage runs `make image` with the image name, version and build
// context given.
func makeImage(t *testing.T, pm *podman, image, version, context string) {
	t.Helper()
	ctx, cancel := contextWithTimeout(imageBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "image", "IMAGE="+image, "VERSION="+version, "COMMIT=e2e", "IMAGE_CONTEXT="+context)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+pm.conf)
	cmd.SysProcAttr = childAttr()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make image IMAGE=%s: %v\n%s", image, err, tail(string(out), 4000))
	}
	t.Logf("make image took %s", time.Since(start).Round(time.Second))
}

// buildHelperImages builds, FROM scratch, the stand-in server
// (testdata/modelapp) and the pods' infra image (the same binary as /pause).
func buildHelperImages(t *testing.T, pm *podman, work, id string) (app, pause string) {
	t.Helper()
	ctxDir := filepath.Join(work, "helper")
	mkdirAll(t, ctxDir)
	ctx, cancel := contextWithTimeout(imageBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(ctxDir, "modelapp"), "./testdata/modelapp")
	cmd.Dir = filepath.Join(repoRoot, "e2e")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/modelapp: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(ctxDir, "modelapp"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(ctxDir, "pause"), b)
	if err := os.Chmod(filepath.Join(ctxDir, "pause"), 0o755); err != nil {
		t.Fatal(err)
	}
	app, pause = "localhost/modelreg-e2e-app:"+id, "localhost/modelreg-e2e-pause:"+id
	for img, entry := range map[string]string{app: "/modelapp", pause: "/pause"} {
		file := filepath.Join(ctxDir, strings.TrimPrefix(entry, "/")+".Containerfile")
		writeFile(t, file, fmt.Appendf(nil, "FROM scratch\nCOPY %s %s\nUSER 65532:65532\nENTRYPOINT [%q]\n", entry[1:], entry, entry))
		pm.cleanup("rmi", "-f", img)
		pm.ok("build", "--pull=never", "--layers=false", "-q", "-f", file, "-t", img, ctxDir)
	}
	return app, pause
}

// startAuthRegistry runs distribution v3 on loopback with htpasswd auth
// and returns its host and the one user's name and password.
func startAuthRegistry(t *testing.T, dir string) (host, user, pass string) {
	t.Helper()
	user, pass = "deployer", "e2e-registry-password"
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	writeFile(t, htpasswd, fmt.Appendf(nil, "%s:%s\n", user, hash))
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	host = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, []byte(distconfig.YAML(host, filepath.Join(dir, "data"))+fmt.Sprintf("auth:\n  htpasswd:\n    realm: modelreg-e2e\n    path: %q\n", htpasswd)))
	logPath := filepath.Join(dir, "server.log")
	stop, exited, err := startProcess(toolPath(t, "registry"), []string{"serve", cfg}, nil, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			t.Fatalf("registry exited:\n%s", readTail(logPath, 3000))
		default:
		}
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return host, user, pass
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry with auth at %s not ready (want 401 on /v2/):\n%s", host, readTail(logPath, 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shipped is the text of deploy/kubernetes/{secret,configmap,deployment}.yaml.
type shipped struct{ secret, configMap, deployment string }

func readShippedManifests(t *testing.T) shipped {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "kubernetes", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return shipped{read("secret.yaml"), read("configmap.yaml"), read("deployment.yaml")}
}

// configMapData is one entry of the shipped ConfigMap.
func (s shipped) configMapData(t *testing.T, key string) string {
	t.Helper()
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal([]byte(s.configMap), &cm); err != nil {
		t.Fatal(err)
	}
	v, ok := cm.Data[key]
	if !ok {
		t.Fatalf("deploy/kubernetes/configmap.yaml has no %s", key)
	}
	return v
}

type renderValues struct {
	model, image, server, registry, auth string
	keys                                 map[string]string // ConfigMap key → public key file
	secretDir                            string            // gets the Secret's files
}

// render substitutes the placeholders, makes every podman-global name
// unique to this run, and turns the Deployment's pod template into a Pod.
// It returns the Secret, and the ConfigMap with the Pod.
func (s shipped) render(t *testing.T, id string, v renderValues) (secretYAML, podYAML []byte) {
	t.Helper()
	secret := strings.Replace(s.secret, placeholderAuth, fmt.Sprintf("%q: {\"auth\": %q}", v.registry, v.auth), 1)
	cm := s.configMap
	for k, path := range v.keys {
		pem, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		old := "    -----BEGIN PUBLIC KEY-----\n    REPLACE-WITH-" + k + "\n    -----END PUBLIC KEY-----"
		if !strings.Contains(cm, old) {
			t.Fatalf("configmap.yaml lacks the placeholder of %s", k)
		}
		cm = strings.Replace(cm, old, "    "+strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n    "), 1)
	}
	dep := strings.NewReplacer(placeholderModel, v.model, placeholderImage, v.image, placeholderServer, v.server).Replace(s.deployment)
	var docs [][]byte
	for _, text := range []string{secret, cm, dep} {
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); !strings.HasPrefix(l, "#") && (strings.Contains(l, "registry.example.com") || strings.Contains(l, "REPLACE-WITH")) {
				t.Fatalf("a placeholder the test does not know is left in the shipped manifests: %q", l)
			}
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(text), &obj); err != nil {
			t.Fatal(err)
		}
		if obj["kind"] == "Secret" {
			// What kubelet mounts: a folder with one file per key.
			for k, val := range obj["stringData"].(map[string]any) {
				writeFile(t, filepath.Join(v.secretDir, k), []byte(val.(string)))
			}
		}
		if obj["kind"] == "Deployment" {
			tmpl := obj["spec"].(map[string]any)["template"].(map[string]any)
			meta := tmpl["metadata"].(map[string]any)
			meta["name"] = "sentiment-" + id
			meta["annotations"] = map[string]any{"io.podman.annotations.init.container.type": "always"}
			spec := tmpl["spec"].(map[string]any)
			spec["restartPolicy"] = "Never"
			// podman 4.3 mounts a Secret's stringData not at all and its
			// data base64-encoded as it stands in the YAML, so the files
			// kubelet would mount come from a hostPath instead.
			for _, vol := range spec["volumes"].([]any) {
				vol := vol.(map[string]any)
				if _, ok := vol["secret"]; ok {
					delete(vol, "secret")
					vol["hostPath"] = map[string]any{"path": v.secretDir, "type": "Directory"}
				}
			}
			obj = map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	// Names podman keeps globally (volumes, secrets, pods) get this run's id.
	unique := func(b []byte) []byte {
		out := string(b)
		for _, name := range []string{"modelreg-trust", "modelreg-pull", "model-files", "modelreg-scratch"} {
			out = regexp.MustCompile(`\b`+name+`\b`).ReplaceAllString(out, name+"-"+id)
		}
		return []byte(out)
	}
	return unique(docs[0]), unique(bytes.Join(docs[1:], []byte("---\n")))
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// TestVersion: `version -o json` is one document with the Go version;
// --version prints what `version` does.
func TestVersion(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	var v struct {
		Version   string `json:"version"`
		GoVersion string `json:"goVersion"`
		Platform  string `json:"platform"`
	}
	c.okJSON(&v, "version")
	if v.Version == "" || !strings.HasPrefix(v.GoVersion, "go1.") || !strings.Contains(v.Platform, "/") {
		t.Errorf("version -o json = %+v, want a version, a Go version and a platform", v)
	}
	text := c.ok("version").stdout
	if flag := c.ok("--version").stdout; flag != text || !strings.HasPrefix(text, "modelreg "+v.Version+"\n") {
		t.Errorf("--version printed %q, version printed %q; want the same, starting with modelreg %s", flag, text, v.Version)
	}
	c.fails([]int{exitUsage}, "version", "extra")
}
