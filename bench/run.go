package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/modelreg/modelreg/internal/faultproxy"
)

// model is a model folder and its files with digests.
type model struct {
	name  string // "large" or "small"
	dir   string
	plan  string // JSON file of []blob
	blobs []blob
	bytes int64
}

// sample is one measured step.
type sample struct {
	run    int // repetition (0-based) it was taken in
	dur    time.Duration
	rssKiB int64
	cpu    time.Duration // user + system time of the child process
}

// key names a cell of the report.
type key struct{ model, registry, net, tool, step string }

var steps = []string{"cold push", "unchanged re-push", "cold pull", "re-pull into a full folder"}

type bench struct {
	cfg     *config
	work    string
	results map[key][]sample
	log     io.Writer
	// loadStart is the load average when the run started.
	loadStart string
	// shaRate is sha256 throughput on one core in bytes per second.
	shaRate float64
	// seeded holds, per model and registry kind, the registry that the
	// capped pulls read (filled once over loopback by every tool's push).
	seeded map[string]*registryProc
	// extra sections of the report (start-up, tag consistency, fan-out).
	startup         []startupRow
	consistencyRows []consistencyRow
	fanout          []fanoutRow
}

func run(cfg *config) (err error) {
	work, err := os.MkdirTemp(cfg.dir, "modelreg-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b := &bench{cfg: cfg, work: work, results: map[key][]sample{}, log: os.Stderr, loadStart: loadavg(), shaRate: shaRate(), seeded: map[string]*registryProc{}}
	defer func() {
		for _, r := range b.seeded {
			r.stop()
		}
	}()
	started := time.Now()
	if err := b.runStartup(); err != nil {
		return fmt.Errorf("start-up: %w", err)
	}
	if err := b.runConsistency(); err != nil {
		return fmt.Errorf("tag consistency: %w", err)
	}
	var models []*model
	for _, name := range cfg.models {
		m, err := b.makeModel(name)
		if err != nil {
			return fmt.Errorf("making the %s model: %w", name, err)
		}
		models = append(models, m)
	}
	for _, m := range models {
		for _, reg := range cfg.registries {
			for _, net := range cfg.nets {
				// Each repetition runs every tool once, in an order that
				// rotates by one per repetition, so the ratios of one
				// repetition share the host's weather (see report).
				for r := range cfg.runs {
					tools := append([]string(nil), cfg.tools...)
					for i := 0; i < r%len(tools); i++ {
						tools = append(tools[1:], tools[0])
					}
					for _, tool := range tools {
						if err := b.runTool(m, reg, net, tool, r); err != nil {
							return fmt.Errorf("%s model, %s, %s, %s, run %d: %w", m.name, reg, net, tool, r+1, err)
						}
					}
				}
			}
		}
	}
	// The seeded registries of the capped pulls hold a copy of each
	// model per tool (40 GiB at full size): free them before the fan-out
	// writes 8 more copies, which once filled the disk and lost the report.
	for k, r := range b.seeded {
		r.stop()
		os.RemoveAll(filepath.Dir(filepath.Dir(r.root)))
		delete(b.seeded, k)
	}
	var fanoutErr error
	for _, m := range models {
		if m.name == "large" && cfg.fanout > 0 {
			if fanoutErr = b.runFanout(m); fanoutErr != nil {
				b.logf("fan-out failed, reporting the rest: %v", fanoutErr)
			}
		}
	}
	report := b.report(models, time.Since(started))
	b.logf("the run took %s", time.Since(started).Round(time.Second))
	fmt.Print(report)
	defer func() {
		if err == nil && fanoutErr != nil {
			err = fmt.Errorf("fan-out: %w", fanoutErr)
		}
	}()
	if cfg.out != "" {
		return os.WriteFile(cfg.out, []byte(report), 0o644)
	}
	return nil
}

// shaRate measures sha256 on one core in bytes per second, over 1 GiB
// hashed from memory.
func shaRate() float64 {
	buf := make([]byte, 1<<20)
	h := sha256.New()
	start := time.Now()
	for range 1024 {
		h.Write(buf)
	}
	return float64(1024*len(buf)) / time.Since(start).Seconds()
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// makeModel writes the large or small model and its plan of digests.
func (b *bench) makeModel(name string) (*model, error) {
	m := &model{name: name, dir: filepath.Join(b.work, "model-"+name)}
	switch name {
	case "large":
		b.logf("making the large model (2 shards of %s) with scripts/mkmodel", b.cfg.shardSize)
		cmd := exec.Command("go", "run", "./scripts/mkmodel", "-shards", "2", "-shard-size", b.cfg.shardSize, m.dir)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, err
		}
	case "small":
		b.logf("making the small model (%d files)", b.cfg.smallFiles)
		for i := range b.cfg.smallFiles {
			p := filepath.Join(m.dir, fmt.Sprintf("shard-%02d", i/100), fmt.Sprintf("part-%04d.bin", i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			data := make([]byte, 1024+mrand.IntN(31*1024))
			rand.Read(data)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(m.dir, "config.json"), []byte(`{"model_type":"bench","num_parts":`+fmt.Sprint(b.cfg.smallFiles)+"}\n"), 0o644); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown model %q (want large or small)", name)
	}
	err := filepath.WalkDir(m.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(m.dir, p)
		m.blobs = append(m.blobs, blob{Path: filepath.ToSlash(rel), Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: n})
		m.bytes += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(m.blobs, func(i, j int) bool { return m.blobs[i].Path < m.blobs[j].Path })
	js, _ := json.Marshal(m.blobs)
	m.plan = filepath.Join(b.work, "plan-"+name+".json")
	return m, os.WriteFile(m.plan, js, 0o644)
}

// modelfile is the Modelfile modctl packs m with (kept outside m.dir so
// it is not a layer).
func (m *model) modelfile() string {
	if m.name == "small" {
		return "NAME bench-small\nARCH transformer\nFAMILY bench\nFORMAT bin\nCONFIG config.json\nMODEL shard-*/*.bin\n"
	}
	return "NAME bench\nARCH transformer\nFAMILY bench\nFORMAT safetensors\nCONFIG config.json\nCONFIG tokenizer_config.json\nMODEL *.safetensors\nDOC README.md\n"
}

// step is one command of a tool's plan.
type step struct {
	name string
	cmd  func() *exec.Cmd
}

// toolPlan returns the steps of tool against the registry at addr, with
// its caches, stores and pulled files under dir.
func (b *bench) toolPlan(m *model, tool, addr, dir string) ([]step, error) {
	docker := filepath.Join(dir, "docker")
	os.MkdirAll(docker, 0o700)
	pushCache := filepath.Join(dir, "cache-push")
	pullCache := filepath.Join(dir, "cache-pull")
	out := filepath.Join(dir, "pulled")
	switch tool {
	case "modelreg":
		ref := addr + "/bench/model"
		mr := func(cache string, args ...string) func() *exec.Cmd {
			return func() *exec.Cmd {
				c := exec.Command(b.cfg.modelreg, args...)
				c.Env = append(os.Environ(), "MODELREG_CACHE_DIR="+cache, "DOCKER_CONFIG="+docker)
				return c
			}
		}
		return []step{
			{steps[0], mr(pushCache, "push", ref, m.dir, "--output", "json")},
			{steps[1], mr(pushCache, "push", ref, m.dir, "--output", "json")},
			{steps[2], mr(pullCache, "pull", ref, out, "--output", "json")},
			{steps[3], mr(pullCache, "pull", ref, out, "--output", "json")},
		}, nil
	case "oras":
		ref := addr + "/bench/oras:v1"
		var files []string
		for _, bl := range m.blobs {
			files = append(files, bl.Path)
		}
		push := func() *exec.Cmd {
			c := exec.Command(b.cfg.oras, append([]string{"push", "--plain-http", "--no-tty", "--concurrency", "5", "--artifact-type", "application/vnd.cncf.model.manifest.v1+json", ref}, files...)...)
			c.Dir = m.dir
			c.Env = append(os.Environ(), "DOCKER_CONFIG="+docker)
			return c
		}
		pull := func() *exec.Cmd {
			c := exec.Command(b.cfg.oras, "pull", "--plain-http", "--no-tty", "--concurrency", "5", ref, "-o", out)
			c.Env = append(os.Environ(), "DOCKER_CONFIG="+docker)
			return c
		}
		return []step{{steps[0], push}, {steps[1], push}, {steps[2], pull}, {steps[3], pull}}, nil
	case "modctl":
		// build --output-remote packs the folder straight into the
		// registry (no local copy), the same job as modelreg push;
		// --extract-from-remote writes the files without a local store.
		// TMPDIR holds modctl's digest cache, so each run starts cold.
		ref := addr + "/bench/modctl:v1"
		modelfile := filepath.Join(dir, "Modelfile")
		if err := os.WriteFile(modelfile, []byte(m.modelfile()), 0o644); err != nil {
			return nil, err
		}
		tmp := filepath.Join(dir, "tmp-modctl")
		os.MkdirAll(tmp, 0o700)
		mc := func(args ...string) func() *exec.Cmd {
			return func() *exec.Cmd {
				c := exec.Command(b.cfg.modctl, append([]string{"--storage-dir", filepath.Join(dir, "modctl-store"), "--log-dir", filepath.Join(dir, "modctl-logs"), "--no-progress"}, args...)...)
				c.Env = append(os.Environ(), "TMPDIR="+tmp, "DOCKER_CONFIG="+docker)
				return c
			}
		}
		push := mc("build", "--output-remote", "--plain-http", "--concurrency", "5", "--no-creation-time", "-f", modelfile, "-t", ref, m.dir)
		pull := mc("pull", "--plain-http", "--concurrency", "5", "--extract-from-remote", "--extract-dir", out, ref)
		return []step{{steps[0], push}, {steps[1], push}, {steps[2], pull}, {steps[3], pull}}, nil
	case "limit", "vlimit":
		verb := map[string]string{"limit": "", "vlimit": "-verify"}[tool]
		return []step{
			{steps[0], func() *exec.Cmd {
				return exec.Command(b.cfg.self, "limit-push"+verb, addr, "bench/"+tool, m.dir, m.plan)
			}},
			{steps[2], func() *exec.Cmd { return exec.Command(b.cfg.self, "limit-pull"+verb, addr, "bench/"+tool, out, m.plan) }},
		}, nil
	}
	return nil, fmt.Errorf("unknown tool %q (want modelreg, oras, modctl, limit or vlimit)", tool)
}

// seededRegistry returns the registry of kind that the capped pulls of m
// read, starting it and pushing every tool's artifact into it over
// loopback (not measured) the first time.
func (b *bench) seededRegistry(m *model, kind string) (*registryProc, error) {
	if r := b.seeded[m.name+"/"+kind]; r != nil {
		return r, nil
	}
	dir, err := os.MkdirTemp(b.work, "seed-")
	if err != nil {
		return nil, err
	}
	reg, err := startRegistry(b.cfg, kind, filepath.Join(dir, "registry"))
	if err != nil {
		return nil, err
	}
	b.seeded[m.name+"/"+kind] = reg
	for _, tool := range b.cfg.tools {
		plan, err := b.toolPlan(m, tool, reg.addr, filepath.Join(dir, tool))
		if err != nil {
			return nil, err
		}
		b.logf("%-5s %-12s seeding the capped pulls: %s push over loopback", m.name, kind, tool)
		if _, stderr, err := measure(plan[0].cmd()); err != nil {
			return nil, fmt.Errorf("seeding %s with %s: %w\n%s", kind, tool, err, tail(stderr))
		}
	}
	return reg, nil
}

// runTool runs the steps of one tool: on loopback against a fresh
// registry, all four; on the capped link, unless BENCH_CAPPED_PUSH=1, the
// pulls only (from the seeded registry; oras's re-pull, a full download
// again, only with BENCH_CAPPED_PUSH=1).
func (b *bench) runTool(m *model, regKind, net, tool string, run int) error {
	dir, err := os.MkdirTemp(b.work, "run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var reg *registryProc
	pullsOnly := net == "capped" && !b.cfg.cappedPush
	if pullsOnly {
		if reg, err = b.seededRegistry(m, regKind); err != nil {
			return err
		}
	} else {
		if reg, err = startRegistry(b.cfg, regKind, filepath.Join(dir, "registry")); err != nil {
			return err
		}
		defer reg.stop()
	}
	addr := reg.addr
	if net == "capped" {
		p, err := faultproxy.New("http://"+reg.addr, faultproxy.Options{BytesPerSecond: b.cfg.rate, Delay: b.cfg.delay})
		if err != nil {
			return err
		}
		defer p.Close()
		addr = p.Addr()
	} else if net != "loopback" {
		return fmt.Errorf("unknown net %q (want loopback or capped)", net)
	}
	out := filepath.Join(dir, "pulled")
	k := func(step string) key { return key{m.name, regKind, net, tool, step} }
	plan, err := b.toolPlan(m, tool, addr, dir)
	if err != nil {
		return err
	}
	for _, s := range plan {
		if pullsOnly && (s.name == steps[0] || s.name == steps[1] || (tool == "oras" && s.name == steps[3])) {
			continue
		}
		syscall.Sync()
		smp, stderr, err := measure(s.cmd())
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", s.name, err, tail(stderr))
		}
		smp.run = run
		b.results[k(s.name)] = append(b.results[k(s.name)], smp)
		b.logf("%-5s %-12s %-8s %-8s run %d  %-26s %7.2fs  %4d MB  %6.2f CPU-s", m.name, regKind, net, tool, run+1, s.name, smp.dur.Seconds(), smp.rssKiB/1024, smp.cpu.Seconds())
		if s.name == steps[2] && run == 0 {
			if err := verifyPulled(m, out); err != nil {
				return fmt.Errorf("%s pulled wrong files: %w", tool, err)
			}
		}
	}
	return nil
}

// timeBin is GNU time (Debian package time). The steps run under it
// because a child of this process inherits its peak RSS: Go starts
// children with vfork, and Linux carries the parent's high-water mark
// across exec into the child's rusage. GNU time forks from a 2 MB image.
const timeBin = "/usr/bin/time"

// measure runs cmd under GNU time and returns its wall time, peak RSS and
// CPU time.
func measure(cmd *exec.Cmd) (sample, []byte, error) {
	f, err := os.CreateTemp("", "bench-time-")
	if err != nil {
		return sample{}, nil, err
	}
	f.Close()
	defer os.Remove(f.Name())
	wrapped := exec.Command(timeBin, append([]string{"-f", "%M %U %S", "-o", f.Name(), cmd.Path}, cmd.Args[1:]...)...)
	wrapped.Env, wrapped.Dir = cmd.Env, cmd.Dir
	var stderr bytes.Buffer
	wrapped.Stdout = io.Discard
	wrapped.Stderr = &stderr
	start := time.Now()
	err = wrapped.Run()
	dur := time.Since(start)
	if err != nil {
		return sample{}, stderr.Bytes(), err
	}
	out, err := os.ReadFile(f.Name())
	if err != nil {
		return sample{}, nil, err
	}
	var rss int64
	var user, sys float64
	if _, err := fmt.Sscanf(lastLine(strings.TrimSpace(string(out))), "%d %f %f", &rss, &user, &sys); err != nil {
		return sample{}, nil, fmt.Errorf("reading %s output %q: %v", timeBin, out, err)
	}
	cpu := time.Duration((user + sys) * float64(time.Second))
	return sample{dur: dur, rssKiB: rss, cpu: cpu}, stderr.Bytes(), nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// verifyPulled checks every file of m in dir by size and sha256.
func verifyPulled(m *model, dir string) error {
	for _, bl := range m.blobs {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(bl.Path)))
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); n != bl.Size || got != bl.Digest {
			return fmt.Errorf("%s: %d bytes %s, want %d bytes %s", bl.Path, n, got, bl.Size, bl.Digest)
		}
	}
	return nil
}
