package oci

import "context"

// Progress receives byte counts from the transfer engine, for progress
// bars. Implementations must be safe for concurrent use: files move in
// parallel.
type Progress interface {
	// Start announces a transfer of files files holding total bytes, before
	// any of them moves. It is called once per UploadFiles or PullFiles.
	Start(files int, total int64)
	// File announces that the file path (size bytes) starts to move; the
	// returned FileProgress receives its counts. It is called when the
	// file's turn comes, so at most as many files are open as move at once.
	File(path string, size int64) FileProgress
	// Finish says the transfer is over (err nil on success).
	Finish(err error)
}

// FileProgress receives the counts of one file.
type FileProgress interface {
	// Add reports n more bytes moved. n is negative when a retry takes
	// back bytes the registry did not confirm.
	Add(n int64)
	// Skip says the file needed no transfer: the registry or the target
	// folder already holds it (or the blob was mounted from another
	// repository). Done follows.
	Skip()
	// Done says the file is finished (err nil on success).
	Done(err error)
}

type progressKey struct{}

// WithProgress returns a context whose transfers (UploadFiles, PullFiles,
// DownloadBlob) report to p, unless their options name another Progress.
func WithProgress(ctx context.Context, p Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// progressFrom returns the Progress of opts, else of ctx, else a no-op.
func progressFrom(ctx context.Context, opts TransferOptions) Progress {
	if opts.Progress != nil {
		return opts.Progress
	}
	if p, ok := ctx.Value(progressKey{}).(Progress); ok && p != nil {
		return p
	}
	return noProgress{}
}

type noProgress struct{}

func (noProgress) Start(int, int64)                {}
func (noProgress) File(string, int64) FileProgress { return noProgress{} }
func (noProgress) Finish(error)                    {}
func (noProgress) Add(int64)                       {}
func (noProgress) Skip()                           {}
func (noProgress) Done(error)                      {}
