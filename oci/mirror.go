package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
)

// MirrorOptions say where manifests and blobs may be fetched by digest
// instead of at the origin registry: pull-through caches (distribution in
// proxy mode, Harbor's proxy cache) or a node-local proxy. Tags,
// signatures, attestations and promotion records are always read at the
// origin; whatever a mirror serves is checked against its digest, and a
// mirror that fails or serves other bytes is passed over for the next one
// and, last, the origin. The zero value reads the registries.conf file
// named below, if it exists.
type MirrorOptions struct {
	// Mirrors are tried in order before the mirrors of registries.conf.
	// Each is MIRROR or ORIGIN=MIRROR, where MIRROR is HOST[:PORT][/PATH]:
	// repository REPO of the origin is MIRROR/REPO on the mirror (PATH
	// joined in front when given). Without ORIGIN= a mirror serves every
	// origin, as a pull-through cache in front of one registry does.
	Mirrors []string
	// RegistriesConf is a containers-registries.conf(5) file whose
	// [[registry]] entries (prefix, location) and their [[registry.mirror]]
	// entries (location, insecure, pull-from-mirror) add mirrors. If
	// empty, $CONTAINERS_REGISTRIES_CONF, else
	// ~/.config/containers/registries.conf, else
	// /etc/containers/registries.conf, whichever exists first (as podman
	// and CRI-O read it; registries.conf.d drop-ins are not read). A
	// mirror with pull-from-mirror = "tag-only" is never used, since
	// modelreg fetches only by digest from mirrors; "all" and
	// "digest-only" are. The location of a [[registry]] itself (a
	// rewrite of the origin) is not applied. "-" reads no file.
	RegistriesConf string
}

// mirrorAttempts is how often a mirror's request is tried before the next
// mirror (or the origin) is asked: a mirror that fails is passed over
// quickly, since the origin stays a correct source.
const mirrorAttempts = 2

// mirrorRule maps repositories under prefix to a mirror location.
type mirrorRule struct {
	// prefix is HOST[:PORT][/PATH], "*.DOMAIN" or "" (every origin).
	prefix string
	// location is HOST[:PORT][/PATH] on the mirror.
	location string
	insecure bool
	// source says where the rule came from, for error messages.
	source string
}

// mirrorConfig is the parsed MirrorOptions.
type mirrorConfig struct {
	rules []mirrorRule
}

// insecure reports whether registries.conf marks host as a mirror whose
// certificate is not verified.
func (m *mirrorConfig) insecure(host string) bool {
	for _, r := range m.rules {
		if r.insecure && mirrorHost(r.location) == host {
			return true
		}
	}
	return false
}

func mirrorHost(location string) string {
	h, _, _ := strings.Cut(location, "/")
	return h
}

// registriesConf is the part of containers-registries.conf(5), version 2,
// that mirrors need.
type registriesConf struct {
	Registries []struct {
		Prefix   string `toml:"prefix"`
		Location string `toml:"location"`
		Mirrors  []struct {
			Location       string `toml:"location"`
			Insecure       bool   `toml:"insecure"`
			PullFromMirror string `toml:"pull-from-mirror"`
		} `toml:"mirror"`
	} `toml:"registry"`
}

// registriesConfPath is the registries.conf file to read, "" for none.
func registriesConfPath(given string) string {
	switch {
	case given == "-":
		return ""
	case given != "":
		return given
	case os.Getenv("CONTAINERS_REGISTRIES_CONF") != "":
		return os.Getenv("CONTAINERS_REGISTRIES_CONF")
	}
	var candidates []string
	if h, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(h, ".config", "containers", "registries.conf"))
	}
	candidates = append(candidates, "/etc/containers/registries.conf")
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// loadMirrors parses opts. A malformed mirror or registries.conf is an
// error wrapping errdef.ErrInvalidInput that names it.
//
// A registries.conf found at a default place that does not parse is
// warned about on w and ignored, so a broken system file does not stop
// every command; a file named by RegistriesConf or
// $CONTAINERS_REGISTRIES_CONF must parse.
func loadMirrors(opts MirrorOptions, w io.Writer) (*mirrorConfig, error) {
	mc := &mirrorConfig{}
	for _, m := range opts.Mirrors {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		prefix, loc, found := strings.Cut(m, "=")
		if !found {
			prefix, loc = "", m
		} else if prefix == "" {
			return nil, fmt.Errorf("%w: mirror %q: no origin before '=' (want ORIGIN=HOST[:PORT][/PATH], or HOST[:PORT][/PATH] for every origin)", errdef.ErrInvalidInput, m)
		}
		loc = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(loc, "https://"), "http://"), "/")
		if err := checkLocation(loc); err != nil {
			return nil, fmt.Errorf("%w: mirror %q: %v (want HOST[:PORT][/PATH] or ORIGIN=HOST[:PORT][/PATH])", errdef.ErrInvalidInput, m, err)
		}
		mc.rules = append(mc.rules, mirrorRule{prefix: prefix, location: loc, source: "mirror " + m})
	}
	path := registriesConfPath(opts.RegistriesConf)
	if path == "" {
		return mc, nil
	}
	var rc registriesConf
	found := opts.RegistriesConf == "" && os.Getenv("CONTAINERS_REGISTRIES_CONF") == ""
	if _, err := toml.DecodeFile(path, &rc); err != nil {
		if found {
			if !errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(warnings(w), "modelreg: warning: ignoring the mirrors of %s: %v\n", path, err)
			}
			return mc, nil
		}
		return nil, fmt.Errorf("%w: registries.conf %s: %v", errdef.ErrInvalidInput, path, err)
	}
	for i, r := range rc.Registries {
		prefix := r.Prefix
		if prefix == "" {
			prefix = r.Location
		}
		if prefix == "" {
			return nil, fmt.Errorf("%w: registries.conf %s: [[registry]] entry %d has neither prefix nor location", errdef.ErrInvalidInput, path, i+1)
		}
		for _, m := range r.Mirrors {
			switch m.PullFromMirror {
			case "", "all", "digest-only":
			case "tag-only":
				continue
			default:
				return nil, fmt.Errorf("%w: registries.conf %s: mirror %q: pull-from-mirror %q: want all, digest-only or tag-only", errdef.ErrInvalidInput, path, m.Location, m.PullFromMirror)
			}
			if err := checkLocation(m.Location); err != nil {
				return nil, fmt.Errorf("%w: registries.conf %s: mirror location %q: %v", errdef.ErrInvalidInput, path, m.Location, err)
			}
			mc.rules = append(mc.rules, mirrorRule{prefix: prefix, location: strings.TrimSuffix(m.Location, "/"), insecure: m.Insecure, source: path})
		}
	}
	return mc, nil
}

func checkLocation(loc string) error {
	host, rest, _ := strings.Cut(loc, "/")
	if host == "" || strings.ContainsAny(host, " @") {
		return errors.New("no registry host")
	}
	if strings.ContainsAny(rest, ":@ ") {
		return errors.New("a mirror location names a registry and an optional path, no tag or digest")
	}
	return nil
}

// mirrorName returns the HOST/REPO on the mirror that serves name
// (HOST/REPO at the origin), and false when the rule does not cover it.
// A prefix matches whole path components (containers-registries.conf(5));
// "*.DOMAIN" matches the origin host's subdomains.
func (r mirrorRule) mirrorName(name string) (string, bool) {
	host, repo, _ := strings.Cut(name, "/")
	switch {
	case r.prefix == "":
		return r.location + "/" + repo, true
	case strings.HasPrefix(r.prefix, "*."):
		if !strings.HasSuffix(host, r.prefix[1:]) {
			return "", false
		}
		return r.location + "/" + repo, true
	case name == r.prefix:
		return r.location, true
	case strings.HasPrefix(name, r.prefix+"/"):
		return r.location + "/" + strings.TrimPrefix(name, r.prefix+"/"), true
	}
	return "", false
}

// Mirrors returns the repositories on mirrors that may serve manifests
// and blobs of ref's repository by digest, in the order to try them: the
// Mirrors of MirrorOptions first, then registries.conf. A mirror on the
// origin's own host is left out.
func (c *Client) Mirrors(ref Reference) ([]*remote.Repository, error) {
	var out []*remote.Repository
	seen := map[string]bool{}
	for _, r := range c.mirrors.rules {
		name, ok := r.mirrorName(ref.Name())
		if !ok || seen[name] || mirrorHost(name) == ref.Registry {
			continue
		}
		seen[name] = true
		mref, err := ParseRepository(name)
		if err != nil {
			return nil, fmt.Errorf("%s: mirror repository %s: %w", r.source, name, err)
		}
		repo, err := c.Repository(mref)
		if err != nil {
			return nil, err
		}
		out = append(out, repo)
	}
	return out, nil
}

// FetchModelMirrored is FetchModel tried on each mirror in turn, then on
// the origin repo. The manifest is checked against d wherever it comes
// from; a mirror that fails is reported on w and passed over. It also
// returns the mirrors left for the blobs: the one that served the
// manifest and those after it, so a mirror that is down or serves
// damaged data costs one try per pull, not one per blob.
func FetchModelMirrored(ctx context.Context, mirrors []*remote.Repository, repo *remote.Repository, ref Reference, d digest.Digest, w io.Writer) (*ModelVersion, []*remote.Repository, error) {
	for i, m := range mirrors {
		mref := Reference{Registry: m.Reference.Registry, Repository: m.Reference.Repository}
		mv, err := FetchModel(ctx, m, mref, d)
		if err == nil {
			return mv, mirrors[i:], nil
		}
		if ctx.Err() != nil {
			return nil, nil, err
		}
		fmt.Fprintf(warnings(w), "modelreg: mirror %s: %v; passing over it for this pull, fetching the manifest from %s\n", m.Reference.Registry, err, ref.Registry)
	}
	mv, err := FetchModel(ctx, repo, ref, d)
	return mv, nil, err
}

// downloadMirrored is download tried on each mirror of the options in
// turn, then on the origin. A mirror's failure (including bytes that do
// not match the digest) takes back what it wrote and reported, says so on
// the warnings writer and moves on; a local failure (the disk) or a
// cancelled context ends the download.
func (t *transferClient) downloadMirrored(ctx context.Context, desc ocispec.Descriptor, out *os.File, fp FileProgress) error {
	var lock *mirrorLock
	if len(t.opts.Mirrors) > 0 && t.opts.Cache.Dir != "" && desc.Size >= t.opts.Cache.MinSize {
		// One puller on this machine warms the mirrors; see mirrorLock.
		// Blobs under the digest cache's MinSize (1 MiB) are not worth a
		// lock file each.
		lock, _ = lockMirrorBlob(ctx, filepath.Join(filepath.Dir(t.opts.Cache.Dir), "mirror-locks"), desc.Digest, mirrorLockWait(desc.Size))
	}
	defer lock.release()
	for _, m := range t.opts.Mirrors {
		mo := t.opts
		mo.Mirrors = nil
		mo.Retry.MaxAttempts = mirrorAttempts
		mt := newTransferClient(m, mo)
		cp := &countingProgress{FileProgress: fp}
		err := mt.download(ctx, desc, out, cp)
		if err == nil {
			lock.done()
			return nil
		}
		var le localError
		if errors.As(err, &le) || ctx.Err() != nil {
			return err
		}
		fp.Add(-cp.n.Load())
		if terr := out.Truncate(0); terr != nil {
			return localError{fmt.Errorf("writing %s: %w", out.Name(), terr)}
		}
		what := "failed"
		if errors.Is(err, errdef.ErrIntegrity) {
			what = "served other bytes than the digest; refused"
		}
		fmt.Fprintf(warnings(t.opts.Warnings), "modelreg: mirror %s %s (%v); fetching blob %s from %s\n", m.Reference.Registry, what, err, desc.Digest, t.registry)
	}
	return t.download(ctx, desc, out, fp)
}

// mirrorLockWait is how long a puller waits for another puller on this
// machine to fetch a blob of size bytes through the mirrors before it
// fetches on its own: 30 s plus the blob at 10 MB/s (7 minutes for 4 GiB).
func mirrorLockWait(size int64) time.Duration {
	return 30*time.Second + time.Duration(size/10_000_000)*time.Second
}

// countingProgress passes byte counts on and keeps their sum, so a failed
// try on a mirror can take them back.
type countingProgress struct {
	FileProgress
	n atomic.Int64
}

func (c *countingProgress) Add(n int64) {
	c.n.Add(n)
	c.FileProgress.Add(n)
}
