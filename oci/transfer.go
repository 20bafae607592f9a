package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content"
	orasErrdef "oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
)

// DefaultConcurrency is how many files move at once when the caller does not
// say: enough to keep a link busy while one file waits on a round trip,
// consistent with oras' push default of 5.
const DefaultConcurrency = 5

// TransferOptions configure uploads and downloads. The zero value is usable.
type TransferOptions struct {
	// Concurrency is how many blobs move at once. If ≤ 0,
	// DefaultConcurrency is used.
	Concurrency int
	// Cache remembers file digests between runs. The zero value caches
	// nothing.
	Cache DigestCache
}

func (o TransferOptions) concurrency() int {
	if o.Concurrency <= 0 {
		return DefaultConcurrency
	}
	return o.Concurrency
}

// UploadStats counts what an upload moved.
type UploadStats struct {
	Uploaded      int   // blobs sent
	Skipped       int   // blobs the registry already had
	BytesUploaded int64 // bytes sent
}

// UploadFiles makes every file a blob of repo, filling each file's Digest.
// Files whose blob the registry already has are not sent. A cached digest
// that the registry rejects as a mismatch is forgotten and the file hashed
// again.
func UploadFiles(ctx context.Context, repo *remote.Repository, files []File, opts TransferOptions) (UploadStats, error) {
	var stats UploadStats
	type result struct {
		uploaded bool
		n        int64
	}
	results := make([]result, len(files))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.concurrency())
	for i := range files {
		f := &files[i]
		g.Go(func() error {
			up, err := uploadFile(ctx, repo, f, opts.Cache)
			if err != nil {
				return fmt.Errorf("uploading %s: %w", f.Path, err)
			}
			if up {
				results[i] = result{true, f.Size}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return stats, err
	}
	for _, r := range results {
		if r.uploaded {
			stats.Uploaded++
			stats.BytesUploaded += r.n
		} else {
			stats.Skipped++
		}
	}
	return stats, nil
}

func uploadFile(ctx context.Context, repo *remote.Repository, f *File, cache DigestCache) (bool, error) {
	for attempt := 0; ; attempt++ {
		d, err := cache.HashFile(f.Abs)
		if err != nil {
			return false, err
		}
		f.Digest = d
		desc := ocispec.Descriptor{MediaType: f.Role.MediaType(), Digest: d, Size: f.Size}
		ok, err := repo.Blobs().Exists(ctx, desc)
		if err != nil {
			return false, err
		}
		if ok {
			return false, nil
		}
		fh, err := os.Open(f.Abs)
		if err != nil {
			return false, err
		}
		err = repo.Blobs().Push(ctx, desc, io.LimitReader(fh, f.Size))
		fh.Close()
		if err == nil || errors.Is(err, orasErrdef.ErrAlreadyExists) {
			return true, nil
		}
		if attempt == 0 && isDigestMismatch(err) {
			// The cached digest or the file changed under us: hash again.
			cache.Forget(f.Abs)
			continue
		}
		return false, err
	}
}

func isDigestMismatch(err error) bool {
	s := err.Error()
	return strings.Contains(s, "DIGEST_INVALID") || strings.Contains(s, "SIZE_INVALID") || strings.Contains(s, "BLOB_UPLOAD_INVALID")
}

// DownloadBlob fetches the blob desc from repo into the file at dst
// (created or truncated), checking size and digest while streaming. On any
// error dst is removed and the error wraps errdef.ErrIntegrity when the
// content did not match desc.
func DownloadBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, dst string) (err error) {
	rc, err := repo.Blobs().Fetch(ctx, desc)
	if err != nil {
		if errors.Is(err, orasErrdef.ErrNotFound) {
			return fmt.Errorf("blob %s: %w", desc.Digest, errdef.ErrNotFound)
		}
		if strings.Contains(err.Error(), "mismatch") {
			return fmt.Errorf("blob %s: %w: %v", desc.Digest, errdef.ErrIntegrity, err)
		}
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	vr := content.NewVerifyReader(rc, desc)
	n, err := io.Copy(out, vr)
	if err != nil {
		if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) {
			return fmt.Errorf("blob %s: %w: %v", desc.Digest, errdef.ErrIntegrity, err)
		}
		return fmt.Errorf("blob %s after %d of %d bytes: %w", desc.Digest, n, desc.Size, err)
	}
	if err := vr.Verify(); err != nil {
		return fmt.Errorf("blob %s: %w: content does not match its descriptor (%v); the registry holds damaged or tampered data", desc.Digest, errdef.ErrIntegrity, err)
	}
	return nil
}
