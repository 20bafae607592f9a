package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelreg/modelreg/internal/distconfig"
	"github.com/modelreg/modelreg/internal/faultproxy"
)

// startupRow is one start-up comparison: the same job by modelreg and by
// oras, each run cfg.startupRuns times, alternating which goes first.
type startupRow struct {
	name             string
	modelreg, oras   []time.Duration
	exitMR, exitOras int
}

// runStartup times `modelreg version` against `oras version`, and
// `modelreg versions` against `oras repo tags` of an empty repository
// (one that holds a blob and no tag) on olareg, as the start-up
// targets name them.
func (b *bench) runStartup() error {
	if b.cfg.startupRuns == 0 {
		return nil
	}
	dir, err := os.MkdirTemp(b.work, "startup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	reg, err := startRegistry(b.cfg, "olareg", filepath.Join(dir, "registry"))
	if err != nil {
		return err
	}
	defer reg.stop()
	blobFile := filepath.Join(dir, "blob")
	os.WriteFile(blobFile, []byte("{}"), 0o644)
	if err := rawPut(context.Background(), reg.addr, "bench/empty", blobFile, blob{Digest: sha256Digest([]byte("{}")), Size: 2}, false); err != nil {
		return fmt.Errorf("making the empty repository: %w", err)
	}
	docker := filepath.Join(dir, "docker")
	os.MkdirAll(docker, 0o700)
	envs := append(os.Environ(), "DOCKER_CONFIG="+docker, "MODELREG_CACHE_DIR="+filepath.Join(dir, "cache"))
	repo := reg.addr + "/bench/empty"
	rows := []struct {
		name     string
		mr, oras []string
	}{
		{"`version`", []string{b.cfg.modelreg, "version"}, []string{b.cfg.oras, "version"}},
		{"tags of an empty repository (`modelreg versions`, `oras repo tags`)", []string{b.cfg.modelreg, "versions", repo, "-o", "json"}, []string{b.cfg.oras, "repo", "tags", "--plain-http", repo}},
	}
	for _, r := range rows {
		row := startupRow{name: r.name}
		for i := range b.cfg.startupRuns {
			order := []bool{true, false}
			if i%2 == 1 {
				order = []bool{false, true}
			}
			for _, isMR := range order {
				args := r.oras
				if isMR {
					args = r.mr
				}
				c := exec.Command(args[0], args[1:]...)
				c.Env = envs
				start := time.Now()
				err := c.Run()
				d := time.Since(start)
				code := 0
				if err != nil {
					ee, ok := err.(*exec.ExitError)
					if !ok {
						return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
					}
					code = ee.ExitCode()
				}
				if isMR {
					row.modelreg, row.exitMR = append(row.modelreg, d), code
				} else {
					row.oras, row.exitOras = append(row.oras, d), code
				}
			}
		}
		md, od := middle(slices.Clone(row.modelreg)), middle(slices.Clone(row.oras))
		b.logf("start-up %s: modelreg %v (exit %d), oras %v (exit %d)", r.name, md.Round(100*time.Microsecond), row.exitMR, od.Round(100*time.Microsecond), row.exitOras)
		b.startup = append(b.startup, row)
	}
	return nil
}

func sha256Digest(p []byte) string {
	h := sha256.Sum256(p)
	return "sha256:" + hex.EncodeToString(h[:])
}

// consistencyRow is what one registry showed of its tag writes.
type consistencyRow struct {
	kind string
	tags int
	// put is the median time of a tag PUT; visible the longest time
	// from a PUT's answer to the tag being both resolvable (HEAD) and
	// listed (tags/list), reads included; maxReads the most rounds of
	// reads any tag needed (1: seen at the first read).
	put, visible time.Duration
	maxReads     int
	// window is the median and max time from the start of a HEAD that
	// found a tag free to the answer of its PUT, with 10 writers at once:
	// an upper bound of the check-to-write window AllocateVersion's
	// settle must outlast.
	windowMedian, windowMax time.Duration
}

// consistencyTags is how many tags are written one after another; each of
// 10 concurrent writers then writes consistencyTags/10.
const consistencyTags = 50

// runConsistency measures, on each registry kind (and Debian's
// docker-registry 2.8 where installed), how soon a tag PUT is listed and
// resolvable, and the check-to-write window of concurrent writers.
func (b *bench) runConsistency() error {
	if b.cfg.startupRuns == 0 {
		return nil
	}
	kinds := slices.Clone(b.cfg.registries)
	if _, err := os.Stat(b.cfg.dockerRegistry); err == nil && !slices.Contains(kinds, "docker-registry") {
		kinds = append(kinds, "docker-registry")
	}
	for _, kind := range kinds {
		row, err := b.consistency(kind)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		b.logf("tag consistency %s: PUT %v, visible within %v (%d read rounds at most), check-to-write window %v median, %v max", kind, row.put, row.visible, row.maxReads, row.windowMedian, row.windowMax)
		b.consistencyRows = append(b.consistencyRows, row)
	}
	return nil
}

func (b *bench) consistency(kind string) (consistencyRow, error) {
	row := consistencyRow{kind: kind, tags: consistencyTags}
	dir, err := os.MkdirTemp(b.work, "consistency-")
	if err != nil {
		return row, err
	}
	defer os.RemoveAll(dir)
	reg, err := startRegistry(b.cfg, kind, filepath.Join(dir, "registry"))
	if err != nil {
		return row, err
	}
	defer reg.stop()
	ctx := context.Background()
	cfgFile := filepath.Join(dir, "config")
	os.WriteFile(cfgFile, []byte("{}"), 0o644)
	cfgDigest := sha256Digest([]byte("{}"))
	if err := rawPut(ctx, reg.addr, "bench/tags", cfgFile, blob{Digest: cfgDigest, Size: 2}, false); err != nil {
		return row, err
	}
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfgDigest + `","size":2},"layers":[]}`)
	base := "http://" + reg.addr + "/v2/bench/tags/"
	do := func(method, url string, body []byte) (int, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if body != nil {
			req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		} else {
			req.Body = http.NoBody
		}
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := limitClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes(), nil
	}
	var puts []time.Duration
	for i := range consistencyTags {
		tag := fmt.Sprintf("c%d", i)
		start := time.Now()
		code, body, err := do(http.MethodPut, base+"manifests/"+tag, manifest)
		if err != nil {
			return row, err
		}
		if code != http.StatusCreated {
			return row, fmt.Errorf("PUT %s: %d %s", tag, code, body)
		}
		answered := time.Now()
		puts = append(puts, answered.Sub(start))
		for reads := 1; ; reads++ {
			hc, _, err := do(http.MethodHead, base+"manifests/"+tag, nil)
			if err != nil {
				return row, err
			}
			lc, lb, err := do(http.MethodGet, base+"tags/list", nil)
			if err != nil {
				return row, err
			}
			var list struct{ Tags []string }
			json.Unmarshal(lb, &list)
			if hc == http.StatusOK && lc == http.StatusOK && slices.Contains(list.Tags, tag) {
				row.visible = max(row.visible, time.Since(answered))
				row.maxReads = max(row.maxReads, reads)
				break
			}
			if time.Since(answered) > 30*time.Second {
				return row, fmt.Errorf("tag %s not visible 30 s after its PUT was answered", tag)
			}
			time.Sleep(time.Millisecond)
		}
	}
	row.put = middle(puts)
	var mu sync.Mutex
	var windows []time.Duration
	var wg sync.WaitGroup
	errc := make(chan error, 10)
	for w := range 10 {
		wg.Go(func() {
			for k := range consistencyTags / 10 {
				tag := fmt.Sprintf("w%d-%d", w, k)
				start := time.Now()
				if code, _, err := do(http.MethodHead, base+"manifests/"+tag, nil); err != nil || code != http.StatusNotFound {
					errc <- fmt.Errorf("HEAD %s: %d %v", tag, code, err)
					return
				}
				if code, body, err := do(http.MethodPut, base+"manifests/"+tag, manifest); err != nil || code != http.StatusCreated {
					errc <- fmt.Errorf("PUT %s: %d %s %v", tag, code, body, err)
					return
				}
				mu.Lock()
				windows = append(windows, time.Since(start))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return row, err
	}
	row.windowMedian = middle(windows)
	row.windowMax = windows[len(windows)-1] // middle sorted them
	return row, nil
}

// fanoutRow is one fan-out variant: pullers concurrent `modelreg pull`s
// of the large model on this machine.
type fanoutRow struct {
	name    string
	pullers int
	wall    time.Duration // first start to last end
	// originBytes is what the origin registry served (a counting proxy
	// in front of it), manifests included.
	originBytes int64
	// rssSum adds up the pullers' peak RSS (an upper bound of what they
	// held at once); rssMax is the largest one's.
	rssSum, rssMax int64 // KiB
	// modelBytes is the size of the model pulled (its files).
	modelBytes int64
}

// runFanout pulls the large model with cfg.fanout concurrent `modelreg
// pull`s: directly from the origin; through distribution v3 in proxy mode
// (a pull-through cache, given with --mirror) starting cold; and through a
// fresh cache after one warming pull. The origin is distribution v3 (olareg
// when distribution is not among BENCH_REGISTRIES) behind a counting proxy.
func (b *bench) runFanout(m *model) error {
	originKind := "olareg"
	if slices.Contains(b.cfg.registries, "distribution") {
		originKind = "distribution"
	}
	dir, err := os.MkdirTemp(b.work, "fanout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	origin, err := startRegistry(b.cfg, originKind, filepath.Join(dir, "origin"))
	if err != nil {
		return err
	}
	defer origin.stop()
	counter, err := faultproxy.New("http://"+origin.addr, faultproxy.Options{})
	if err != nil {
		return err
	}
	defer counter.Close()
	ref := counter.Addr() + "/bench/model"
	docker := filepath.Join(dir, "docker")
	os.MkdirAll(docker, 0o700)
	pull := func(name string, i int, mirror string) *exec.Cmd {
		args := []string{"pull", ref, filepath.Join(dir, "pulled", fmt.Sprintf("%s-%d", name, i)), "--output", "json"}
		if mirror != "" {
			args = append(args, "--mirror", counter.Addr()+"="+mirror)
		}
		c := exec.Command(b.cfg.modelreg, args...)
		// The pullers of one row share a cache folder, as pullers on one
		// machine do: through a mirror they coordinate per blob there.
		c.Env = append(os.Environ(), "DOCKER_CONFIG="+docker, "MODELREG_CACHE_DIR="+filepath.Join(dir, "cache", name))
		return c
	}
	b.logf("fan-out: pushing the large model to %s", originKind)
	push := exec.Command(b.cfg.modelreg, "push", ref, m.dir, "--output", "json")
	push.Env = append(os.Environ(), "DOCKER_CONFIG="+docker, "MODELREG_CACHE_DIR="+filepath.Join(dir, "cache", "push"))
	if _, stderr, err := measure(push); err != nil {
		return fmt.Errorf("push: %w\n%s", err, tail(stderr))
	}
	// together runs n pullers at once and returns the row.
	together := func(name string, n int, mirror string) (fanoutRow, error) {
		row := fanoutRow{name: name, pullers: n, modelBytes: m.bytes}
		counter.ResetStats()
		syscall.Sync()
		samples := make([]sample, n)
		errs := make([]error, n)
		outs := make([][]byte, n)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			wg.Go(func() { samples[i], outs[i], errs[i] = measure(pull(name, i, mirror)) })
		}
		wg.Wait()
		row.wall = time.Since(start)
		row.originBytes = counter.Stats().BytesToClients
		for i := range n {
			if errs[i] != nil {
				return row, fmt.Errorf("%s, puller %d: %w\n%s", name, i+1, errs[i], tail(outs[i]))
			}
			row.rssSum += samples[i].rssKiB
			row.rssMax = max(row.rssMax, samples[i].rssKiB)
		}
		if err := verifyPulled(m, filepath.Join(dir, "pulled", name+"-0")); err != nil {
			return row, fmt.Errorf("%s pulled wrong files: %w", name, err)
		}
		os.RemoveAll(filepath.Join(dir, "pulled"))
		b.logf("fan-out %-40s %d pullers %7.2fs, origin served %.2f GiB, RSS %d MB together (%d MB max)", name, n, row.wall.Seconds(), float64(row.originBytes)/(1<<30), row.rssSum*1024/1e6, row.rssMax*1024/1e6)
		return row, nil
	}
	n := b.cfg.fanout
	row, err := together("direct from the origin", n, "")
	if err != nil {
		return err
	}
	b.fanout = append(b.fanout, row)
	if _, err := os.Stat(b.cfg.registry); err != nil {
		b.logf("fan-out: no distribution binary (%v), so no pull-through cache rows", err)
		return nil
	}
	for _, warm := range []bool{false, true} {
		cache, err := startProxyCache(b.cfg, filepath.Join(dir, fmt.Sprintf("cache-registry-%v", warm)), counter.Addr())
		if err != nil {
			return err
		}
		if !warm {
			row, err = together("through a cold pull-through cache", n, cache.addr)
		} else {
			if row, err = together("one warming pull through the cache", 1, cache.addr); err == nil {
				b.fanout = append(b.fanout, row)
				row, err = together("then the others through the warm cache", n-1, cache.addr)
			}
		}
		cache.stop()
		if err != nil {
			return err
		}
		b.fanout = append(b.fanout, row)
	}
	return nil
}

// startProxyCache runs distribution v3 as a pull-through cache
// (proxy.remoteurl) of remote (HOST:PORT, plain HTTP).
func startProxyCache(cfg *config, dir, remote string) (*registryProc, error) {
	root := filepath.Join(dir, "storage")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &registryProc{kind: "distribution-proxy", addr: fmt.Sprintf("127.0.0.1:%d", port), root: root}
	conf := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(conf, []byte(distconfig.YAML(r.addr, root)+fmt.Sprintf("proxy:\n  remoteurl: %q\n", "http://"+remote)), 0o644); err != nil {
		return nil, err
	}
	r.cmd = exec.Command(cfg.registry, "serve", conf)
	r.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitReady("http://"+r.addr+"/v2/", 15*time.Second); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}
