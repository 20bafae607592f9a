package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"
)

// median returns the median wall time and the median peak RSS of s.
func median(s []sample) (time.Duration, int64, bool) {
	if len(s) == 0 {
		return 0, 0, false
	}
	d := make([]time.Duration, len(s))
	r := make([]int64, len(s))
	for i, x := range s {
		d[i], r[i] = x.dur, x.rssKiB
	}
	return middle(d), middle(r), true
}

// medianCPU returns the median CPU time of s.
func medianCPU(s []sample) (time.Duration, bool) {
	if len(s) == 0 {
		return 0, false
	}
	c := make([]time.Duration, len(s))
	for i, x := range s {
		c[i] = x.cpu
	}
	return middle(c), true
}

// middle sorts v and returns its median.
func middle[T time.Duration | int64](v []T) T {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	m := len(v) / 2
	if len(v)%2 == 0 {
		return (v[m-1] + v[m]) / 2
	}
	return v[m]
}

// cpuCell renders the median CPU seconds of the tools, "—" where missing.
func cpuCell(s ...[]sample) string {
	var parts []string
	for _, x := range s {
		if c, ok := medianCPU(x); ok {
			parts = append(parts, fmt.Sprintf("%.1f", c.Seconds()))
		} else {
			parts = append(parts, "—")
		}
	}
	return strings.Join(parts, " / ")
}

func secs(d time.Duration, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func mb(kib int64, ok bool) string {
	if !ok {
		return "—"
	}
	return fmt.Sprintf("%d", kib*1024/1e6)
}

func ratio(a, b time.Duration, okA, okB bool) string {
	if !okA || !okB || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a.Seconds()/b.Seconds())
}

func shell(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "(" + name + ": " + err.Error() + ")"
	}
	return strings.TrimRight(string(out), "\n ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// report renders the results as Markdown: the machine, one table per
// model, registry and link, and the targets with met / not met.
func (b *bench) report(models []*model, took time.Duration) string {
	var w strings.Builder
	cfg := b.cfg
	fmt.Fprintf(&w, "# modelreg transfer benchmark\n\n")
	fmt.Fprintf(&w, "- date: %s (the run took %s)\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second))
	fmt.Fprintf(&w, "- machine: `nproc` = %s, %s; %s\n", shell("nproc"), cpuModel(), runtime.Version())
	fmt.Fprintf(&w, "- `free -h`:\n\n```\n%s\n```\n\n", shell("free", "-h"))
	fmt.Fprintf(&w, "- scratch disk (`df -h %s`): %s\n", cfg.dir, lastLine(shell("df", "-h", cfg.dir)))
	fmt.Fprintf(&w, "- %d run(s) per cell, median shown; peak RSS and CPU of the child process from GNU time (`time -f %%M`); `sync` before every step\n", cfg.runs)
	fmt.Fprintf(&w, "- capped link: internal/faultproxy at %.0f MB/s per connection with %v delay per connection and per request\n", float64(cfg.rate)/1e6, cfg.delay)
	fmt.Fprintf(&w, "- load average (other work on the machine, /proc/loadavg): %s at the start, %s at the end\n", b.loadStart, loadavg())
	fmt.Fprintf(&w, "- oras: `%s` with `--concurrency 5` for push and pull (its pull default is 3); modelreg with its defaults (5 files at once; a blob ≥ 64 MiB starts as one stream and goes on as 8 parallel 16 MiB ranges when its first 16 MiB arrive slower than 256 MiB/s)\n", firstLine(shell(cfg.oras, "version")))
	fmt.Fprintf(&w, "- modctl: v0.2.2 (tools/modctl/go.mod) with `--concurrency 5`; cold push is `modctl build --output-remote` (folder straight to the registry, no local store); pull is `modctl pull --extract-from-remote`, whose re-pull skips files by the size and sha256 it wrote into their xattrs\n")
	fmt.Fprintf(&w, "- limit: raw parallel PUTs with known digests (POST + one PUT per blob) and raw parallel GETs into files (blobs ≥ 64 MiB as 8 parallel 16 MiB ranges, as modelreg), 5 blobs at once, no hashing, no verification, no manifest\n")
	fmt.Fprintf(&w, "- CPU: user + system seconds of the client process (the registry's are not counted); sha256 runs at %.0f MB/s on one core here, so hashing the bytes of a model once costs that many CPU-seconds more than the limit spends\n\n", b.shaRate/1e6)
	for _, m := range models {
		fmt.Fprintf(&w, "## %s model: %d files, %.2f GiB\n\n", m.name, len(m.blobs), float64(m.bytes)/(1<<30))
		for _, reg := range cfg.registries {
			for _, net := range cfg.nets {
				fmt.Fprintf(&w, "### %s, %s\n\n", reg, net)
				fmt.Fprintf(&w, "| step | modelreg | oras | modctl | limit | modelreg / oras | modelreg / modctl | modelreg / limit | RSS MB modelreg / oras / modctl | CPU-s modelreg / oras / modctl / limit |\n")
				fmt.Fprintf(&w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
				for _, st := range steps {
					cell := func(tool string) []sample { return b.results[key{m.name, reg, net, tool, st}] }
					md, mr, mok := median(cell("modelreg"))
					od, or, ook := median(cell("oras"))
					cd, cr, cok := median(cell("modctl"))
					ld, _, lok := median(cell("limit"))
					fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s |\n", st,
						secs(md, mok), secs(od, ook), secs(cd, cok), secs(ld, lok),
						ratio(md, od, mok, ook), ratio(md, cd, mok, cok), ratio(md, ld, mok, lok),
						mb(mr, mok), mb(or, ook), mb(cr, cok),
						cpuCell(cell("modelreg"), cell("oras"), cell("modctl"), cell("limit")))
				}
				fmt.Fprintln(&w)
			}
		}
	}
	fmt.Fprintf(&w, "## Targets of issue 4 (large model)\n\n")
	for _, t := range b.targets() {
		fmt.Fprintf(&w, "- %s\n", t)
	}
	return w.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func lastLine(s string) string {
	lines := strings.Split(s, "\n")
	return lines[len(lines)-1]
}

// targets evaluates the "done when" list on the large model.
func (b *bench) targets() []string {
	var out []string
	get := func(reg, net, tool, step string) (time.Duration, int64, bool) {
		return median(b.results[key{"large", reg, net, tool, step}])
	}
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**not met**"
	}
	for _, reg := range b.cfg.registries {
		for _, step := range []string{steps[0], steps[2]} {
			m, _, mok := get(reg, "loopback", "modelreg", step)
			l, _, lok := get(reg, "loopback", "limit", step)
			o, _, ook := get(reg, "loopback", "oras", step)
			if mok && lok {
				out = append(out, fmt.Sprintf("%s loopback %s within 1.15x of the limit: %.2f x — %s", reg, step, m.Seconds()/l.Seconds(), verdict(m.Seconds() <= 1.15*l.Seconds())))
			}
			if mok && ook {
				out = append(out, fmt.Sprintf("%s loopback %s no slower than oras: %.2f s vs %.2f s — %s", reg, step, m.Seconds(), o.Seconds(), verdict(m <= o)))
			}
		}
		if m, _, mok := get(reg, "loopback", "modelreg", steps[1]); mok {
			if o, _, ook := get(reg, "loopback", "oras", steps[1]); ook {
				out = append(out, fmt.Sprintf("%s loopback unchanged re-push at least 10x faster than oras: %.1fx — %s", reg, o.Seconds()/m.Seconds(), verdict(o.Seconds() >= 10*m.Seconds())))
			}
		}
		if m, _, mok := get(reg, "loopback", "modelreg", steps[3]); mok {
			out = append(out, fmt.Sprintf("%s loopback pull into a folder that holds the model under 0.3 s: %.2f s — %s", reg, m.Seconds(), verdict(m < 300*time.Millisecond)))
		}
		if m, _, mok := get(reg, "capped", "modelreg", steps[2]); mok {
			if o, _, ook := get(reg, "capped", "oras", steps[2]); ook {
				out = append(out, fmt.Sprintf("%s capped cold pull at least 3x faster than oras: %.1fx — %s", reg, o.Seconds()/m.Seconds(), verdict(o.Seconds() >= 3*m.Seconds())))
			}
		}
		if m, _, mok := get(reg, "capped", "modelreg", steps[0]); mok {
			if o, _, ook := get(reg, "capped", "oras", steps[0]); ook {
				out = append(out, fmt.Sprintf("%s capped cold push no slower than oras: %.2f s vs %.2f s — %s", reg, m.Seconds(), o.Seconds(), verdict(m <= o)))
			}
		}
	}
	var peak int64
	seen := false
	for k, s := range b.results {
		if k.model == "large" && k.tool == "modelreg" {
			for _, x := range s {
				peak = max(peak, x.rssKiB)
				seen = true
			}
		}
	}
	if seen {
		out = append(out, fmt.Sprintf("modelreg peak RSS under 100 MB for the large model (highest of all runs): %d MB — %s", peak*1024/1e6, verdict(peak*1024 < 100e6)))
	}
	if len(out) == 0 {
		out = append(out, "no large-model measurements to judge")
	}
	return out
}
