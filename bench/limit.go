package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
)

// blob is one file of a model with its precomputed digest.
type blob struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// The limit runs as a child process, like the tools it is compared with:
// the same bytes, the same connections (Concurrency files at a time; large
// blobs as ranges of partSize, rangeStreams at a time, as modelreg's
// defaults), but no hashing, no verification, no temporary folder, no
// manifest: only what the registry and the link must do.
const (
	limitConcurrency = 5
	rangeThreshold   = 64 << 20
	partSize         = 16 << 20
	rangeStreams     = 8
)

var limitClient = &http.Client{Transport: &http.Transport{
	MaxIdleConns:        256,
	MaxIdleConnsPerHost: 64,
	DisableCompression:  true,
	ReadBufferSize:      64 << 10,
	WriteBufferSize:     64 << 10,
}}

func readPlan(p string) ([]blob, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var blobs []blob
	return blobs, json.Unmarshal(b, &blobs)
}

// limitPush sends every blob with POST + one PUT ?digest= (digests known).
// With verify, each blob's bytes go through one sha256 on their way to
// the socket (no sendfile), checked against the plan at the end.
func limitPush(addr, repo, dir, plan string, verify bool) error {
	blobs, err := readPlan(plan)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(limitConcurrency)
	for _, b := range blobs {
		g.Go(func() error { return rawPut(ctx, addr, repo, filepath.Join(dir, b.Path), b, verify) })
	}
	return g.Wait()
}

func rawPut(ctx context.Context, addr, repo, file string, b blob, verify bool) error {
	base := "http://" + addr + "/v2/" + repo + "/blobs/uploads/"
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base, nil)
	resp, err := limitClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: %s", base, resp.Status)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", b.Digest)
	loc.RawQuery = q.Encode()
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var body io.Reader = f
	h := sha256.New()
	if verify {
		body = io.TeeReader(f, h)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), body)
	req.ContentLength = b.Size
	if b.Size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = limitClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT %s: %s", redactURL(loc), resp.Status)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); verify && got != b.Digest {
		return fmt.Errorf("%s: sent bytes hash to %s, want %s", file, got, b.Digest)
	}
	return nil
}

func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.String()
}

// limitPull GETs every blob into dir/PATH, large ones as parallel ranges
// written in place. With verify, a single stream is hashed as it lands,
// and a ranged blob is hashed in order by a reader that takes each part
// back from the page cache as soon as it and all parts before it are
// written (sha256 cannot hash parts out of order); the digest is checked
// against the plan.
func limitPull(addr, repo, dir, plan string, verify bool) error {
	blobs, err := readPlan(plan)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(limitConcurrency)
	for _, b := range blobs {
		g.Go(func() error {
			dst := filepath.Join(dir, filepath.FromSlash(b.Path))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			out, err := os.Create(dst)
			if err != nil {
				return err
			}
			defer out.Close()
			u := "http://" + addr + "/v2/" + repo + "/blobs/" + b.Digest
			h := sha256.New()
			check := func() error {
				if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); verify && got != b.Digest {
					return fmt.Errorf("%s: received bytes hash to %s, want %s", b.Path, got, b.Digest)
				}
				return nil
			}
			if b.Size < rangeThreshold {
				var hw io.Writer
				if verify {
					hw = h
				}
				if err := rawGet(ctx, u, out, 0, b.Size, false, hw); err != nil {
					return err
				}
				return check()
			}
			parts := int((b.Size + partSize - 1) / partSize)
			done := make([]chan struct{}, parts)
			for i := range done {
				done[i] = make(chan struct{})
			}
			next := make(chan int, parts)
			for i := range parts {
				next <- i
			}
			close(next)
			pg, pctx := errgroup.WithContext(ctx)
			for range min(rangeStreams, parts) {
				pg.Go(func() error {
					for i := range next {
						a := int64(i) * partSize
						if err := rawGet(pctx, u, out, a, min(a+partSize, b.Size), true, nil); err != nil {
							return err
						}
						close(done[i])
					}
					return nil
				})
			}
			if verify {
				pg.Go(func() error {
					buf := make([]byte, 256<<10)
					for i := range parts {
						select {
						case <-done[i]:
						case <-pctx.Done():
							return pctx.Err()
						}
						a := int64(i) * partSize
						if _, err := io.CopyBuffer(h, io.NewSectionReader(out, a, min(partSize, b.Size-a)), buf); err != nil {
							return err
						}
					}
					return nil
				})
			}
			if err := pg.Wait(); err != nil {
				return err
			}
			return check()
		})
	}
	return g.Wait()
}

// rawGet writes bytes [from, to) of the blob at u into out at from, and
// into h (when not nil) in order.
func rawGet(ctx context.Context, u string, out *os.File, from, to int64, ranged bool, h io.Writer) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if ranged {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-"+strconv.FormatInt(to-1, 10))
	}
	resp, err := limitClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	buf := make([]byte, 256<<10)
	off := from
	for {
		n, err := io.ReadFull(resp.Body, buf)
		if n > 0 {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				return werr
			}
			if h != nil {
				h.Write(buf[:n])
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if off != to {
		return fmt.Errorf("GET %s: %d bytes, want %d", u, off-from, to-from)
	}
	return nil
}

// runLimit is the entry point of the limit child process.
func runLimit(args []string) error {
	if len(args) != 5 || !strings.HasPrefix(args[0], "limit-") {
		return fmt.Errorf("usage: bench limit-push|limit-pull|limit-push-verify|limit-pull-verify ADDR REPO DIR PLAN")
	}
	switch args[0] {
	case "limit-push", "limit-push-verify":
		return limitPush(args[1], args[2], args[3], args[4], args[0] == "limit-push-verify")
	case "limit-pull", "limit-pull-verify":
		return limitPull(args[1], args[2], args[3], args[4], args[0] == "limit-pull-verify")
	}
	return fmt.Errorf("unknown %s", args[0])
}
