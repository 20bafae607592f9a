package oci

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// upOutcome says how a file reached the registry.
type upOutcome int

const (
	upSent    upOutcome = iota // its bytes were sent
	upSkipped                  // the repository had the blob
	upMounted                  // the blob was mounted from a sibling repository
)

// errPatchRefused means the registry does not take chunked (PATCH) uploads.
var errPatchRefused = errors.New("the registry refuses chunked uploads")

// errRestartUpload means the registry lost the upload or holds other bytes
// than were hashed: the upload starts again from the first byte, hashing
// again.
var errRestartUpload = errors.New("upload must start again")

// upload is the state of one file's upload.
type upload struct {
	t    *transferClient
	f    *File
	abs  string // absolute path of the file
	fh   *os.File
	fp   FileProgress
	bo   backoff
	hs   *fileHasher // hashes the file beside a chunked upload
	done int64       // bytes the registry confirmed
	// reported is the byte count given to fp so far; moved counts every
	// byte read for sending, over all tries.
	reported atomic.Int64
	moved    atomic.Int64
}

// probe is what is known about a file before its upload: its state when
// it was opened, its digest if the cache knew it or it was small enough
// to hash first, and whether the repository has the blob.
type probe struct {
	abs       string
	fi        os.FileInfo
	known     digest.Digest
	fromCache bool
	present   bool
}

// probeFile looks f up: a digest from the cache (or a small file, or one
// with hashFirst, hashed now), then a HEAD for it. A present blob gives f
// its Digest. The HEADs of a push run several times Concurrency at once:
// they move no data.
func (t *transferClient) probeFile(ctx context.Context, f *File, cache DigestCache, hashFirst bool) (probe, error) {
	ctx = t.scoped(ctx, "pull", "push")
	var p probe
	abs, err := filepath.Abs(f.Abs)
	if err != nil {
		return p, err
	}
	fh, err := os.Open(abs)
	if err != nil {
		return p, err
	}
	defer fh.Close()
	fi0, err := fh.Stat()
	if err != nil {
		return p, err
	}
	if fi0.Size() != f.Size {
		return p, fmt.Errorf("%s changed since the folder was read (size %d, now %d); push again when it is complete", f.Path, f.Size, fi0.Size())
	}
	p.abs, p.fi = abs, fi0
	u := &upload{t: t, f: f, abs: abs, fh: fh, fp: noProgress{}, bo: backoff{opts: t.opts.Retry}}
	small := f.Size <= smallFileSize
	p.known = cache.lookup(abs, fi0)
	p.fromCache = p.known != ""
	if p.known == "" && (small || hashFirst) {
		// Small files are hashed first: one HEAD then finds a blob the
		// registry has, and one PUT sends it.
		if p.known, err = u.hashFile(); err != nil {
			return p, err
		}
	}
	if p.known == "" {
		return p, nil
	}
	switch st, err := u.headBlob(ctx, p.known); {
	case err != nil:
		return p, u.fail("HEAD", p.known, err)
	case st == blobPresent:
		f.Digest = p.known
		p.present = true
		cache.recordRepository(t.registry, t.repo, p.known, f.Size)
		if !p.fromCache {
			cache.store(abs, fi0, p.known)
		}
	case st == blobOtherSize:
		// The cached digest names a blob of another size: the entry is
		// wrong. Forget it and hash what is really there.
		cache.Forget(abs)
		p.known, p.fromCache = "", false
		if small {
			if p.known, err = u.hashFile(); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// uploadFile makes f a blob of the repository (after probeFile found it
// missing) and fills f.Digest.
func (t *transferClient) uploadFile(ctx context.Context, f *File, cache DigestCache, fp FileProgress, p probe) (upOutcome, error) {
	ctx = t.scoped(ctx, "pull", "push")
	abs, fi0, known, fromCache := p.abs, p.fi, p.known, p.fromCache
	fh, err := os.Open(abs)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	u := &upload{t: t, f: f, abs: abs, fh: fh, fp: fp, bo: backoff{opts: t.opts.Retry}}
	small := f.Size <= smallFileSize

	var session *url.URL
	if known != "" {
		if from := t.mountSource(cache, known); from != "" {
			mounted, loc, err := u.mount(ctx, known, from)
			if err != nil {
				return 0, err
			}
			if mounted {
				// A digest from the cache, not from the bytes: the mounted
				// blob must at least have the file's size.
				st := blobPresent
				if fromCache {
					if st, err = u.headBlob(ctx, known); err != nil {
						return 0, u.fail("HEAD", known, err)
					}
				}
				if st == blobPresent {
					f.Digest = known
					cache.recordRepository(t.registry, t.repo, known, f.Size)
					return upMounted, nil
				}
				cache.Forget(abs)
				known, fromCache = "", false
			}
			session = loc
		}
	}

	var d digest.Digest
	if small || t.noPatch.Load() {
		d, err = u.monolithic(ctx, known, fromCache, session, cache)
	} else {
		d, err = u.chunked(ctx, session)
		if errors.Is(err, errRestartUpload) {
			// The registry lost the session or holds other bytes than were
			// hashed (the file changed between tries?): once more from the
			// first byte.
			u.rewind(0)
			d, err = u.chunked(ctx, nil)
			if errors.Is(err, errRestartUpload) {
				err = u.fail("PUT", d, fmt.Errorf("the registry lost the upload or refused its digest twice; did %s change while it was sent?", f.Path))
			}
		}
		if errors.Is(err, errPatchRefused) {
			t.noPatch.Store(true)
			u.rewind(0)
			d, err = u.monolithic(ctx, known, fromCache, nil, cache)
		}
	}
	if isTooLarge(err) && !t.noPatch.Load() {
		// One PUT of the whole file is over the registry's body limit
		// (Quay, proxies): send it in chunks under it.
		if _, ok := t.shrinkChunk(f.Size); ok {
			u.rewind(0)
			d, err = u.chunked(ctx, nil)
		}
	}
	var ae *adviceError
	if isTooLarge(err) && t.noPatch.Load() && errors.As(err, &ae) {
		ae.advice = "the registry takes no chunked uploads either, so no --chunk-size helps: the limit on request bodies must be raised on the registry or the proxy in front of it"
	}
	if err != nil {
		return 0, err
	}
	fi1, err := os.Stat(abs)
	if err != nil || !sameFileState(abs, fi0, fi1) {
		return 0, fmt.Errorf("%s changed while it was uploaded; push again when it is complete", f.Path)
	}
	u.storeDigest(cache, fi0, d)
	cache.recordRepository(t.registry, t.repo, d, f.Size)
	f.Digest = d
	return upSent, nil
}

// storeDigest caches d for the file in the state fi.
func (u *upload) storeDigest(cache DigestCache, fi os.FileInfo, d digest.Digest) {
	cache.store(u.abs, fi, d)
}

// hashFile hashes the whole file.
func (u *upload) hashFile() (digest.Digest, error) {
	h := sha256.New()
	buf := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(buf)
	n, err := io.CopyBuffer(h, io.NewSectionReader(u.fh, 0, u.f.Size), *buf)
	if err != nil {
		return "", localError{fmt.Errorf("reading %s: %w", u.f.Path, err)}
	}
	if n != u.f.Size {
		return "", localError{fmt.Errorf("%s shrank while it was read", u.f.Path)}
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

// rewind tells the progress that only n bytes are sent now.
func (u *upload) rewind(n int64) {
	u.done = n
	if old := u.reported.Swap(n); old != n {
		u.fp.Add(n - old)
	}
}

// fail wraps err with what was being done and how far the upload got.
func (u *upload) fail(op string, d digest.Digest, err error) error {
	var le localError
	if errors.As(err, &le) || errors.Is(err, context.Canceled) {
		return err
	}
	return &TransferError{Op: "upload", Step: op, Digest: d, Size: u.f.Size, Done: u.done, Moved: u.moved.Load(), Err: err}
}

type blobState int

const (
	blobAbsent blobState = iota
	blobPresent
	blobOtherSize
)

// headBlob asks whether the repository holds blob d of the file's size.
func (u *upload) headBlob(ctx context.Context, d digest.Digest) (blobState, error) {
	return u.t.headBlob(ctx, &u.bo, d, u.f.Size)
}

func (t *transferClient) headBlob(ctx context.Context, bo *backoff, d digest.Digest, size int64) (blobState, error) {
	for {
		req, err := newRequest(ctx, http.MethodHead, t.blobURL(d.String()), nil)
		if err != nil {
			return 0, err
		}
		resp, err := t.do(req)
		if err == nil {
			switch resp.StatusCode {
			case http.StatusOK:
				resp.Body.Close()
				if resp.ContentLength >= 0 && resp.ContentLength != size {
					return blobOtherSize, nil
				}
				return blobPresent, nil
			case http.StatusNotFound:
				resp.Body.Close()
				return blobAbsent, nil
			}
			err = newRegistryError(resp)
		}
		if err := bo.retry(ctx, err); err != nil {
			return 0, err
		}
	}
}

// mountSource picks a repository of the same registry that may hold blob
// d: the most recent one the cache saw holding it, else the first of
// TransferOptions.MountFrom.
func (t *transferClient) mountSource(cache DigestCache, d digest.Digest) string {
	for _, r := range cache.Repositories(t.registry, d) {
		if r != t.repo {
			return r
		}
	}
	for _, r := range t.opts.MountFrom {
		if r != t.repo && r != "" {
			return r
		}
	}
	return ""
}

// mount asks the registry to link blob d from repository from. It returns
// mounted, or the upload session the registry opened instead (nil if it
// answered otherwise: the caller then starts its own).
func (u *upload) mount(ctx context.Context, d digest.Digest, from string) (bool, *url.URL, error) {
	t := u.t
	ctx = auth.AppendRepositoryScope(ctx, registry.Reference{Registry: t.registry, Repository: from}, "pull")
	uu := t.uploadsURL()
	uu.RawQuery = url.Values{"mount": {d.String()}, "from": {from}}.Encode()
	for {
		req, err := newRequest(ctx, http.MethodPost, uu.String(), nil)
		if err != nil {
			return false, nil, err
		}
		resp, err := t.do(req)
		if err == nil {
			switch resp.StatusCode {
			case http.StatusCreated:
				resp.Body.Close()
				return true, nil, nil
			case http.StatusAccepted:
				resp.Body.Close()
				loc, err := t.location(resp)
				if err != nil {
					return false, nil, u.fail("POST", d, err)
				}
				return false, loc, nil
			}
			err = newRegistryError(resp)
			if !retryable(err) {
				return false, nil, nil // not allowed to mount: upload instead
			}
		}
		if err := u.bo.retry(ctx, err); err != nil {
			return false, nil, u.fail("POST", d, err)
		}
	}
}

// startSession opens an upload session (POST) and returns its location.
func (u *upload) startSession(ctx context.Context, d digest.Digest) (*url.URL, error) {
	t := u.t
	for {
		req, err := newRequest(ctx, http.MethodPost, t.uploadsURL().String(), nil)
		if err != nil {
			return nil, err
		}
		resp, err := t.do(req)
		if err == nil {
			if resp.StatusCode == http.StatusAccepted {
				resp.Body.Close()
				loc, err := t.location(resp)
				if err != nil {
					return nil, u.fail("POST", d, err)
				}
				return loc, nil
			}
			err = newRegistryError(resp)
		}
		if err := u.bo.retry(ctx, err); err != nil {
			return nil, u.fail("POST", d, err)
		}
	}
}

// withDigest returns loc with the query parameter digest=d added.
func withDigest(loc *url.URL, d digest.Digest) string {
	u := *loc
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	return u.String()
}

// isDigestRejection reports whether err is the registry refusing the
// digest given for the bytes it received.
func isDigestRejection(err error) bool {
	var re *registryError
	if !errors.As(err, &re) {
		return false
	}
	return re.hasCode("DIGEST_INVALID", "SIZE_INVALID", "BLOB_UPLOAD_INVALID") ||
		(re.StatusCode == http.StatusBadRequest && len(re.Codes) == 0)
}

// monolithic sends the file in one PUT named by its digest: known (from
// the cache when fromCache) or hashed first. A registry that rejects a
// cached digest makes the entry forgotten and the file hashed again.
func (u *upload) monolithic(ctx context.Context, known digest.Digest, fromCache bool, session *url.URL, cache DigestCache) (digest.Digest, error) {
	d := known
	if d == "" {
		var err error
		if d, err = u.hashFile(); err != nil {
			return "", err
		}
		fromCache = false
	}
	for {
		loc := session
		session = nil
		if loc == nil {
			var err error
			if loc, err = u.startSession(ctx, d); err != nil {
				return "", err
			}
		}
		err := u.put(ctx, loc, d)
		if err == nil {
			u.done = u.f.Size
			return d, nil
		}
		if isDigestRejection(err) {
			if fromCache {
				cache.Forget(u.abs)
				if d, err = u.hashFile(); err != nil {
					return "", err
				}
				fromCache = false
				u.rewind(0)
				continue
			}
			return "", u.fail("PUT", d, fmt.Errorf("the registry refused the digest of the bytes sent (did %s change while it was sent?): %w", u.f.Path, err))
		}
		u.rewind(0)
		if err := u.bo.retry(ctx, err); err != nil {
			return "", u.fail("PUT", d, err)
		}
	}
}

// put sends the whole file to loc with digest d.
func (u *upload) put(ctx context.Context, loc *url.URL, d digest.Digest) error {
	resp, err := u.send(ctx, http.MethodPut, withDigest(loc, d), 0, u.f.Size, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		return nil
	}
	return newRegistryError(resp)
}

// chunked sends the file in PATCH requests of ChunkSize bytes, then
// completes the upload with a PUT naming its digest. The bytes go from the
// page cache to the socket (sendfile) while a background reader hashes the
// same file at most two chunks ahead, so the file is read from disk once
// and hashing runs beside the transfer. The registry checks the digest
// against the bytes it received, so a file that changes under the upload
// is refused, never stored under a wrong digest. A broken request
// continues from the last byte the registry confirms.
func (u *upload) chunked(ctx context.Context, session *url.URL) (digest.Digest, error) {
	t := u.t
	chunk := t.chunkSize()
	hs, err := startHasher(u.abs, u.f.Size)
	if err != nil {
		return "", localError{err}
	}
	defer hs.stop()
	u.hs = hs
	defer func() { u.hs = nil }()
	loc := session
	u.rewind(0)
	// A status of "0-0" means no byte (distribution) or one byte (olareg);
	// it is taken as none unless a PATCH from byte 0 was refused.
	zeroAmbiguous := false
	for u.done < u.f.Size {
		if loc == nil {
			var err error
			if loc, err = u.startSession(ctx, ""); err != nil {
				return "", err
			}
			u.rewind(0)
		}
		start := u.done
		n := min(chunk, u.f.Size-start)
		hs.allow(start + min(n, hashLead))
		next, err := u.patch(ctx, loc, start, n)
		if err == nil {
			loc = next
			u.done = start + n
			u.bo.progressed()
			continue
		}
		var re *registryError
		if errors.As(err, &re) {
			switch {
			case start == 0 && (re.StatusCode == http.StatusMethodNotAllowed || re.StatusCode == http.StatusNotImplemented || re.hasCode("UNSUPPORTED") ||
				(re.StatusCode == http.StatusBadRequest && len(re.Codes) == 0)):
				// A plain 400 with no OCI error code is a registry (or a
				// proxy) that does not know PATCH, not a bad chunk.
				return "", errPatchRefused
			case re.StatusCode == http.StatusRequestEntityTooLarge:
				// The registry or a proxy limits body sizes: the same
				// bytes again in smaller chunks, on the same session.
				smaller, ok := t.shrinkChunk(n)
				if !ok {
					return "", u.fail("PATCH", "", withAdvice(err))
				}
				chunk = smaller
				u.rewind(start)
				continue
			case re.StatusCode == http.StatusNotFound || re.hasCode("BLOB_UPLOAD_UNKNOWN"):
				// The session is gone: start a new one.
				loc = nil
				if err := u.bo.retry(ctx, markRetryable(err)); err != nil {
					return "", u.fail("PATCH", "", err)
				}
				continue
			case re.StatusCode == http.StatusRequestedRangeNotSatisfiable:
				zeroAmbiguous = start == 0
				err = markRetryable(err)
			}
		}
		if err := u.bo.retry(ctx, err); err != nil {
			return "", u.fail("PATCH", "", err)
		}
		// Where is the registry now?
		end, next, serr := u.stableStatus(ctx, loc)
		for serr != nil {
			if errors.Is(serr, errRestartUpload) {
				loc = nil
				break
			}
			if err := u.bo.retry(ctx, serr); err != nil {
				return "", u.fail("GET", "", err)
			}
			end, next, serr = u.stableStatus(ctx, loc)
		}
		if loc == nil {
			continue
		}
		off := end + 1
		if end == 0 && !zeroAmbiguous {
			off = 0
		}
		if off > u.f.Size {
			// The registry claims bytes it was never sent.
			loc = nil
			continue
		}
		if off > start {
			u.bo.progressed()
		}
		loc = next
		u.rewind(off)
	}
	d, err := hs.result(ctx)
	if err != nil {
		return "", err
	}
	if loc == nil {
		// An empty file: no PATCH was needed.
		var err error
		if loc, err = u.startSession(ctx, d); err != nil {
			return "", err
		}
	}
	return d, u.complete(ctx, loc, d)
}

// markRetryable makes err worth another try (after a status check).
func markRetryable(err error) error { return retryableError{err} }

type retryableError struct{ error }

func (e retryableError) Unwrap() error { return e.error }

// patch sends bytes [start, start+n) of the file to loc and returns the
// next location.
func (u *upload) patch(ctx context.Context, loc *url.URL, start, n int64) (*url.URL, error) {
	hdr := http.Header{"Content-Range": {fmt.Sprintf("%d-%d", start, start+n-1)}}
	resp, err := u.send(ctx, http.MethodPatch, loc.String(), start, n, hdr)
	if err != nil {
		return nil, err
	}
	// 202 is what the spec says; ECR answers 201 (kitops#821).
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusCreated {
		return nil, newRegistryError(resp)
	}
	resp.Body.Close()
	if end, ok := parseRangeEnd(resp.Header.Get("Range")); ok && end+1 != start+n {
		return nil, markRetryable(fmt.Errorf("PATCH %s: the registry confirms bytes 0-%d after bytes %d-%d were sent", redact(loc), end, start, start+n-1))
	}
	if resp.Header.Get("Location") == "" {
		return loc, nil
	}
	return u.t.location(resp)
}

// status asks the registry how many bytes of the session at loc it holds:
// it returns the offset of the last one (-1 for none) and the location to
// continue at, or errRestartUpload when the session is gone.
func (u *upload) status(ctx context.Context, loc *url.URL) (int64, *url.URL, error) {
	req, err := newRequest(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := u.t.do(req)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		re := newRegistryError(resp)
		if re.StatusCode == http.StatusNotFound || re.hasCode("BLOB_UPLOAD_UNKNOWN") || re.StatusCode == http.StatusBadRequest {
			return 0, nil, errRestartUpload
		}
		return 0, nil, re
	}
	resp.Body.Close()
	end, ok := parseRangeEnd(resp.Header.Get("Range"))
	if !ok {
		end = -1
	}
	next := loc
	if resp.Header.Get("Location") != "" {
		if next, err = u.t.location(resp); err != nil {
			return 0, nil, err
		}
	}
	return end, next, nil
}

// settleTime is how long a registry gets to finish writing what a broken
// request delivered: a status is trusted once two answers this far apart
// agree, since a PATCH sent while the broken one is still being written
// would be refused or, on some registries, interleaved with it.
const settleTime = 100 * time.Millisecond

// stableStatus asks for the upload status until two answers settleTime
// apart agree (at most 10 times).
func (u *upload) stableStatus(ctx context.Context, loc *url.URL) (int64, *url.URL, error) {
	end, next, err := u.status(ctx, loc)
	for i := 0; err == nil && i < 10; i++ {
		t := time.NewTimer(settleTime)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, nil, context.Cause(ctx)
		case <-t.C:
		}
		end2, next2, err2 := u.status(ctx, next)
		if err2 != nil {
			return 0, nil, err2
		}
		if end2 == end {
			return end2, next2, nil
		}
		end, next = end2, next2
	}
	return end, next, err
}

// parseRangeEnd parses an upload Range header "0-END" (also "bytes=0-END").
// "0--1" (olareg, nothing received) gives -1.
func parseRangeEnd(s string) (int64, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "bytes=")
	first, rest, ok := strings.Cut(s, "-")
	if !ok || first != "0" {
		return 0, false
	}
	end, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || end < -1 {
		return 0, false
	}
	return end, true
}

// complete finishes the session at loc as blob d (PUT ?digest=). A lost
// answer is checked with a HEAD: the blob may be there already.
func (u *upload) complete(ctx context.Context, loc *url.URL, d digest.Digest) error {
	for {
		req, err := newRequest(ctx, http.MethodPut, withDigest(loc, d), http.NoBody)
		if err != nil {
			return err
		}
		req.ContentLength = 0
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := u.t.do(req)
		if err == nil {
			if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK {
				resp.Body.Close()
				if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
					return u.fail("PUT", d, fmt.Errorf("the registry stored the blob as %s", got))
				}
				return nil
			}
			rerr := newRegistryError(resp)
			if isDigestRejection(rerr) || rerr.StatusCode == http.StatusNotFound || rerr.hasCode("BLOB_UPLOAD_UNKNOWN") {
				return errRestartUpload
			}
			err = rerr
		}
		if rerr := u.bo.retry(ctx, err); rerr != nil {
			return u.fail("PUT", d, rerr)
		}
		if st, herr := u.headBlob(ctx, d); herr == nil && st == blobPresent {
			return nil
		}
	}
}

// send sends bytes [start, start+n) of the file as the body of a request.
// The body is a descriptor of the file itself, so the HTTP transport hands
// it to sendfile(2) and the bytes never pass through this process; a
// duplicate descriptor shares its offset, which tells how far the body
// got, for progress and for TransferError.Moved.
func (u *upload) send(ctx context.Context, method, target string, start, n int64, hdr http.Header) (*http.Response, error) {
	fb := &fileBody{path: u.abs, start: start, n: n, size: u.f.Size}
	defer fb.close()
	body, err := fb.open()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := newRequest(ctx, method, target, body)
	if err != nil {
		cancel()
		body.Close()
		return nil, err
	}
	req.ContentLength = n
	if n == 0 {
		body.Close()
		req.Body = http.NoBody
	} else {
		req.GetBody = func() (io.ReadCloser, error) { return fb.open() }
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	var stalled atomic.Bool
	stopWatch := u.watch(fb, start+n, func() {
		stalled.Store(true)
		cancel()
	})
	resp, err := u.t.do(req)
	stopWatch()
	if err != nil {
		cancel()
	} else {
		resp.Body = cancelOnClose{resp.Body, cancel}
	}
	moved := fb.pos() - start
	u.moved.Add(moved)
	if err == nil && resp.StatusCode < 300 {
		u.report(start + n)
	}
	if err != nil {
		if fi, serr := os.Stat(u.abs); serr != nil || fi.Size() != u.f.Size {
			return nil, localError{fmt.Errorf("%s changed while it was uploaded; push again when it is complete", u.f.Path)}
		}
		var le localError
		if errors.As(err, &le) {
			return nil, le
		}
		if stalled.Load() {
			return nil, stallError{u.t.opts.Retry.stallTimeout()}
		}
	}
	return resp, err
}

// cancelOnClose ends the context of its request when the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	c.cancel()
	return c.ReadCloser.Close()
}

// report moves the progress up to pos (never down; rewind does that).
func (u *upload) report(pos int64) {
	for {
		old := u.reported.Load()
		if pos <= old {
			return
		}
		if u.reported.CompareAndSwap(old, pos) {
			u.fp.Add(pos - old)
			return
		}
	}
}

// hashLead is how far the background hasher may read ahead of the bytes
// sent, so what it reads is still in the page cache when sendfile sends it
// even when memory is short.
const hashLead = 128 << 20

// watch follows the body fb every 50 ms until stopped: it reports progress,
// lets the hasher read ahead of the bytes sent, and calls onStall once when
// the body has not reached end and moved no byte for the stall timeout (a
// registry that stopped reading; waiting for the answer after the last
// byte is not a stall, the registry may be committing a large blob).
func (u *upload) watch(fb *fileBody, end int64, onStall func()) (stop func()) {
	_, quiet := u.fp.(noProgress)
	idle := u.t.opts.Retry.stallTimeout()
	last, lastMoved := fb.pos(), time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				pos := fb.pos()
				if !quiet {
					u.report(pos)
				}
				if u.hs != nil {
					u.hs.allow(pos + hashLead)
				}
				switch {
				case pos != last:
					last, lastMoved = pos, time.Now()
				case pos < end && onStall != nil && time.Since(lastMoved) >= idle:
					onStall()
					onStall = nil
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// fileBody opens request bodies of bytes [start, start+n) of a file: each
// is a duplicate of a descriptor it keeps, so after the transport closed
// the body, pos still reads the offset the transfer reached. A body that
// ends at the end of the file is the *os.File itself, which net/http sends
// with sendfile(2); other bodies stop at their end (net/http reads a body
// to its end to check its length) and are copied through this process.
type fileBody struct {
	path           string
	start, n, size int64
	mu             sync.Mutex
	keep           *os.File
}

func (b *fileBody) open() (io.ReadCloser, error) {
	f, err := os.Open(b.path)
	if err != nil {
		return nil, localError{err}
	}
	if _, err := f.Seek(b.start, io.SeekStart); err != nil {
		f.Close()
		return nil, localError{err}
	}
	dup, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		f.Close()
		return nil, localError{err}
	}
	b.mu.Lock()
	if b.keep != nil {
		b.keep.Close()
	}
	b.keep = f
	b.mu.Unlock()
	body := os.NewFile(uintptr(dup), b.path)
	if b.start+b.n == b.size {
		return body, nil
	}
	return &limitedFile{LimitedReader: io.LimitedReader{R: body, N: b.n}, f: body}, nil
}

// limitedFile is a body that ends before the end of its file.
type limitedFile struct {
	io.LimitedReader
	f *os.File
}

func (l *limitedFile) Close() error { return l.f.Close() }

// pos returns the offset the current body reached.
func (b *fileBody) pos() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keep == nil {
		return b.start
	}
	p, err := b.keep.Seek(0, io.SeekCurrent)
	if err != nil {
		return b.start
	}
	return p
}

func (b *fileBody) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keep != nil {
		b.keep.Close()
		b.keep = nil
	}
}

// fileHasher hashes a file from its first byte in the background, through
// its own descriptor, never more than allow says ahead, so what it reads
// is what the upload sends next (one read from disk, then the page cache).
type fileHasher struct {
	f    *os.File
	size int64

	mu      sync.Mutex
	cond    *sync.Cond
	allowed int64
	stopped bool

	done chan struct{}
	sum  digest.Digest
	err  error
}

func startHasher(path string, size int64) (*fileHasher, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	h := &fileHasher{f: f, size: size, done: make(chan struct{})}
	h.cond = sync.NewCond(&h.mu)
	go h.run()
	return h, nil
}

func (h *fileHasher) run() {
	defer close(h.done)
	defer h.f.Close()
	hh := sha256.New()
	buf := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(buf)
	var off int64
	for off < h.size {
		h.mu.Lock()
		for h.allowed <= off && !h.stopped {
			h.cond.Wait()
		}
		stopped, allowed := h.stopped, h.allowed
		h.mu.Unlock()
		if stopped {
			h.err = context.Canceled
			return
		}
		n := min(int64(len(*buf)), allowed-off, h.size-off)
		m, err := h.f.ReadAt((*buf)[:n], off)
		hh.Write((*buf)[:m])
		off += int64(m)
		if err != nil && !(err == io.EOF && off == h.size) {
			if err == io.EOF {
				err = fmt.Errorf("%s shrank while it was uploaded", h.f.Name())
			}
			h.err = localError{err}
			return
		}
	}
	h.sum = digest.NewDigest(digest.SHA256, hh)
}

// allow lets the hasher read up to byte upTo.
func (h *fileHasher) allow(upTo int64) {
	h.mu.Lock()
	if upTo > h.allowed {
		h.allowed = upTo
		h.cond.Broadcast()
	}
	h.mu.Unlock()
}

// result waits for the digest of the whole file.
func (h *fileHasher) result(ctx context.Context) (digest.Digest, error) {
	h.allow(h.size)
	select {
	case <-h.done:
		return h.sum, h.err
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// stop ends the hasher early (a no-op when it is done).
func (h *fileHasher) stop() {
	h.mu.Lock()
	h.stopped = true
	h.cond.Broadcast()
	h.mu.Unlock()
	<-h.done
}
