package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	digest "github.com/opencontainers/go-digest"

	"github.com/modelreg/modelreg/internal/distconfig"
)

// Names of the registries in the fleet, used as subtest names.
const (
	regOlareg       = "olareg"
	regDistribution = "distribution"
	regDocker28     = "docker-registry"
)

// dockerRegistryBin is where Debian's docker-registry package installs the
// 2.8 server.
const dockerRegistryBin = "/usr/bin/docker-registry"

// Startup and shutdown bounds. Every server here is ready in well under a
// second (measured when the fleet was chosen); the margin is for a loaded CI host.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	// portAttempts is how often a binary registry is restarted on a new
	// port when the free port found was taken before the server bound it.
	portAttempts = 3
)

// storageLayout says where a registry keeps blobs on disk, for the tests
// that tamper with stored bytes.
type storageLayout int

const (
	// layoutOCIPerRepo is olareg's StoreDir: one OCI image layout per
	// repository, blobs at <root>/<repo>/blobs/<alg>/<hex>.
	layoutOCIPerRepo storageLayout = iota
	// layoutDistribution is distribution's tree, shared by all
	// repositories: <root>/docker/registry/v2/blobs/<alg>/<hex[:2]>/<hex>/data.
	layoutDistribution
)

// registry is one member of the fleet.
type registry struct {
	name string
	// host is 127.0.0.1:PORT; references are host + "/" + repository.
	host string
	// root is the storage folder on disk.
	root   string
	layout storageLayout
	// tagDelete is false for registries that refuse DELETE of a tag
	// (docker-registry 2.8 answers 400).
	tagDelete bool
	// err is set when the registry could not be started; tests that use
	// it fail with this error.
	err  error
	stop func() error
	// logPath receives the server's output (binaries only).
	logPath string
}

// blobPath is the file that holds blob d of repository repo.
func (r *registry) blobPath(repo string, d digest.Digest) string {
	switch r.layout {
	case layoutOCIPerRepo:
		return filepath.Join(r.root, filepath.FromSlash(repo), "blobs", d.Algorithm().String(), d.Encoded())
	default:
		return filepath.Join(r.root, "docker", "registry", "v2", "blobs", d.Algorithm().String(), d.Encoded()[:2], d.Encoded(), "data")
	}
}

// ref returns the reference HOST/REPO followed by suffix (":tag", "@digest"
// or "").
func (r *registry) ref(repo, suffix string) string {
	return r.host + "/" + repo + suffix
}

// need fails the test when the registry is not running.
func (r *registry) need(t testing.TB) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("registry %s is not running: %v", r.name, r.err)
	}
}

// startFleet starts every registry under dir. It never fails as a whole: a
// registry that cannot start keeps its error for the tests that use it.
func startFleet(dir string) []*registry {
	return []*registry{
		startOlareg(filepath.Join(dir, regOlareg)),
		startBinaryRegistry(regDistribution, filepath.Join(toolsDir, "registry"),
			"run `make tools` to build the pinned distribution v3.1.2 registry into .tools/bin",
			[]string{"OTEL_TRACES_EXPORTER=none"}, filepath.Join(dir, regDistribution), true),
		startBinaryRegistry(regDocker28, dockerRegistryBin,
			"install Debian's docker-registry 2.8 package: apt-get install -y docker-registry",
			nil, filepath.Join(dir, regDocker28), false),
	}
}

// stopFleet stops every registry that runs, in reverse order.
func stopFleet(regs []*registry) {
	for i := len(regs) - 1; i >= 0; i-- {
		r := regs[i]
		if r.stop == nil {
			continue
		}
		if err := r.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: stopping registry %s: %v\n", r.name, err)
		}
	}
}

// startOlareg runs olareg v0.2.2 in this process on its own listener, with
// an OCI layout per repository under root and DELETE enabled (alias rm).
func startOlareg(root string) *registry {
	r := &registry{name: regOlareg, root: root, layout: layoutOCIPerRepo, tagDelete: true}
	if err := os.MkdirAll(root, 0o755); err != nil {
		r.err = err
		return r
	}
	deleteEnabled := true
	reg := olareg.New(config.Config{
		Storage: config.ConfigStorage{StoreType: config.StoreDir, RootDir: root},
		API:     config.ConfigAPI{DeleteEnabled: &deleteEnabled},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.err = err
		_ = reg.Close()
		return r
	}
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	r.host = ln.Addr().String()
	r.stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		err := srv.Shutdown(ctx)
		if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return errors.Join(err, reg.Close())
	}
	if err := waitReady(r.host, nil); err != nil {
		r.err = err
	}
	return r
}

// startBinaryRegistry runs a distribution-family registry binary (v3 or
// 2.8) with a config file of ours: filesystem storage under root, delete on,
// redirects off, upload purging off, quiet logs.
func startBinaryRegistry(name, bin, installHint string, extraEnv []string, root string, tagDelete bool) *registry {
	r := &registry{name: name, root: filepath.Join(root, "data"), layout: layoutDistribution, tagDelete: tagDelete,
		logPath: filepath.Join(root, "server.log")}
	if _, err := os.Stat(bin); err != nil {
		r.err = fmt.Errorf("%s not found (%v): %s", bin, err, installHint)
		return r
	}
	if err := os.MkdirAll(r.root, 0o755); err != nil {
		r.err = err
		return r
	}
	for attempt := 1; attempt <= portAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			r.err = err
			return r
		}
		r.host = fmt.Sprintf("127.0.0.1:%d", port)
		cfgPath := filepath.Join(root, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(distconfig.YAML(r.host, r.root)), 0o644); err != nil {
			r.err = err
			return r
		}
		stop, exited, err := startProcess(bin, []string{"serve", cfgPath}, extraEnv, r.logPath)
		if err != nil {
			r.err = fmt.Errorf("starting %s: %w", bin, err)
			return r
		}
		if err := waitReady(r.host, exited); err != nil {
			_ = stop()
			r.err = fmt.Errorf("%s serve %s: %w\nserver log:\n%s", bin, cfgPath, err, readTail(r.logPath, 3000))
			if errors.Is(err, errExited) && attempt < portAttempts {
				continue // most likely the port was taken meanwhile
			}
			return r
		}
		r.err = nil
		r.stop = stop
		return r
	}
	return r
}

// errExited reports that a registry process ended before it was ready.
var errExited = errors.New("registry process exited before it was ready")

// startProcess starts bin with args, output to logPath, and returns a stop
// function (SIGTERM, then SIGKILL after stopTimeout) and a channel closed
// when the process has exited. REGISTRY_* variables of the caller are not
// passed on: distribution reads them as configuration overrides.
func startProcess(bin string, args, extraEnv []string, logPath string) (stop func() error, exited <-chan struct{}, err error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childAttr()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, nil, err
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	stop = func() error {
		select {
		case <-done:
			return nil // already gone
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("pid %d ignored SIGTERM for %s and was killed", cmd.Process.Pid, stopTimeout)
		}
		var ee *exec.ExitError
		if waitErr != nil && !errors.As(waitErr, &ee) {
			return waitErr
		}
		return nil
	}
	return stop, done, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls GET http://host/v2/ until it answers 200.
func waitReady(host string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errExited
		default:
		}
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("GET http://%s/v2/ not 200 after %s (last: %s)", host, readyTimeout, last)
}

// readTail returns the end of a log file, for error messages.
func readTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tail(string(bytes.TrimSpace(b)), n)
}

// forEachRegistry runs f as a parallel subtest per registry of the fleet,
// named after the registry. With names given, only those registries run.
func forEachRegistry(t *testing.T, f func(t *testing.T, r *registry), names ...string) {
	t.Helper()
	for _, r := range fleet {
		if len(names) > 0 && !slices.Contains(names, r.name) {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			r.need(t)
			f(t, r)
		})
	}
}
