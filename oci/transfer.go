package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/registry/remote"
)

// DefaultConcurrency is how many files move at once when the caller does not
// say: enough to keep a link busy while one file waits on a round trip,
// consistent with oras' push default of 5.
const DefaultConcurrency = 5

// Defaults of the transfer engine (see TransferOptions).
const (
	// DefaultChunkSize is the body size of one PATCH of a chunked upload:
	// 0, one PATCH for the rest of the file, which the kernel sends
	// straight from the page cache (sendfile). A broken PATCH continues
	// from the byte the registry confirms (distribution and olareg keep
	// what they received); set TransferOptions.ChunkSize for a registry
	// that drops partial chunks or limits their size.
	DefaultChunkSize = 0
	// DefaultRangeThreshold is the blob size from which a download uses
	// parallel byte ranges (64 MiB).
	DefaultRangeThreshold = 64 << 20
	// DefaultPartSize is the size of one byte range (16 MiB).
	DefaultPartSize = 16 << 20
	// DefaultRangeStreams is how many byte ranges of one blob are fetched
	// at once.
	DefaultRangeStreams = 8
	// DefaultSingleStreamRate is the rate (256 MiB/s) from which a large
	// blob keeps coming as one stream (see TransferOptions.SingleStreamRate).
	DefaultSingleStreamRate = 256 << 20
)

// smallFileSize is the size up to which a file is hashed before it is
// uploaded (one HEAD finds it in the registry; one PUT sends it): reading
// it twice costs less than a round trip.
const smallFileSize = 4 << 20

// copyBufPool holds the 256 KiB buffers every copy of the transfer engine
// uses, so memory stays flat whatever the blob sizes.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// TransferOptions configure uploads and downloads. The zero value is usable.
type TransferOptions struct {
	// Concurrency is how many blobs move at once. If ≤ 0,
	// DefaultConcurrency is used.
	Concurrency int
	// Cache remembers file digests between runs, and which repositories
	// of a registry hold which blobs. The zero value caches nothing.
	Cache DigestCache
	// MountFrom names repositories of the same registry (REPO, without
	// the host) that may hold blobs of this upload, such as the
	// repositories of the parent model and the datasets. A blob whose
	// digest is known (from the cache) and that the target lacks is
	// mounted from there instead of sent, where the registry allows it.
	MountFrom []string
	// Progress receives byte counts. If nil, the Progress of the context
	// (WithProgress) is used, if any.
	Progress Progress
	// Retry bounds retries of failed requests.
	Retry RetryOptions
	// ChunkSize is the body size in bytes of one PATCH of a chunked
	// upload; ≤ 0 sends the rest of the file in one PATCH.
	ChunkSize int64
	// RangeThreshold is the blob size in bytes from which downloads may
	// use parallel byte ranges. If ≤ 0, DefaultRangeThreshold.
	RangeThreshold int64
	// PartSize is the size in bytes of one byte range. If ≤ 0,
	// DefaultPartSize.
	PartSize int64
	// RangeStreams is how many byte ranges of one blob are fetched at
	// once; 1 turns parallel ranges off. If ≤ 0, DefaultRangeStreams.
	RangeStreams int
	// SingleStreamRate, in bytes per second, decides how a blob of at
	// least RangeThreshold bytes comes: it starts as one stream, hashed as
	// it lands, and the first PartSize bytes are timed. At this rate or
	// faster (a fast link, where parallel ranges only cost CPU) the stream
	// goes on; slower (one connection of a long or shaped link), the rest
	// comes as parallel ranges. If 0, DefaultSingleStreamRate; if < 0, the
	// rest always comes as ranges.
	SingleStreamRate int64
	// Mirrors are repositories on mirrors (Client.Mirrors) that downloads
	// try in order before the origin; see MirrorOptions. Empty: the
	// origin only.
	Mirrors []*remote.Repository
	// Warnings receives a line for each mirror passed over. If nil,
	// os.Stderr.
	Warnings io.Writer
}

func (o TransferOptions) concurrency() int {
	if o.Concurrency <= 0 {
		return DefaultConcurrency
	}
	return o.Concurrency
}

// chunkSize is the PATCH body size, or the maximum for "the rest".
func (o TransferOptions) chunkSize() int64 {
	if o.ChunkSize <= 0 {
		return 1<<63 - 1
	}
	return o.ChunkSize
}

func (o TransferOptions) rangeThreshold() int64 {
	if o.RangeStreams == 1 {
		return 1<<63 - 1
	}
	if o.RangeThreshold <= 0 {
		return DefaultRangeThreshold
	}
	return o.RangeThreshold
}

func (o TransferOptions) partSize() int64 {
	if o.PartSize <= 0 {
		return DefaultPartSize
	}
	return o.PartSize
}

func (o TransferOptions) singleStreamRate() int64 {
	if o.SingleStreamRate == 0 {
		return DefaultSingleStreamRate
	}
	return o.SingleStreamRate
}

func (o TransferOptions) rangeStreams() int {
	if o.RangeStreams <= 0 {
		return DefaultRangeStreams
	}
	return o.RangeStreams
}

// TransferError reports a blob transfer that failed after its retries:
// which request, how far the transfer got and why. errors.Unwrap gives the
// last error.
type TransferError struct {
	// Op is "upload" or "download"; Step the HTTP method that failed last.
	Op, Step string
	// Digest names the blob, "" when an upload failed before its digest
	// was known.
	Digest digest.Digest
	// Size is the blob size in bytes; Done the bytes the registry
	// confirmed (upload) or that were written (download); Moved every
	// byte sent or received over all tries, broken ones included.
	Size, Done, Moved int64
	Err               error
}

func (e *TransferError) Error() string {
	what := "received"
	if e.Op == "upload" {
		what = "confirmed by the registry"
	}
	return fmt.Sprintf("%v; %s of %s %s (%s moved in all)", e.Err, formatBytes(e.Done), formatBytes(e.Size), what, formatBytes(e.Moved))
}

func (e *TransferError) Unwrap() error { return e.Err }

// formatBytes formats n with a binary unit, e.g. "1.5 GiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit || m <= -unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// UploadStats counts what an upload moved.
type UploadStats struct {
	Uploaded int // blobs sent
	// Skipped counts blobs the repository already had, or that were
	// mounted from another repository of the registry (Mounted of them).
	Skipped       int
	Mounted       int
	BytesUploaded int64 // bytes of the blobs sent
	// Deduplicated counts files whose blob another file of the same
	// upload carried: a hard link to it, or identical bytes.
	Deduplicated int
}

// UploadFiles makes every file a blob of repo, filling each file's Digest.
//
// Each large file is read from disk once: a chunked upload (POST,
// PATCH…, PUT ?digest=) sends it from the page cache with sendfile while a
// background reader hashes the same bytes, and the digest given to the
// registry is that hash; the registry checks it against the bytes it
// received, so a file that changes under the upload is refused, never
// stored under a wrong digest. A registry that refuses PATCH gets one
// monolithic PUT instead. A file whose digest the cache knows (or a file
// of at most 4 MiB, hashed first) is looked up with a HEAD (several at a
// time) and not sent when the repository has it, or mounted from a
// sibling repository (TransferOptions.MountFrom, or one the cache saw
// holding it). A cached digest that names a blob of another size, or that
// the registry refuses, is forgotten and the file hashed again; the cache
// learns the digest of every file sent. A broken upload continues from the last byte
// the registry confirms; 429 and 5xx answers are retried with backoff
// (TransferOptions.Retry), and the final error (a *TransferError inside)
// says what failed and how many bytes moved. Files move in parallel,
// Concurrency at a time. Identical bytes move once: hard links to one
// inode, and files with equal digests (files that share a size are hashed
// first to find them), are one blob, sent once; every file still gets its
// Digest (UploadStats.Deduplicated counts the followers).
func UploadFiles(ctx context.Context, repo *remote.Repository, files []File, opts TransferOptions) (stats UploadStats, err error) {
	t := newTransferClient(repo, opts)
	prog := progressFrom(ctx, opts)
	var total int64
	for _, f := range files {
		total += f.Size
	}
	prog.Start(len(files), total)
	defer func() { prog.Finish(err) }()

	// Identical bytes move once: hard links to one file, and files of one
	// size (hashed first to compare them), follow one leader and are
	// neither looked up nor sent themselves.
	leader, hashFirst, err := sameBytes(files)
	if err != nil {
		return stats, err
	}

	// First every digest the cache knows (and every small file's) is
	// looked up with a HEAD, several at a time since no data moves; then
	// the missing files are sent, Concurrency at a time.
	outcomes := make([]upOutcome, len(files))
	probes := make([]probe, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(4*opts.concurrency(), 16))
	for i := range files {
		f := &files[i]
		if leader[i] != i {
			continue
		}
		g.Go(func() error {
			p, err := t.probeFile(gctx, f, opts.Cache, hashFirst[i])
			if err != nil {
				return fmt.Errorf("uploading %s: %w", f.Path, err)
			}
			probes[i] = p
			if p.present {
				outcomes[i] = upSkipped
				fp := prog.File(f.Path, f.Size)
				fp.Skip()
				fp.Done(nil)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return stats, err
	}
	byDigest := map[string]int{}
	for i := range files {
		if leader[i] != i || probes[i].known == "" {
			continue
		}
		if j, ok := byDigest[probes[i].known.String()]; ok {
			leader[i] = j
			continue
		}
		byDigest[probes[i].known.String()] = i
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(opts.concurrency())
	for i := range files {
		f := &files[i]
		if probes[i].present || leader[i] != i {
			continue
		}
		g.Go(func() error {
			fp := prog.File(f.Path, f.Size)
			o, err := t.uploadFile(gctx, f, opts.Cache, fp, probes[i])
			if err != nil {
				fp.Done(err)
				return fmt.Errorf("uploading %s: %w", f.Path, err)
			}
			if o != upSent {
				fp.Skip()
			}
			fp.Done(nil)
			outcomes[i] = o
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return stats, err
	}
	for i := range files {
		if j := leadOf(leader, i); j != i {
			files[i].Digest = files[j].Digest
			outcomes[i] = upDeduplicated
			fp := prog.File(files[i].Path, files[i].Size)
			fp.Skip()
			fp.Done(nil)
		}
	}
	for i, o := range outcomes {
		switch o {
		case upDeduplicated:
			stats.Deduplicated++
		case upSent:
			stats.Uploaded++
			stats.BytesUploaded += files[i].Size
		case upMounted:
			stats.Mounted++
			stats.Skipped++
		default:
			stats.Skipped++
		}
	}
	return stats, nil
}

// upDeduplicated: another file of the upload carried the file's bytes.
// (Kept apart from the other outcomes in upload.go, which is the HTTP side.)
const upDeduplicated = upMounted + 1

// sameBytes finds the files of one upload that need not be sent: for each
// file the index of the file whose blob serves it (itself, or an earlier
// hard link to the same inode), and whether it must be hashed before its
// upload because another file, not a hard link of it, has its size (the
// caller then follows the first of equal digests).
func sameBytes(files []File) (leader []int, hashFirst []bool, err error) {
	leader = make([]int, len(files))
	hashFirst = make([]bool, len(files))
	infos := make([]os.FileInfo, len(files))
	bySize := map[int64][]int{} // leaders of each size
	for i := range files {
		leader[i] = i
		fi, err := os.Stat(files[i].Abs)
		if err != nil {
			return nil, nil, fmt.Errorf("uploading %s: %w", files[i].Path, err)
		}
		infos[i] = fi
		for _, j := range bySize[fi.Size()] {
			if os.SameFile(infos[j], fi) {
				leader[i] = j
				break
			}
		}
		if leader[i] == i {
			bySize[fi.Size()] = append(bySize[fi.Size()], i)
		}
	}
	for _, same := range bySize {
		if len(same) > 1 {
			for _, i := range same {
				hashFirst[i] = true
			}
		}
	}
	return leader, hashFirst, nil
}

// leadOf follows leader from i to the file whose blob serves i.
func leadOf(leader []int, i int) int {
	for leader[i] != i {
		i = leader[i]
	}
	return i
}

// DownloadBlob fetches the blob desc from repo into the file at dst
// (created or truncated), checking size and digest. A blob of at least
// DefaultRangeThreshold bytes starts as one stream and goes on as
// parallel byte ranges, where the registry answers them, when its first
// DefaultPartSize bytes arrive slower than DefaultSingleStreamRate.
// Broken or stalled connections continue from the bytes already written,
// and 429/5xx answers are retried with backoff. On any
// error dst is removed; the error wraps errdef.ErrIntegrity when the
// content did not match desc, errdef.ErrNotFound when the registry lacks
// the blob, and holds a *TransferError when retries ran out.
func DownloadBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, dst string) error {
	return downloadFile(ctx, newTransferClient(repo, TransferOptions{}), desc, dst, progressFrom(ctx, TransferOptions{}).File(dst, desc.Size))
}

// downloadFile downloads desc into dst, removing dst on error.
func downloadFile(ctx context.Context, t *transferClient, desc ocispec.Descriptor, dst string, fp FileProgress) (err error) {
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		fp.Done(err)
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing %s: %w", dst, cerr)
		}
		if err != nil {
			os.Remove(dst)
		}
		fp.Done(err)
	}()
	err = t.downloadMirrored(ctx, desc, out, fp)
	var le localError
	if errors.As(err, &le) {
		err = le.err
	}
	return err
}
