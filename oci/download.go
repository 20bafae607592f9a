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
	"sync"
	"sync/atomic"
	"time"

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
// writing) and checks it against the descriptor. A large blob starts as one
// stream and goes on as parallel byte ranges when that stream is slow
// (TransferOptions.SingleStreamRate).
func (t *transferClient) download(ctx context.Context, desc ocispec.Descriptor, out *os.File, fp FileProgress) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("blob %s: %w: %v", desc.Digest, errdef.ErrIntegrity, err)
	}
	if desc.Size < 0 {
		return fmt.Errorf("blob %s: %w: negative size %d", desc.Digest, errdef.ErrIntegrity, desc.Size)
	}
	ctx = t.scoped(ctx, "pull")
	d := &blobDownload{t: t, desc: desc, out: out, fp: fp}
	h := desc.Digest.Algorithm().Hash()
	var err error
	if desc.Size >= t.opts.rangeThreshold() && desc.Size > t.opts.partSize() {
		err = d.adaptive(ctx, h)
	} else {
		err = d.single(ctx, nil, 0, 0, backoff{opts: t.opts.Retry}, h)
	}
	if err != nil {
		return err
	}
	if got := digest.NewDigest(desc.Digest.Algorithm(), h); got != desc.Digest {
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
// returns a 200 or 206 answer and how many body bytes it promises: the
// whole blob for a 200; for a 206, which starts at from, the range it
// names, which may end before to. The answer is under a stall watchdog
// (RetryOptions.StallTimeout).
func (d *blobDownload) get(ctx context.Context, bo *backoff, ranged bool, from, to int64) (*http.Response, int64, error) {
	for {
		req, err := newRequest(ctx, http.MethodGet, d.t.blobURL(d.desc.Digest.String()), nil)
		if err != nil {
			return nil, 0, err
		}
		if ranged {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
		}
		resp, err := d.t.doWatched(req)
		if err == nil {
			switch resp.StatusCode {
			case http.StatusOK:
				if resp.ContentLength >= 0 && resp.ContentLength != d.desc.Size {
					resp.Body.Close()
					return nil, 0, &integrityError{fmt.Sprintf("the registry sends %d bytes for a blob of size %d", resp.ContentLength, d.desc.Size)}
				}
				return resp, d.desc.Size, nil
			case http.StatusPartialContent:
				start, end, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
				switch {
				case !ok || start != from || end < start || end > to:
					resp.Body.Close()
					err = fmt.Errorf("GET %s: asked for bytes %d-%d, got Content-Range %q", redact(req.URL), from, to, resp.Header.Get("Content-Range"))
				case total >= 0 && total != d.desc.Size:
					resp.Body.Close()
					return nil, 0, &integrityError{fmt.Sprintf("the registry serves %d bytes for a blob of size %d", total, d.desc.Size)}
				case resp.ContentLength >= 0 && resp.ContentLength != end-start+1:
					resp.Body.Close()
					err = fmt.Errorf("GET %s: Content-Range %q but %d bytes of body", redact(req.URL), resp.Header.Get("Content-Range"), resp.ContentLength)
				default:
					return resp, end - start + 1, nil
				}
			case http.StatusNotFound:
				resp.Body.Close()
				return nil, 0, errdef.ErrNotFound
			default:
				err = newRegistryError(resp)
			}
		}
		if err := bo.retry(ctx, err); err != nil {
			return nil, 0, err
		}
	}
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*",
// giving -1).
func parseContentRange(s string) (start, end, total int64, ok bool) {
	s, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, 0, false
	}
	if end, err = strconv.ParseInt(b, 10, 64); err != nil {
		return 0, 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, 0, false
		}
	}
	return start, end, total, true
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

// single streams the blob from byte off to its end, feeding h (which
// holds the bytes before off). resp, when not nil, is an open answer whose
// body continues at off with left bytes to come. An answer that ends where
// it promised before the blob ends (a registry serving shorter ranges than
// asked) is followed by the next range at once; a broken one continues
// with a Range request where the registry answers ranges, else starts
// over.
func (d *blobDownload) single(ctx context.Context, resp *http.Response, left, off int64, bo backoff, h hash.Hash) error {
	size := d.desc.Size
	buf := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(buf)
	rangesOK := resp != nil && resp.StatusCode == http.StatusPartialContent
	for {
		if resp == nil {
			var err error
			resp, left, err = d.get(ctx, &bo, off > 0 && rangesOK, off, size-1)
			if err != nil {
				return d.fail(err)
			}
			if resp.StatusCode == http.StatusOK && off > 0 {
				// The registry sent the whole blob again: start over.
				d.written.Add(-off)
				d.fp.Add(-off)
				off = 0
				h.Reset()
			}
		}
		if resp.StatusCode == http.StatusPartialContent || resp.Header.Get("Accept-Ranges") == "bytes" {
			rangesOK = true
		}
		n, err := d.copyAt(io.LimitReader(resp.Body, left), off, *buf, h)
		off += n
		if err == nil && n == left {
			if off == size {
				var one [1]byte
				extra, _ := io.ReadFull(resp.Body, one[:])
				resp.Body.Close()
				if extra > 0 {
					return d.fail(&integrityError{fmt.Sprintf("the registry sends more than the %d bytes of the blob", size)})
				}
				return nil
			}
			// A whole answer for a shorter range: ask for the next.
			resp.Body.Close()
			resp = nil
			bo.progressed()
			continue
		}
		resp.Body.Close()
		resp = nil
		if err == nil {
			err = fmt.Errorf("the body ended after %d of %d bytes", off, size)
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
}

// adaptive starts a large blob as one stream, hashed as it lands, and
// times its first PartSize bytes. A stream at SingleStreamRate or faster
// goes on to the end; a slower one (or one that breaks in that time) stops
// there and the rest comes as parallel ranges. A registry that ignores
// the Range header, or serves shorter ranges than asked, gets one stream.
func (d *blobDownload) adaptive(ctx context.Context, h hash.Hash) error {
	size := d.desc.Size
	bo := backoff{opts: d.t.opts.Retry}
	resp, left, err := d.get(ctx, &bo, true, 0, size-1)
	if err != nil {
		return d.fail(err)
	}
	window := d.t.opts.partSize()
	if resp.StatusCode == http.StatusOK || left < size {
		return d.single(ctx, resp, left, 0, bo, h)
	}
	buf := copyBufPool.Get().(*[]byte)
	start := time.Now()
	n, err := d.copyAt(io.LimitReader(resp.Body, window), 0, *buf, h)
	elapsed := time.Since(start)
	copyBufPool.Put(buf)
	var le localError
	if errors.As(err, &le) {
		resp.Body.Close()
		return err
	}
	if rate := d.t.opts.singleStreamRate(); err == nil && n == window && rate > 0 && float64(n) >= float64(rate)*elapsed.Seconds() {
		return d.single(ctx, resp, left-n, n, bo, h)
	}
	resp.Body.Close()
	err = d.ranged(ctx, n, h)
	if errors.Is(err, errRangesStopped) {
		// The registry (or a cache in front of it) stopped answering
		// ranges: one stream from the first byte.
		w := d.written.Swap(0)
		d.fp.Add(-w)
		h.Reset()
		return d.single(ctx, nil, 0, 0, backoff{opts: d.t.opts.Retry}, h)
	}
	return err
}

// errRangesStopped says a registry answered a range request with the whole
// blob after it had answered ranges.
var errRangesStopped = errors.New("the registry stopped answering byte ranges")

// ranged downloads bytes [from, size) of the blob as parts of PartSize
// bytes, RangeStreams at a time, each written where it belongs; h holds
// the bytes before from. A follower hashes the file sequentially as the
// parts complete in order, so the digest is checked over the bytes on
// disk, and a broken part continues from its last byte.
func (d *blobDownload) ranged(ctx context.Context, from int64, h hash.Hash) error {
	size := d.desc.Size
	part := d.t.opts.partSize()
	nparts := (size - from) / part
	if (size-from)%part != 0 {
		nparts++
	}
	bounds := func(i int64) (int64, int64) {
		a := from + i*part
		return a, a + min(part, size-a)
	}

	var next atomic.Int64
	done := newPartTracker()
	g, gctx := errgroup.WithContext(ctx)
	for range min(int64(d.t.opts.rangeStreams()), nparts) {
		g.Go(func() error {
			buf := copyBufPool.Get().(*[]byte)
			defer copyBufPool.Put(buf)
			for {
				i := next.Add(1) - 1
				if i >= nparts {
					return nil
				}
				a, b := bounds(i)
				if err := d.fetchPart(gctx, a, b, *buf); err != nil {
					return err
				}
				done.mark(i)
			}
		})
	}
	g.Go(func() error {
		buf := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(buf)
		for i := range nparts {
			if err := done.wait(gctx, i); err != nil {
				return err
			}
			a, b := bounds(i)
			n, err := io.CopyBuffer(h, io.NewSectionReader(d.out, a, b-a), *buf)
			if err != nil || n != b-a {
				return localError{fmt.Errorf("reading back %s: %v (%d of %d bytes)", d.out.Name(), err, n, b-a)}
			}
		}
		return nil
	})
	return g.Wait()
}

// partTracker records which parts of a ranged download are complete, for
// the follower that hashes them in order. It holds only parts done and
// not yet hashed, whatever the number of parts the descriptor claims.
type partTracker struct {
	mu   sync.Mutex
	done map[int64]bool
	ch   chan struct{} // closed and replaced on every mark
}

func newPartTracker() *partTracker {
	return &partTracker{done: map[int64]bool{}, ch: make(chan struct{})}
}

func (p *partTracker) mark(i int64) {
	p.mu.Lock()
	p.done[i] = true
	close(p.ch)
	p.ch = make(chan struct{})
	p.mu.Unlock()
}

// wait returns when part i is complete (and forgets it), or with the
// cause of ctx.
func (p *partTracker) wait(ctx context.Context, i int64) error {
	for {
		p.mu.Lock()
		if p.done[i] {
			delete(p.done, i)
			p.mu.Unlock()
			return nil
		}
		ch := p.ch
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// fetchPart writes bytes [start, end) of the blob, continuing after broken
// connections (and after answers shorter than asked) from the last byte
// written. It returns errRangesStopped, unwrapped, on a 200 answer.
func (d *blobDownload) fetchPart(ctx context.Context, start, end int64, buf []byte) error {
	off := start
	bo := backoff{opts: d.t.opts.Retry}
	for off < end {
		resp, left, err := d.get(ctx, &bo, true, off, end-1)
		if err != nil {
			return d.fail(err)
		}
		if resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			return errRangesStopped
		}
		n, err := d.copyAt(io.LimitReader(resp.Body, left), off, buf, nil)
		resp.Body.Close()
		off += n
		if off == end || (err == nil && n == left) {
			bo.progressed()
			continue
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
