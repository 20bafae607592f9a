package oci

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// barMinSize is the file size from which a file gets a bar of its own;
// smaller files only count in the total, so a model of a thousand small
// files does not flood the terminal.
const barMinSize = 4 << 20

// TerminalProgress draws progress bars on a terminal with
// github.com/vbauerster/mpb: one per file of at least 4 MiB while it moves
// (bytes, rate, time left), and one for the whole transfer. Use it only
// when w is a terminal; call Wait before printing anything else to w.
type TerminalProgress struct {
	label string
	p     *mpb.Progress

	mu    sync.Mutex
	total *mpb.Bar
	bytes int64 // the total bar's total
	width int   // of file names, for alignment
}

// NewTerminalProgress returns progress bars drawn on w, the total one
// named label (such as "push" or "pull").
func NewTerminalProgress(w io.Writer, label string) *TerminalProgress {
	return &TerminalProgress{
		label: label,
		p:     mpb.New(mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond)),
		width: 28,
	}
}

func sizeDecorators(name string, width int) (mpb.BarOption, mpb.BarOption) {
	return mpb.PrependDecorators(
			decor.Name(name, decor.WC{W: width, C: decor.DindentRight | decor.DextraSpace}),
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WC{W: 22, C: decor.DindentRight}),
		),
		mpb.AppendDecorators(
			decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WC{W: 12}),
			decor.Name("  "),
			decor.OnComplete(decor.AverageETA(decor.ET_STYLE_MMSS, decor.WC{W: 5}), "done"),
		)
}

// Start implements Progress: it adds a bar for the whole transfer.
func (t *TerminalProgress) Start(files int, total int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total != nil {
		t.bytes += total
		t.total.SetTotal(t.bytes, false)
		return
	}
	t.bytes = total
	pre, app := sizeDecorators(t.label, t.width)
	t.total = t.p.AddBar(total, pre, app, mpb.BarPriority(1<<30))
}

// File implements Progress.
func (t *TerminalProgress) File(p string, size int64) FileProgress {
	tf := &termFile{t: t, size: size}
	if size >= barMinSize {
		name := p
		if r := []rune(name); len(r) > t.width {
			name = "…" + string(r[len(r)-t.width+1:])
		}
		pre, app := sizeDecorators(name, t.width)
		tf.bar = t.p.AddBar(size, pre, app, mpb.BarRemoveOnComplete())
	}
	return tf
}

// Finish implements Progress: the total bar completes (or stops, on error).
func (t *TerminalProgress) Finish(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.total == nil {
		return
	}
	if err != nil {
		t.total.Abort(false)
	} else {
		t.total.SetTotal(-1, true)
	}
}

// Wait waits until the bars are drawn for the last time.
func (t *TerminalProgress) Wait() {
	t.mu.Lock()
	if t.total == nil {
		t.total = t.p.AddBar(0) // nothing was transferred: let Wait return
		t.total.SetTotal(0, true)
	}
	t.mu.Unlock()
	t.p.Wait()
}

// termFile batches counts to its bar and the total bar (1 MiB at a time),
// so hot copy loops do not wait on the drawing goroutine.
type termFile struct {
	t       *TerminalProgress
	bar     *mpb.Bar
	size    int64
	pending atomic.Int64
	over    atomic.Bool
}

const progressBatch = 1 << 20

func (f *termFile) Add(n int64) {
	v := f.pending.Add(n)
	if v >= progressBatch || v <= -progressBatch {
		f.flush()
	}
}

func (f *termFile) flush() {
	n := f.pending.Swap(0)
	if n == 0 {
		return
	}
	if f.bar != nil {
		f.bar.IncrInt64(n)
	}
	f.t.mu.Lock()
	total := f.t.total
	f.t.mu.Unlock()
	if total != nil {
		total.IncrInt64(n)
	}
}

func (f *termFile) Skip() {
	f.pending.Store(0)
	t := f.t
	t.mu.Lock()
	if t.total != nil {
		t.bytes -= f.size
		t.total.SetTotal(t.bytes, false)
	}
	t.mu.Unlock()
	if f.bar != nil {
		f.bar.Abort(true)
	}
	f.over.Store(true)
}

func (f *termFile) Done(err error) {
	if f.over.Swap(true) {
		return
	}
	f.flush()
	if f.bar == nil {
		return
	}
	if err != nil {
		f.bar.Abort(true)
	} else {
		f.bar.SetTotal(-1, true)
	}
}
