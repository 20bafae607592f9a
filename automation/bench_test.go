package automation

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg"
	"github.com/modelreg/modelreg/signing"
)

// benchRepositories is the catalog size of the target.
const benchRepositories = 200

// BenchmarkPollCycle polls 200 repositories (each with v1, v2 and latest)
// on an in-process olareg and reports the registry requests one steady
// poll cycle makes (requests/cycle) and how long it takes (ns/op): a
// cycle shorter than the poll interval keeps up. It also reports the
// requests of a cycle that lists every version's referrers (scan-requests,
// once per Source.Referrers) and the average over DefaultReferrerScans
// cycles (requests/cycle-amortized). Run it with
// go test -run '^$' -bench PollCycle ./automation/
func BenchmarkPollCycle(b *testing.B) {
	ctx := context.Background()
	var requests atomic.Int64
	yes := true
	reg := olareg.New(config.Config{
		Storage: config.ConfigStorage{StoreType: config.StoreMem},
		API:     config.ConfigAPI{DeleteEnabled: &yes},
	})
	defer reg.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		reg.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	host := ln.Addr().String()

	// A policy as the example has one: protected aliases cost
	// nothing extra while tags stay put.
	dir := b.TempDir()
	for _, k := range []string{"release", "promoter"} {
		if _, _, err := signing.WriteKeyPair(filepath.Join(dir, k), nil); err != nil {
			b.Fatal(err)
		}
	}
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte("apiVersion: modelreg.dev/v1\nkind: PromotionPolicy\naliases:\n  production:\n    signatures: {keys: [release.pub]}\n    promoters: {keys: [promoter.pub]}\n    condition: \"has(annotations['org.opencontainers.image.source'])\"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg := &Config{Automations: []Automation{{Name: "count", On: Filter{Event: VersionCreated}, Command: []string{"true"}, Retry: Retry{MaxAttempts: 1, Backoff: time.Second, MaxBackoff: time.Second}}}}
	for i := range benchRepositories {
		name := fmt.Sprintf("team/model-%03d", i)
		repo, err := remote.NewRepository(host + "/" + name)
		if err != nil {
			b.Fatal(err)
		}
		repo.PlainHTTP = true
		for v := 1; v <= 2; v++ {
			desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.cncf.model.manifest.v1+json",
				oras.PackManifestOptions{ManifestAnnotations: map[string]string{ocispec.AnnotationTitle: fmt.Sprint(name, v)}})
			if err != nil {
				b.Fatal(err)
			}
			if err := repo.Tag(ctx, desc, fmt.Sprintf("v%d", v)); err != nil {
				b.Fatal(err)
			}
			if err := repo.Tag(ctx, desc, "latest"); err != nil {
				b.Fatal(err)
			}
		}
		cfg.Sources = append(cfg.Sources, Source{Repository: host + "/" + name, Policy: pol, Poll: DefaultPoll, Referrers: DefaultReferrerScans * DefaultPoll})
	}
	cl, err := modelreg.New(modelreg.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(Options{Config: cfg, Client: cl, StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	pass := func() {
		for _, src := range cfg.Sources {
			w.cycle(ctx, src)
		}
	}
	pass() // the baseline reads records too
	requests.Store(0)
	b.ResetTimer()
	for range b.N {
		pass()
	}
	b.StopTimer()
	perCycle := float64(requests.Load()) / float64(b.N)
	w.scanMu.Lock()
	clear(w.lastScan) // the next cycle lists every version's referrers
	w.scanMu.Unlock()
	requests.Store(0)
	pass()
	scan := float64(requests.Load())
	amortized := (perCycle*(DefaultReferrerScans-1) + scan) / DefaultReferrerScans
	b.ReportMetric(perCycle, "requests/cycle")
	b.ReportMetric(perCycle/benchRepositories, "requests/repo")
	b.ReportMetric(scan, "scan-requests")
	b.ReportMetric(amortized, "requests/cycle-amortized")
	b.Logf("%d repositories: %.0f registry requests per poll cycle, %.0f in a cycle that lists every version's referrers, %.0f per cycle on average", benchRepositories, perCycle, scan, amortized)
}
