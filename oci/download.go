package oci

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/modelreg/modelreg/errdef"
)

// blobDownload is one blob being written into a file.
type blobDownload struct {
	t       *transferClient
	desc    ocispec.Descriptor
	out     *os.File
	fp      FileProgress
	written atomic.Int64 // bytes written into out (parts count as they land)
	moved   atomic.Int64 // bytes received, over all tries
}

// download writes blob desc into out (empty, opened for reading and
// writing) and checks it against the descriptor. Large blobs come as
// parallel byte ranges where the registry answers them.
func (t *transferClient) download(ctx context.Context, desc ocispec.Descriptor, out *os.File, fp FileProgress) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("blob %s: %w: %v", desc.Digest, errdef.ErrIntegrity, err)
	}
	if desc.Size < 0 {
		return fmt.Errorf("blob %s: %w: negative size %d", desc.Digest, errdef.ErrIntegrity, desc.Size)
	}
	ctx = t.scoped(ctx, "pull")
	d := &blobDownload{t: t, desc: desc, out: out, fp: fp}
	var (
		got digest.Digest
		err error
	)
	if desc.Size >= t.opts.rangeThreshold() && desc.Size > t.opts.partSize() {
		got, err = d.ranged(ctx)
	} else {
		got, err = d.single(ctx, nil, backoff{opts: t.opts.Retry})
	}
	if err != nil {
		return err
	}
	if got != desc.Digest {
		return fmt.Errorf("blob %s: %w: content does not match its descriptor (its bytes hash to %s); the registry holds damaged or tampered data", desc.Digest, errdef.ErrIntegrity, got)
	}
	return nil
}

// fail wraps err with what was being done and how far the download got.
func (d *blobDownload) fail(err error) error {
	var le localError
	var ie *integrityError
	switch {
	case errors.As(err, &le), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, errdef.ErrNotFound):
		return fmt.Errorf("blob %s: %w", d.desc.Digest, errdef.ErrNotFound)
	case errors.As(err, &ie):
		return fmt.Errorf("blob %s: %w: %v", d.desc.Digest, errdef.ErrIntegrity, ie)
	}
	return &TransferError{Op: "download", Step: "GET", Digest: d.desc.Digest, Size: d.desc.Size, Done: d.written.Load(), Moved: d.moved.Load(), Err: err}
}

// get sends a GET for the blob, for bytes [from, to] when ranged. It
// returns a 200 or 206 answer; a 206 starts at from.
func (d *blobDownload) get(ctx context.Context, bo *backoff, ranged bool, from, to int64) (*http.Response, error) {
	for {
		req, err := newRequest(ctx, http.MethodGet, d.t.blobURL(d.desc.Digest.String()), nil)
		if err != nil {
			return nil, err
		}
		if ranged {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
		}
		resp, err := d.t.do(req)
		if err == nil {
			switch resp.StatusCode {
			case http.StatusOK:
				return resp, nil
			case http.StatusPartialContent:
				start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
				switch {
				case !ok || start != from:
					resp.Body.Close()
					err = fmt.Errorf("GET %s: asked for bytes from %d, got Content-Range %q", redact(req.URL), from, resp.Header.Get("Content-Range"))
				case total >= 0 && total != d.desc.Size:
					resp.Body.Close()
					return nil, &integrityError{fmt.Sprintf("the registry serves %d bytes for a blob of size %d", total, d.desc.Size)}
				default:
					return resp, nil
				}
			case http.StatusNotFound:
				resp.Body.Close()
				return nil, errdef.ErrNotFound
			default:
				err = newRegistryError(resp)
			}
		}
		if err := bo.retry(ctx, err); err != nil {
			return nil, err
		}
	}
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*",
// giving -1).
func parseContentRange(s string) (start, total int64, ok bool) {
	s, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

// copyAt copies r into the file from offset off through buf, feeding h
// when not nil. It returns the bytes written and the read error (nil at
// the end of r).
func (d *blobDownload) copyAt(r io.Reader, off int64, buf []byte, h hash.Hash) (int64, error) {
	var total int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			d.moved.Add(int64(n))
			if h != nil {
				h.Write(buf[:n])
			}
			if _, err := d.out.WriteAt(buf[:n], off+total); err != nil {
				return total, localError{fmt.Errorf("writing %s: %w", d.out.Name(), err)}
			}
			total += int64(n)
			d.written.Add(int64(n))
			d.fp.Add(int64(n))
		}
		switch rerr {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return total, nil
		default:
			return total, rerr
		}
	}
}

// single streams the blob in one GET (resp, when not nil, is an open 200
// answer), hashing it on the way. A broken stream continues with a Range
// request where the registry answers ranges, else starts over.
func (d *blobDownload) single(ctx context.Context, resp *http.Response, bo backoff) (digest.Digest, error) {
	size := d.desc.Size
	h := d.desc.Digest.Algorithm().Hash()
	buf := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(buf)
	var off int64
	rangesOK := false
	for {
		if resp == nil {
			var err error
			resp, err = d.get(ctx, &bo, off > 0 && rangesOK, off, size-1)
			if err != nil {
				return "", d.fail(err)
			}
		}
		if resp.StatusCode == http.StatusPartialContent || resp.Header.Get("Accept-Ranges") == "bytes" {
			rangesOK = true
		}
		if resp.StatusCode == http.StatusOK && off > 0 {
			// The registry sent the whole blob again: start over.
			d.written.Add(-off)
			d.fp.Add(-off)
			off = 0
			h.Reset()
		}
		if resp.ContentLength >= 0 && resp.ContentLength != size-off {
			resp.Body.Close()
			return "", d.fail(&integrityError{fmt.Sprintf("the registry sends %d bytes from offset %d of a blob of size %d", resp.ContentLength, off, size)})
		}
		n, err := d.copyAt(io.LimitReader(resp.Body, size-off), off, *buf, h)
		off += n
		if err == nil && off == size {
			var one [1]byte
			extra, _ := io.ReadFull(resp.Body, one[:])
			resp.Body.Close()
			if extra > 0 {
				return "", d.fail(&integrityError{fmt.Sprintf("the registry sends more than the %d bytes of the blob", size)})
			}
			return digest.NewDigest(d.desc.Digest.Algorithm(), h), nil
		}
		resp.Body.Close()
		resp = nil
		if err == nil {
			err = fmt.Errorf("the body ended after %d of %d bytes", off, size)
		}
		var le localError
		if errors.As(err, &le) {
			return "", err
		}
		if n > 0 {
			bo.progressed()
		}
		if err := bo.retry(ctx, err); err != nil {
			return "", d.fail(err)
		}
	}
}

// ranged downloads the blob as parts of PartSize bytes, RangeStreams at a
// time, each written where it belongs. A follower hashes the file
// sequentially as the parts complete in order, so the digest is checked
// over the bytes on disk, and a broken part continues from its last byte.
// A registry that ignores the Range header gets a single stream.
func (d *blobDownload) ranged(ctx context.Context) (digest.Digest, error) {
	size := d.desc.Size
	part := d.t.opts.partSize()
	nparts := int((size + part - 1) / part)
	bounds := func(i int) (int64, int64) { return int64(i) * part, min(int64(i+1)*part, size) }

	bo := backoff{opts: d.t.opts.Retry}
	_, end0 := bounds(0)
	probe, err := d.get(ctx, &bo, true, 0, end0-1)
	if err != nil {
		return "", d.fail(err)
	}
	if probe.StatusCode == http.StatusOK {
		return d.single(ctx, probe, bo)
	}

	done := make([]chan struct{}, nparts)
	for i := range done {
		done[i] = make(chan struct{})
	}
	var next atomic.Int64
	next.Store(1)
	g, gctx := errgroup.WithContext(ctx)
	worker := func(first *http.Response) error {
		buf := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(buf)
		if first != nil {
			if err := d.fetchPart(gctx, 0, first, *buf); err != nil {
				return err
			}
			close(done[0])
		}
		for {
			i := int(next.Add(1) - 1)
			if i >= nparts {
				return nil
			}
			if err := d.fetchPart(gctx, i, nil, *buf); err != nil {
				return err
			}
			close(done[i])
		}
	}
	streams := min(d.t.opts.rangeStreams(), nparts)
	g.Go(func() error { return worker(probe) })
	for range streams - 1 {
		g.Go(func() error { return worker(nil) })
	}
	h := d.desc.Digest.Algorithm().Hash()
	g.Go(func() error {
		buf := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(buf)
		for i := range nparts {
			select {
			case <-done[i]:
			case <-gctx.Done():
				return context.Cause(gctx)
			}
			a, b := bounds(i)
			n, err := io.CopyBuffer(h, io.NewSectionReader(d.out, a, b-a), *buf)
			if err != nil || n != b-a {
				return localError{fmt.Errorf("reading back %s: %v (%d of %d bytes)", d.out.Name(), err, n, b-a)}
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		if probe != nil {
			probe.Body.Close()
		}
		return "", err
	}
	return digest.NewDigest(d.desc.Digest.Algorithm(), h), nil
}

// fetchPart writes part i, continuing after broken connections from the
// last byte written; resp, when not nil, is an open answer for the part.
func (d *blobDownload) fetchPart(ctx context.Context, i int, resp *http.Response, buf []byte) error {
	part := d.t.opts.partSize()
	start := int64(i) * part
	end := min(start+part, d.desc.Size)
	off := start
	bo := backoff{opts: d.t.opts.Retry}
	for off < end {
		if resp == nil {
			var err error
			if resp, err = d.get(ctx, &bo, true, off, end-1); err != nil {
				return d.fail(err)
			}
			if resp.StatusCode == http.StatusOK {
				resp.Body.Close()
				return d.fail(fmt.Errorf("GET %s: the registry stopped answering byte ranges", d.t.blobURL(d.desc.Digest.String())))
			}
		}
		n, err := d.copyAt(io.LimitReader(resp.Body, end-off), off, buf, nil)
		resp.Body.Close()
		resp = nil
		off += n
		if off == end {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("the body of bytes %d-%d ended after %d bytes", start, end-1, off-start)
		}
		var le localError
		if errors.As(err, &le) {
			return err
		}
		if n > 0 {
			bo.progressed()
		}
		if err := bo.retry(ctx, err); err != nil {
			return d.fail(err)
		}
	}
	return nil
}
