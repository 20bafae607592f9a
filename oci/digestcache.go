package oci

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/opencontainers/go-digest"
)

// DigestCache remembers the sha256 of files, keyed on path, size,
// modification time, inode change time, inode and device, so an unchanged
// multi-GB file is not hashed again. Bytes that are sent are hashed as
// they go and the registry checks them, so a wrong entry never names sent
// content wrongly. But an entry is trusted where nothing is sent: a push
// skips a blob the registry already has under the cached digest, and a
// plain pull keeps a file whose cached digest matches. The cache is
// therefore a trust boundary of its user (a 0700 folder under the user's
// cache directory): do not share or restore it between users, and
// deploy-time pulls that verify signatures hash what they keep instead
// (PullOptions.VerifyExisting).
//
// It also remembers, per registry, which repositories were seen holding a
// blob, so an upload can mount the blob from a sibling repository instead
// of sending it.
//
// The zero value (Dir "") caches nothing. All methods are safe for
// concurrent use, also by several processes: entries are written to a
// temporary file and renamed.
type DigestCache struct {
	// Dir holds one small file per entry.
	Dir string
	// MinSize is the file size in bytes below which digests are neither
	// stored nor looked up, nor the repositories holding the blob
	// recorded. 0 caches every file; DefaultDigestCache uses
	// DefaultCacheMinSize.
	MinSize int64
}

// DefaultDigestCache returns the cache under the user's cache folder
// ($XDG_CACHE_HOME or ~/.cache, then modelreg/digests), or a no-op cache if
// there is no such folder. MODELREG_CACHE_DIR overrides the location.
func DefaultDigestCache() DigestCache {
	if d := os.Getenv("MODELREG_CACHE_DIR"); d != "" {
		return DigestCache{Dir: filepath.Join(d, "digests"), MinSize: DefaultCacheMinSize}
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return DigestCache{}
	}
	return DigestCache{Dir: filepath.Join(d, "modelreg", "digests"), MinSize: DefaultCacheMinSize}
}

// DefaultCacheMinSize is the MinSize of DefaultDigestCache (1 MiB): hashing
// a file that small again (under a millisecond at 1.4 GB/s) costs
// less than creating, renaming and later opening its entry, which on ext4
// took about 1 ms of kernel time per file and made a 1,000-file push and
// pull 2-3x slower than oras (profiled with perf). Mounting a blob that
// small from a sibling repository saves less than the round trip it takes.
const DefaultCacheMinSize = 1 << 20

// cacheKey identifies a file's current state; any change of these facts
// misses.
func cacheKey(abs string, fi os.FileInfo) string {
	var ino, dev uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino, dev = st.Ino, uint64(st.Dev)
	}
	h := sha256.Sum256(fmt.Appendf(nil, "v2\x00%s\x00%d\x00%d\x00%d\x00%d\x00%d", abs, fi.Size(), fi.ModTime().UnixNano(), statChange(fi), ino, dev))
	return hex.EncodeToString(h[:])
}

// sameFileState reports whether a and b describe the same state of a file.
func sameFileState(abs string, a, b os.FileInfo) bool {
	return cacheKey(abs, a) == cacheKey(abs, b)
}

// Lookup returns the cached digest of the file at p, or "".
func (c DigestCache) Lookup(p string) digest.Digest {
	if c.Dir == "" {
		return ""
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return ""
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return ""
	}
	return c.lookup(abs, fi)
}

func (c DigestCache) lookup(abs string, fi os.FileInfo) digest.Digest {
	if c.Dir == "" || fi.Size() < c.MinSize {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, cacheKey(abs, fi)))
	if err != nil {
		return ""
	}
	d, err := digest.Parse(strings.TrimSpace(string(b)))
	if err != nil || d.Algorithm() != digest.SHA256 {
		return ""
	}
	return d
}

// Store records d as the digest of the file at p as it is now. Errors are
// ignored: the cache is an optimisation.
func (c DigestCache) Store(p string, d digest.Digest) {
	if c.Dir == "" {
		return
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return
	}
	c.store(abs, fi, d)
}

// store records d for the file abs in the state fi.
func (c DigestCache) store(abs string, fi os.FileInfo, d digest.Digest) {
	if c.Dir == "" || fi.Size() < c.MinSize {
		return
	}
	c.writeFile(c.Dir, cacheKey(abs, fi), d.String())
}

// writeFile writes content to dir/name through a temporary file and a
// rename, ignoring errors.
func (c DigestCache) writeFile(dir, name, content string) {
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.WriteString(content)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), filepath.Join(dir, name)) != nil {
		os.Remove(tmp.Name())
	}
}

// Forget drops the entry of the file at p (after the registry refused it).
func (c DigestCache) Forget(p string) {
	if c.Dir == "" {
		return
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return
	}
	if fi, err := os.Stat(abs); err == nil {
		os.Remove(filepath.Join(c.Dir, cacheKey(abs, fi)))
	}
}

// HashFile returns the sha256 digest of the file at p, using and filling
// the cache. It fails if the file cannot be read or changes while it is
// read.
func (c DigestCache) HashFile(p string) (digest.Digest, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if d := c.lookup(abs, fi); d != "" {
		return d, nil
	}
	h := sha256.New()
	buf := copyBufPool.Get().(*[]byte)
	_, err = io.CopyBuffer(h, struct{ io.Reader }{f}, *buf)
	copyBufPool.Put(buf)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	d := digest.NewDigest(digest.SHA256, h)
	if fi2, err := os.Stat(abs); err == nil && sameFileState(abs, fi, fi2) {
		c.store(abs, fi, d)
	} else {
		return "", fmt.Errorf("%s changed while it was read; try again when it is complete", p)
	}
	return d, nil
}

// maxRepoHints is how many repositories are remembered per blob.
const maxRepoHints = 8

// hintDir is the folder of the repository hints of a registry host.
func (c DigestCache) hintDir(host string) string {
	h := sha256.Sum256([]byte(strings.ToLower(host)))
	return filepath.Join(c.Dir, "repos", hex.EncodeToString(h[:8]))
}

func hintName(d digest.Digest) string {
	return d.Algorithm().String() + "-" + d.Encoded()
}

// Repositories returns the repositories of registry host seen holding blob
// d, most recent first (at most 8). They are hints: the registry decides.
func (c DigestCache) Repositories(host string, d digest.Digest) []string {
	if c.Dir == "" || d.Validate() != nil {
		return nil
	}
	f, err := os.Open(filepath.Join(c.hintDir(host), hintName(d)))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() && len(out) < maxRepoHints {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// recordRepository is RecordRepository for a blob of size bytes: blobs
// under MinSize are not recorded.
func (c DigestCache) recordRepository(host, repo string, d digest.Digest, size int64) {
	if size >= c.MinSize {
		c.RecordRepository(host, repo, d)
	}
}

// RecordRepository notes that repository repo of registry host holds blob
// d. Errors are ignored.
func (c DigestCache) RecordRepository(host, repo string, d digest.Digest) {
	if c.Dir == "" || d.Validate() != nil || repo == "" || strings.ContainsAny(repo, "\n\r") {
		return
	}
	old := c.Repositories(host, d)
	if len(old) > 0 && old[0] == repo {
		return
	}
	list := append([]string{repo}, slices.DeleteFunc(old, func(s string) bool { return s == repo })...)
	if len(list) > maxRepoHints {
		list = list[:maxRepoHints]
	}
	c.writeFile(c.hintDir(host), hintName(d), strings.Join(list, "\n")+"\n")
}
