package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
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

// spread renders the ratio a/b taken within each repetition (samples
// of the same run index): the median, then min–max when there are several.
func spread(a, b []sample) string {
	rs := ratiosWithin(a, b)
	if len(rs) == 0 {
		return "—"
	}
	sort.Float64s(rs)
	med := rs[len(rs)/2]
	if len(rs)%2 == 0 {
		med = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	if len(rs) == 1 {
		return fmt.Sprintf("%.2f", med)
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", med, rs[0], rs[len(rs)-1])
}

// ratiosWithin returns a/b of each repetition that has both.
func ratiosWithin(a, b []sample) []float64 {
	byRun := map[int]time.Duration{}
	for _, x := range b {
		byRun[x.run] = x.dur
	}
	var rs []float64
	for _, x := range a {
		if d, ok := byRun[x.run]; ok && d > 0 {
			rs = append(rs, x.dur.Seconds()/d.Seconds())
		}
	}
	return rs
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
	fmt.Fprintf(&w, "- repetitions are interleaved: each runs every tool once, in an order rotated by one per repetition; a ratio cell is the median of the ratios taken within one repetition, with their min–max\n")
	fmt.Fprintf(&w, "- capped link: %s\n", map[bool]string{false: "pulls only (BENCH_CAPPED_PUSH=1 adds pushes and oras's re-pull), from a registry every tool pushed to once over loopback", true: "every step"}[cfg.cappedPush])
	fmt.Fprintf(&w, "- verifying limit: the limit with one inline sha256 of the bytes it moves (push: file → sha256 → socket, no sendfile; pull: a single stream hashed as it lands, ranged blobs hashed in order by reading each part back from the page cache once it and the parts before it are written), checked against the digest\n")
	fmt.Fprintf(&w, "- limit: raw parallel PUTs with known digests (POST + one PUT per blob) and raw parallel GETs into files (blobs ≥ 64 MiB as 8 parallel 16 MiB ranges, as modelreg), 5 blobs at once, no hashing, no verification, no manifest\n")
	fmt.Fprintf(&w, "- CPU: user + system seconds of the client process (the registry's are not counted); sha256 runs at %.0f MB/s on one core here, so hashing the bytes of a model once costs that many CPU-seconds more than the limit spends\n\n", b.shaRate/1e6)
	for _, m := range models {
		fmt.Fprintf(&w, "## %s model: %d files, %.2f GiB\n\n", m.name, len(m.blobs), float64(m.bytes)/(1<<30))
		for _, reg := range cfg.registries {
			for _, net := range cfg.nets {
				fmt.Fprintf(&w, "### %s, %s\n\n", reg, net)
				fmt.Fprintf(&w, "| step | modelreg | oras | modctl | limit | verifying limit | modelreg / oras | modelreg / modctl | modelreg / limit | modelreg / verifying limit | RSS MB modelreg / oras / modctl | CPU-s modelreg / oras / modctl / limit / verifying |\n")
				fmt.Fprintf(&w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
				for _, st := range steps {
					cell := func(tool string) []sample { return b.results[key{m.name, reg, net, tool, st}] }
					md, mr, mok := median(cell("modelreg"))
					od, or, ook := median(cell("oras"))
					cd, cr, cok := median(cell("modctl"))
					ld, _, lok := median(cell("limit"))
					vd, _, vok := median(cell("vlimit"))
					if !mok && !ook && !cok && !lok && !vok {
						continue // not measured on this link (see BENCH_CAPPED_PUSH)
					}
					fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s |\n", st,
						secs(md, mok), secs(od, ook), secs(cd, cok), secs(ld, lok), secs(vd, vok),
						spread(cell("modelreg"), cell("oras")), spread(cell("modelreg"), cell("modctl")),
						spread(cell("modelreg"), cell("limit")), spread(cell("modelreg"), cell("vlimit")),
						mb(mr, mok), mb(or, ook), mb(cr, cok),
						cpuCell(cell("modelreg"), cell("oras"), cell("modctl"), cell("limit"), cell("vlimit")))
				}
				fmt.Fprintln(&w)
			}
		}
	}
	if len(b.startup) > 0 {
		fmt.Fprintf(&w, "## Start-up\n\n%d runs of each command, alternating which tool goes first; olareg on loopback; wall time of the process.\n\n", b.cfg.startupRuns)
		fmt.Fprintf(&w, "| command | modelreg | oras | modelreg / oras | exit codes modelreg / oras |\n|---|---:|---:|---:|---:|\n")
		for _, r := range b.startup {
			md, od := middle(slices.Clone(r.modelreg)), middle(slices.Clone(r.oras))
			fmt.Fprintf(&w, "| %s | %.1f ms | %.1f ms | %.2f | %d / %d |\n", r.name, ms(md), ms(od), md.Seconds()/od.Seconds(), r.exitMR, r.exitOras)
		}
		fmt.Fprintln(&w)
	}
	if len(b.consistencyRows) > 0 {
		fmt.Fprintf(&w, "## Tag consistency\n\n%d tags written one after another, each read back (HEAD and tags/list) until both show it; then 10 writers at once, each checking a tag is free (HEAD) and writing it (PUT): the check-to-write window that `push`'s settle (oci.MinSettle) must outlast.\n\n", consistencyTags)
		fmt.Fprintf(&w, "| registry | tag PUT (median) | visible after the PUT's answer (max, reads included) | read rounds needed (max) | check-to-write window, 10 writers (median / max) |\n|---|---:|---:|---:|---:|\n")
		for _, r := range b.consistencyRows {
			fmt.Fprintf(&w, "| %s | %.1f ms | %.1f ms | %d | %.1f / %.1f ms |\n", r.kind, ms(r.put), ms(r.visible), r.maxReads, ms(r.windowMedian), ms(r.windowMax))
		}
		fmt.Fprintln(&w)
	}
	if len(b.fanout) > 0 {
		var size int64
		for _, m := range models {
			if m.name == "large" {
				size = m.bytes
			}
		}
		fmt.Fprintf(&w, "## Fan-out\n\nConcurrent `modelreg pull`s of the large model (%.2f GiB) on this machine, each into its own folder, the pullers of a row sharing one cache folder (`MODELREG_CACHE_DIR`: through a mirror they take a per-blob lock there, so one warms the cache while the others wait); the origin sits behind a counting proxy; the cache is distribution v3 in proxy mode (`proxy.remoteurl`), given to each pull with `--mirror ORIGIN=CACHE`.\n\n", float64(size)/(1<<30))
		fmt.Fprintf(&w, "| variant | pullers | wall time | origin served | origin / model size | peak RSS MB, all pullers added (largest) |\n|---|---:|---:|---:|---:|---:|\n")
		for _, r := range b.fanout {
			fmt.Fprintf(&w, "| %s | %d | %.2f s | %.2f GiB | %.2f | %d (%d) |\n", r.name, r.pullers, r.wall.Seconds(), float64(r.originBytes)/(1<<30), float64(r.originBytes)/float64(max(size, 1)), r.rssSum*1024/1e6, r.rssMax*1024/1e6)
		}
		fmt.Fprintln(&w)
	}
	fmt.Fprintf(&w, "## Targets of issue 13\n\n")
	for _, t := range b.targets() {
		fmt.Fprintf(&w, "- %s\n", t)
	}
	return w.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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

// targets evaluates the "done when" list of issue 13.
func (b *bench) targets() []string {
	var out []string
	cell := func(model, reg, net, tool, step string) []sample {
		return b.results[key{model, reg, net, tool, step}]
	}
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**not met**"
	}
	all := func(rs []float64, ok func(float64) bool) bool {
		for _, r := range rs {
			if !ok(r) {
				return false
			}
		}
		return len(rs) > 0
	}
	list := func(rs []float64) string {
		var p []string
		for _, r := range rs {
			p = append(p, fmt.Sprintf("%.2f", r))
		}
		return strings.Join(p, ", ")
	}
	for _, reg := range b.cfg.registries {
		for _, step := range []string{steps[0], steps[2]} {
			mr := cell("large", reg, "loopback", "modelreg", step)
			if m, _, mok := median(mr); mok {
				if v, _, vok := median(cell("large", reg, "loopback", "vlimit", step)); vok {
					out = append(out, fmt.Sprintf("%s loopback %s within 1.10x of the verifying limit (medians): %.2fx — %s", reg, step, m.Seconds()/v.Seconds(), verdict(m.Seconds() <= 1.10*v.Seconds())))
				}
			}
			for _, peer := range []string{"oras", "modctl"} {
				if rs := ratiosWithin(mr, cell("large", reg, "loopback", peer, step)); len(rs) > 0 {
					out = append(out, fmt.Sprintf("%s loopback %s faster than %s in every repetition: modelreg / %s = %s — %s", reg, step, peer, peer, list(rs), verdict(all(rs, func(r float64) bool { return r < 1 }))))
				}
			}
		}
		if rs := ratiosWithin(cell("large", reg, "capped", "oras", steps[2]), cell("large", reg, "capped", "modelreg", steps[2])); len(rs) > 0 {
			out = append(out, fmt.Sprintf("%s capped cold pull at least 3x faster than oras in every repetition: %s — %s", reg, list(rs), verdict(all(rs, func(r float64) bool { return r >= 3 }))))
		}
		if m, _, mok := median(cell("large", reg, "loopback", "modelreg", steps[1])); mok {
			if o, _, ook := median(cell("large", reg, "loopback", "oras", steps[1])); ook {
				out = append(out, fmt.Sprintf("%s loopback unchanged re-push at least 20x faster than oras: %.1fx — %s", reg, o.Seconds()/m.Seconds(), verdict(o.Seconds() >= 20*m.Seconds())))
			}
		}
		if m, _, mok := median(cell("large", reg, "loopback", "modelreg", steps[3])); mok {
			out = append(out, fmt.Sprintf("%s loopback re-pull into a full folder under 0.2 s: %.2f s — %s", reg, m.Seconds(), verdict(m < 200*time.Millisecond)))
		}
		for _, step := range []string{steps[0], steps[2]} {
			m, _, mok := median(cell("small", reg, "loopback", "modelreg", step))
			o, _, ook := median(cell("small", reg, "loopback", "oras", step))
			if mok && ook {
				out = append(out, fmt.Sprintf("%s loopback %d-file model %s no slower than oras: %.2f s vs %.2f s — %s", reg, b.cfg.smallFiles, step, m.Seconds(), o.Seconds(), verdict(m <= o)))
			}
		}
	}
	for _, r := range b.startup {
		md, od := middle(slices.Clone(r.modelreg)), middle(slices.Clone(r.oras))
		out = append(out, fmt.Sprintf("start-up, %s, within 1.2x of oras: %.2fx — %s", r.name, md.Seconds()/od.Seconds(), verdict(md.Seconds() <= 1.2*od.Seconds())))
	}
	for _, r := range b.fanout {
		if strings.Contains(r.name, "cold") {
			ratio := float64(r.originBytes) / float64(max(r.modelBytes, 1))
			out = append(out, fmt.Sprintf("fan-out through the cold cache: origin served %.2f GiB for %d pullers, %.2fx the model (target ≤ 1.1x), wall %.1f s — %s", float64(r.originBytes)/(1<<30), r.pullers, ratio, r.wall.Seconds(), verdict(ratio <= 1.1)))
		}
	}
	var peak int64
	seen := false
	for k, s := range b.results {
		if k.tool == "modelreg" {
			for _, x := range s {
				peak = max(peak, x.rssKiB)
				seen = true
			}
		}
	}
	for _, r := range b.fanout {
		peak = max(peak, r.rssMax)
	}
	if seen {
		out = append(out, fmt.Sprintf("modelreg peak RSS under 100 MB per process (highest of all runs, fan-out included): %d MB — %s", peak*1024/1e6, verdict(peak*1024 < 100e6)))
	}
	if len(out) == 0 {
		out = append(out, "no measurements to judge")
	}
	return out
}
