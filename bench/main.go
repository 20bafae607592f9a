// Command bench measures modelreg's push and pull against the oras and
// modctl CLIs, against the limit of the registry and link (raw parallel
// PUTs with known digests and raw parallel GETs into files, no client
// hashing) and against the verifying limit (the same with one inline
// sha256 of the bytes moved), on the same machine in the same run, and
// prints a Markdown table of medians and of the spread of the ratios
// within one repetition; then start-up costs, the registries' tag
// consistency, and a fan-out of concurrent pulls, direct and through a
// pull-through cache.
//
// It makes a Hugging Face style model of two shards of random bytes (4 GiB
// in all by default) plus config and tokenizer files, and a model of 1,000
// small files, in a temporary folder. For each registry (olareg, as
// `modelreg serve` runs it, and CNCF distribution v3), directly on loopback
// and through internal/faultproxy capped at 50 MB/s per connection with
// 20 ms delay, each tool runs: cold push (empty registry, empty digest
// cache), push of the unchanged model, cold pull (empty folder), and pull
// into the folder that already holds the model. Wall time is measured
// around each child process, peak RSS and CPU time read by GNU time; the
// page cache is flushed (sync) before each step.
//
// Run it with `make bench`. Environment overrides:
//
//	BENCH_RUNS        runs per measurement (default 3; the median is shown)
//	BENCH_SIZE        size of each of the two shards (default 2GiB)
//	BENCH_SMALL_FILES number of files of the small model (default 1000)
//	BENCH_MODELS      large,small
//	BENCH_REGISTRIES  olareg,distribution
//	BENCH_NETS        loopback,capped
//	BENCH_TOOLS       modelreg,oras,modctl,limit,vlimit (vlimit: the verifying
//	                  limit, the limit with one inline sha256 of what it moves)
//	BENCH_CAPPED_PUSH 1 also measures pushes (and oras's re-pull) on the capped
//	                  link; by default the capped link runs the pulls only,
//	                  from a registry every tool pushed to once over loopback
//	BENCH_FANOUT      pullers of the fan-out section (default 8; 0 skips it)
//	BENCH_STARTUP_RUNS repetitions of the start-up rows (default 20; 0 skips
//	                  them and the tag consistency section)
//	BENCH_RATE        per-connection cap of the capped link in bytes/s (50000000)
//	BENCH_DELAY       delay of the capped link (20ms)
//	BENCH_DIR         where the temporary folder goes (default $TMPDIR)
//	BENCH_OUT         also write the report to this file
//
// Flags name the binaries: -modelreg bin/modelreg, -oras .tools/bin/oras,
// -modctl .tools/bin/modctl (v0.2.2), -registry .tools/bin/registry
// (distribution v3).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/modelreg/modelreg/internal/size"
)

type config struct {
	modelreg, oras, modctl, registry, self string
	runs                                   int
	shardSize                              string
	smallFiles                             int
	models, registries, nets               []string
	tools                                  []string
	rate                                   int64
	delay                                  time.Duration
	dir, out                               string
	cappedPush                             bool
	fanout, startupRuns                    int
	dockerRegistry                         string
}

func main() {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "limit-") {
		if err := runLimit(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	cfg := &config{}
	flag.StringVar(&cfg.modelreg, "modelreg", "bin/modelreg", "modelreg binary")
	flag.StringVar(&cfg.oras, "oras", ".tools/bin/oras", "oras CLI binary (v1.3.6)")
	flag.StringVar(&cfg.modctl, "modctl", ".tools/bin/modctl", "modctl CLI binary (v0.2.2)")
	flag.StringVar(&cfg.registry, "registry", ".tools/bin/registry", "distribution v3 registry binary")
	flag.Parse()
	if err := cfg.fromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func list(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func (c *config) fromEnv() error {
	var err error
	if c.runs, err = strconv.Atoi(env("BENCH_RUNS", "3")); err != nil || c.runs < 1 {
		return fmt.Errorf("BENCH_RUNS: want a positive number")
	}
	c.shardSize = env("BENCH_SIZE", "2GiB")
	if _, err := size.Parse(c.shardSize); err != nil {
		return fmt.Errorf("BENCH_SIZE: %v", err)
	}
	if c.smallFiles, err = strconv.Atoi(env("BENCH_SMALL_FILES", "1000")); err != nil || c.smallFiles < 1 {
		return fmt.Errorf("BENCH_SMALL_FILES: want a positive number")
	}
	c.models = list(env("BENCH_MODELS", "large,small"))
	c.registries = list(env("BENCH_REGISTRIES", "olareg,distribution"))
	c.nets = list(env("BENCH_NETS", "loopback,capped"))
	c.tools = list(env("BENCH_TOOLS", "modelreg,oras,modctl,limit,vlimit"))
	c.cappedPush = env("BENCH_CAPPED_PUSH", "0") == "1"
	if c.fanout, err = strconv.Atoi(env("BENCH_FANOUT", "8")); err != nil || c.fanout < 0 {
		return fmt.Errorf("BENCH_FANOUT: want a number of pullers (0 skips the fan-out)")
	}
	if c.startupRuns, err = strconv.Atoi(env("BENCH_STARTUP_RUNS", "20")); err != nil || c.startupRuns < 0 {
		return fmt.Errorf("BENCH_STARTUP_RUNS: want a number (0 skips start-up and tag consistency)")
	}
	c.dockerRegistry = "/usr/bin/docker-registry"
	if c.rate, err = strconv.ParseInt(env("BENCH_RATE", "50000000"), 10, 64); err != nil || c.rate <= 0 {
		return fmt.Errorf("BENCH_RATE: want bytes per second")
	}
	if c.delay, err = time.ParseDuration(env("BENCH_DELAY", "20ms")); err != nil {
		return fmt.Errorf("BENCH_DELAY: %v", err)
	}
	c.dir = env("BENCH_DIR", os.TempDir())
	c.out = os.Getenv("BENCH_OUT")
	if c.self, err = os.Executable(); err != nil {
		return err
	}
	for _, p := range []*string{&c.modelreg, &c.oras, &c.modctl, &c.registry} {
		abs, err := absPath(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	for _, t := range c.tools {
		bin := map[string]string{"oras": c.oras, "modctl": c.modctl}[t]
		if bin == "" {
			continue
		}
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s CLI: %v (run make bench, which builds it)", t, err)
		}
	}
	for _, r := range c.registries {
		if r == "distribution" {
			if _, err := os.Stat(c.registry); err != nil {
				return fmt.Errorf("distribution registry: %v (run make tools)", err)
			}
		}
	}
	if _, err := os.Stat(timeBin); err != nil {
		return fmt.Errorf("GNU time: %v (apt-get install time)", err)
	}
	if _, err := os.Stat(c.modelreg); err != nil {
		return fmt.Errorf("modelreg: %v (run make build)", err)
	}
	return nil
}

// absPath makes p absolute (relative to the working folder).
func absPath(p string) (string, error) {
	if filepath.IsAbs(p) {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return filepath.Join(wd, p), nil
}
