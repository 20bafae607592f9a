package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/opencontainers/go-digest"
)

// DigestCache remembers the sha256 of files, keyed on path, size,
// modification time, inode and device, so an unchanged multi-GB file is not
// hashed again. An entry is only a hint: the registry rejects a blob whose
// bytes do not match the digest, and callers recover by hashing again.
// The zero value (Dir "") caches nothing.
type DigestCache struct {
	// Dir holds one small file per entry.
	Dir string
}

// DefaultDigestCache returns the cache under the user's cache folder
// ($XDG_CACHE_HOME or ~/.cache, then modelreg/digests), or a no-op cache if
// there is no such folder. MODELREG_CACHE_DIR overrides the location.
func DefaultDigestCache() DigestCache {
	if d := os.Getenv("MODELREG_CACHE_DIR"); d != "" {
		return DigestCache{Dir: filepath.Join(d, "digests")}
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return DigestCache{}
	}
	return DigestCache{Dir: filepath.Join(d, "modelreg", "digests")}
}

// key identifies a file's current state; any change of these facts misses.
func cacheKey(abs string, fi os.FileInfo) string {
	var ino, dev uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino, dev = st.Ino, uint64(st.Dev)
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d\x00%d", abs, fi.Size(), fi.ModTime().UnixNano(), ino, dev))
	return hex.EncodeToString(h[:])
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
	b, err := os.ReadFile(filepath.Join(c.Dir, cacheKey(abs, fi)))
	if err != nil {
		return ""
	}
	d, err := digest.Parse(strings.TrimSpace(string(b)))
	if err != nil {
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
	if os.MkdirAll(c.Dir, 0o700) != nil {
		return
	}
	tmp, err := os.CreateTemp(c.Dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.WriteString(d.String())
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return
	}
	if os.Rename(tmp.Name(), filepath.Join(c.Dir, cacheKey(abs, fi))) != nil {
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
// the cache.
func (c DigestCache) HashFile(p string) (digest.Digest, error) {
	if d := c.Lookup(p); d != "" {
		return d, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	d := digest.NewDigest(digest.SHA256, h)
	c.Store(p, d)
	return d, nil
}
