package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/modelreg/modelreg/internal/distconfig"
)

// registryProc is a registry running as a child process on 127.0.0.1 with
// its storage in a folder of its own.
type registryProc struct {
	kind string // "olareg", "distribution" or "docker-registry"
	addr string // HOST:PORT
	root string
	cmd  *exec.Cmd
}

// startRegistry starts a fresh registry of kind with storage under dir.
func startRegistry(cfg *config, kind, dir string) (*registryProc, error) {
	root := filepath.Join(dir, "storage")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	r := &registryProc{kind: kind, root: root}
	switch kind {
	case "olareg":
		// modelreg serve is olareg v0.2.2 with an on-disk OCI layout per
		// repository.
		r.cmd = exec.Command(cfg.modelreg, "serve", "--addr", "127.0.0.1:0", "--root", root)
		stderr, err := r.cmd.StderrPipe()
		if err != nil {
			return nil, err
		}
		if err := r.cmd.Start(); err != nil {
			return nil, err
		}
		addrc := make(chan string, 1)
		go func() {
			re := regexp.MustCompile(`listening on ([^,\s]+)`)
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if m := re.FindStringSubmatch(sc.Text()); m != nil {
					addrc <- m[1]
					break
				}
			}
			io.Copy(io.Discard, stderr)
		}()
		select {
		case r.addr = <-addrc:
		case <-time.After(10 * time.Second):
			r.stop()
			return nil, fmt.Errorf("olareg (modelreg serve) did not say where it listens")
		}
	case "distribution", "docker-registry":
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		r.addr = fmt.Sprintf("127.0.0.1:%d", port)
		conf := filepath.Join(dir, "config.yml")
		yml := distconfig.YAML(r.addr, root)
		if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
			return nil, err
		}
		bin := cfg.registry
		if kind == "docker-registry" {
			bin = cfg.dockerRegistry // Debian's distribution 2.8
		}
		r.cmd = exec.Command(bin, "serve", conf)
		r.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
		r.cmd.Stdout, r.cmd.Stderr = io.Discard, io.Discard
		if err := r.cmd.Start(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown registry %q", kind)
	}
	if err := waitReady("http://"+r.addr+"/v2/", 15*time.Second); err != nil {
		r.stop()
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	return r, nil
}

// stop ends the registry (by its process id) and waits for it.
func (r *registryProc) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(url string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v", limit, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
