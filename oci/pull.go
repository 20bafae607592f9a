package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	modelspec "github.com/modelpack/model-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
)

// PullOptions configure PullFiles. The zero value pulls every file.
type PullOptions struct {
	TransferOptions
	// VerifyExisting hashes files dir already holds instead of trusting
	// the digest cache for them, for deploy-time pulls that verify
	// signatures: the cache is a per-user hint, not evidence.
	VerifyExisting bool
	// Include keeps only files that match one of these globs (see
	// MatchInclude). Empty keeps all.
	Include []string
}

// PulledFile is one file of a pull.
type PulledFile struct {
	Path       string `json:"path"`
	Digest     string `json:"digest"`
	Size       int64  `json:"size"`
	Downloaded bool   `json:"downloaded"`
}

// PullResult says what a pull wrote.
type PullResult struct {
	Files           []PulledFile
	BytesDownloaded int64
}

// SelectFiles returns the files of mv that match include (all when empty).
// A pattern that matches nothing is an error wrapping
// errdef.ErrInvalidInput, so a typo does not pass silently.
func SelectFiles(mv *ModelVersion, include []string) ([]ModelFile, error) {
	if len(include) == 0 {
		return mv.Files, nil
	}
	for _, pat := range include {
		if !doublestar.ValidatePattern(pat) {
			return nil, fmt.Errorf("%w: --include %q is not a valid glob (unclosed [ or {, or a trailing \\)", errdef.ErrInvalidInput, pat)
		}
	}
	var out []ModelFile
	used := map[string]bool{}
	for _, f := range mv.Files {
		for _, pat := range include {
			if MatchInclude(pat, f.Path) {
				out = append(out, f)
				used[pat] = true
				break
			}
		}
	}
	for _, pat := range include {
		if !used[pat] {
			var names []string
			for _, f := range mv.Files {
				names = append(names, f.Path)
			}
			return nil, fmt.Errorf("%w: --include %q matches no file of the model (files: %s)", errdef.ErrInvalidInput, pat, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// MatchInclude reports whether the file path p (relative, forward slashes)
// matches the --include glob pat, in the syntax of
// github.com/bmatcuk/doublestar/v4 (the one of .gitignore and most shells'
// globstar): "*" and "?" match within one path element, "[abc]" and
// "{a,b}" as usual, and "**" as a whole element matches zero or more
// folders, so "**/*.json" matches config.json and a/b/c.json. A pattern
// without "/" also matches the base name of p, so "*.json" matches
// a/config.json, as in .gitignore. An invalid pattern matches nothing.
func MatchInclude(pat, p string) bool {
	if ok, _ := doublestar.Match(pat, p); ok {
		return true
	}
	if !strings.Contains(pat, "/") {
		ok, _ := doublestar.Match(pat, path.Base(p))
		return ok
	}
	return false
}

// PullFiles writes files (from SelectFiles) of the model version into dir.
//
// Every target path is checked before anything is written: a path through
// a symlink or over a folder is refused. Files dir already holds with the
// right size and digest are not downloaded (the digest cache makes that
// check cost a stat per file). The others are downloaded into a temporary
// folder, Concurrency files at a time, a large blob as one stream or, on a
// slow link, as parallel byte ranges (see DownloadBlob), each checked
// against its digest and size before it becomes visible; files larger in
// all than the free space of the filesystem are refused before any byte
// moves. When dir does not exist the temporary folder is made beside it
// and renamed to dir at the end. When it exists the temporary folder is
// made inside it (so a mount point works), and only when every
// file is complete are they renamed into place, files they replace moved
// aside first; a failed rename undoes the others. On error dir is as it
// was and the temporary folder is gone; one left by a killed pull is
// removed by the next. Files with one digest are downloaded once and
// copied (not linked: writing one must not change another). The digests of the files written are recorded in
// the cache.
func PullFiles(ctx context.Context, repo *remote.Repository, files []ModelFile, dir string, opts PullOptions) (PullResult, error) {
	var res PullResult
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return res, err
	}
	dirExists := false
	if fi, err := os.Stat(absDir); err == nil {
		if !fi.IsDir() {
			return res, fmt.Errorf("%w: target %s exists and is not a folder", errdef.ErrInvalidInput, dir)
		}
		dirExists = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("target %s: %w", dir, err)
	}

	// Stage beside dir when it does not exist, so one rename makes it
	// appear whole; stage inside it when it does, so the renames never
	// cross a filesystem (dir may be a mount point, e.g. a Kubernetes
	// volume) and need no write access to dir's parent. Folders left by
	// killed pulls go first, before dir's files are judged.
	parent, base := filepath.Dir(absDir), filepath.Base(absDir)
	stageIn, prefix := parent, "."+base+stagingMark
	if dirExists {
		stageIn, prefix = absDir, stagingMark
	}
	removeStaleStaging(stageIn, prefix)

	var need []int
	for i, f := range files {
		pf := PulledFile{Path: f.Path, Digest: f.Descriptor.Digest.String(), Size: f.Descriptor.Size}
		res.Files = append(res.Files, pf)
		if !dirExists {
			need = append(need, i)
			continue
		}
		cache := opts.Cache
		if opts.VerifyExisting {
			cache = DigestCache{} // hash what is there, trust no cache entry
		}
		have, err := checkTarget(absDir, f, cache)
		if err != nil {
			return PullResult{Files: nil}, err
		}
		if !have {
			need = append(need, i)
		}
	}
	if len(need) == 0 {
		return res, nil
	}
	if !dirExists {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return PullResult{}, fmt.Errorf("creating %s: %w", parent, err)
		}
	}

	staging, err := newStaging(stageIn, prefix)
	if err != nil {
		return PullResult{}, fmt.Errorf("creating a temporary folder in %s: %w", stageIn, err)
	}
	committed := false
	defer func() {
		if !committed {
			staging.remove()
		}
	}()

	t := newTransferClient(repo, opts.TransferOptions)
	prog := progressFrom(ctx, opts.TransferOptions)
	var total int64
	for _, i := range need {
		total += files[i].Descriptor.Size
	}
	// Identical bytes move once: of the files with one digest only the
	// first is downloaded, the others copied from it once it is checked.
	// A copy, not a hard link, since an application that writes one file
	// must not change the other (io.Copy between files uses
	// copy_file_range, which shares extents where the filesystem can).
	fetch, copies := splitByDigest(files, need)
	var fetchBytes int64
	for _, i := range fetch {
		fetchBytes += files[i].Descriptor.Size
	}
	// The sizes come from the manifest: a model too big for the disk (or
	// a manifest claiming absurd sizes) stops here, before a byte moves.
	if free, ok := freeSpace(staging.files); ok && total > free {
		return PullResult{}, fmt.Errorf("the files to pull need %s but %s has %s free: free space, pull elsewhere, or pull fewer files with --include", formatBytes(total), stageIn, formatBytes(free))
	}
	prog.Start(len(fetch), fetchBytes)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.concurrency())
	for _, i := range fetch {
		f := files[i]
		g.Go(func() error {
			dst := filepath.Join(staging.files, filepath.FromSlash(f.Path))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := downloadFile(gctx, t, f.Descriptor, dst, prog.File(f.Path, f.Descriptor.Size)); err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
			return os.Chmod(dst, fileMode(f))
		})
	}
	err = g.Wait()
	if err == nil {
		err = copyStaged(staging.files, files, copies)
	}
	prog.Finish(err)
	if err != nil {
		return PullResult{}, err
	}
	for _, i := range need {
		res.Files[i].Downloaded = true
	}
	res.BytesDownloaded = fetchBytes

	var moved []string
	for _, i := range need {
		moved = append(moved, files[i].Path)
	}
	renamed := false
	if !dirExists {
		if err := os.Chmod(staging.files, 0o755); err != nil {
			return PullResult{}, err
		}
		// Another pull may have created dir meanwhile: then commit into it.
		renamed = os.Rename(staging.files, absDir) == nil
	}
	if !renamed {
		if err := commitInto(absDir, staging.files, staging.old, moved); err != nil {
			return PullResult{}, fmt.Errorf("moving the pulled files into %s: %w (the folder was put back as it was)", dir, err)
		}
	}
	committed = true
	staging.remove()
	// Record what was written, so the next pull into dir, or a push of
	// it, does not hash these files again, and which repository holds the
	// blobs, so a push to a sibling repository can mount them.
	for _, i := range need {
		d := files[i].Descriptor.Digest
		opts.Cache.Store(filepath.Join(absDir, filepath.FromSlash(files[i].Path)), d)
		opts.Cache.recordRepository(repo.Reference.Registry, repo.Reference.Repository, d, files[i].Descriptor.Size)
	}
	return res, nil
}

// splitByDigest splits the files to write (indexes need into files) into
// those to download, the first of each digest, and the others, each with
// the index of the file to copy.
func splitByDigest(files []ModelFile, need []int) (fetch []int, copies map[int]int) {
	first := map[string]int{}
	copies = map[int]int{}
	for _, i := range need {
		d := files[i].Descriptor.Digest.String()
		if j, ok := first[d]; ok {
			copies[i] = j
			continue
		}
		first[d] = i
		fetch = append(fetch, i)
	}
	return fetch, copies
}

// copyStaged writes each file of copies (index -> index of a downloaded
// file with the same digest) in the staging folder as a copy of the other.
func copyStaged(staged string, files []ModelFile, copies map[int]int) error {
	for i, j := range copies {
		src := filepath.Join(staged, filepath.FromSlash(files[j].Path))
		dst := filepath.Join(staged, filepath.FromSlash(files[i].Path))
		if err := copyFile(src, dst, fileMode(files[i])); err != nil {
			return fmt.Errorf("%s: copying %s, which has the same digest: %w", files[i].Path, files[j].Path, err)
		}
	}
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) (err error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Chmod(mode)
}

// stagingMark names the temporary folders of a pull:
// DIR/.modelreg-pull-PID-RANDOM or PARENT/.DIR.modelreg-pull-PID-RANDOM.
const stagingMark = ".modelreg-pull-"

// staging is the temporary folders of one pull: files holds what is
// downloaded, old what the commit replaces. Both are locked (flock) for the
// pull's life, so another pull, in this or another container sharing the
// volume, never takes them for leftovers.
type staging struct {
	files, old string
	unlock     []func()
}

func newStaging(in, prefix string) (*staging, error) {
	st := &staging{}
	for _, p := range []*string{&st.files, &st.old} {
		d, err := os.MkdirTemp(in, fmt.Sprintf("%s%d-", prefix, os.Getpid()))
		if err != nil {
			st.remove()
			return nil, err
		}
		*p = d
		if unlock, ok := lockDir(d); ok {
			st.unlock = append(st.unlock, unlock)
		}
	}
	return st, nil
}

// remove deletes what is left of the folders and releases the locks.
func (st *staging) remove() {
	for _, d := range []string{st.files, st.old} {
		if d != "" {
			os.RemoveAll(d)
		}
	}
	for _, u := range st.unlock {
		u()
	}
	st.unlock = nil
}

// removeStaleStaging removes temporary folders in dir named prefix+…
// whose pull is gone (killed, OOM): nobody holds their lock. They would
// otherwise pile up in a volume that init containers pull into again and
// again.
func removeStaleStaging(dir, prefix string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || !e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if unlock, ok := lockDir(p); ok {
			os.RemoveAll(p)
			unlock()
		}
	}
}

// commitInto moves the files at paths (relative, slash-separated) from
// staged into dir. A file dir already holds is first hard-linked into old
// and then atomically replaced by the rename, so no moment exists where
// the path is missing; if any step fails, every step made is undone in
// reverse, so dir ends as it was, and the error is returned.
func commitInto(dir, staged, old string, paths []string) (err error) {
	var undo []func()
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	mkdirs := func(p string) error {
		var missing []string
		for d := p; ; d = filepath.Dir(d) {
			if _, err := os.Lstat(d); err == nil {
				break
			}
			missing = append(missing, d)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			if err := os.Mkdir(missing[i], 0o755); err != nil {
				return err
			}
			d := missing[i]
			undo = append(undo, func() { os.Remove(d) }) // only if still empty
		}
		return nil
	}
	for _, p := range paths {
		rel := filepath.FromSlash(p)
		dst, src := filepath.Join(dir, rel), filepath.Join(staged, rel)
		if err := mkdirs(filepath.Dir(dst)); err != nil {
			return err
		}
		if _, err := os.Lstat(dst); err == nil {
			aside := filepath.Join(old, rel)
			if err := os.MkdirAll(filepath.Dir(aside), 0o700); err != nil {
				return err
			}
			if err := os.Link(dst, aside); err != nil {
				// No hard links here: move it aside (a short gap).
				if err := os.Rename(dst, aside); err != nil {
					return fmt.Errorf("moving the old %s aside: %w", p, err)
				}
			}
			if err := os.Rename(src, dst); err != nil {
				os.Rename(aside, dst)
				return fmt.Errorf("moving %s: %w", p, err)
			}
			undo = append(undo, func() { os.Rename(aside, dst) })
			continue
		}
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("moving %s: %w", p, err)
		}
		undo = append(undo, func() { os.Rename(dst, src) })
	}
	return nil
}

// checkTarget reports whether dir already holds f. It refuses a path whose
// folders, inside dir, are symlinks or files, and a path that is a folder.
func checkTarget(dir string, f ModelFile, cache DigestCache) (bool, error) {
	elems := strings.Split(f.Path, "/")
	cur := dir
	for i, el := range elems {
		cur = filepath.Join(cur, el)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		last := i == len(elems)-1
		switch {
		case fi.Mode()&fs.ModeSymlink != 0 && !last:
			return false, fmt.Errorf("%w: file path %q goes through the symlink %s; refusing to write outside the target folder", errdef.ErrIntegrity, f.Path, cur)
		case fi.Mode()&fs.ModeSymlink != 0:
			return false, nil // replaced by the rename, never written through
		case !last && !fi.IsDir():
			return false, fmt.Errorf("%w: file path %q needs %s to be a folder, but it is a file", errdef.ErrInvalidInput, f.Path, cur)
		case last && fi.IsDir():
			return false, fmt.Errorf("%w: file path %q is a folder in the target; remove it first", errdef.ErrInvalidInput, f.Path)
		case last:
			if fi.Size() != f.Descriptor.Size {
				return false, nil
			}
			d, err := cache.HashFile(cur)
			if err != nil {
				return false, err
			}
			return d == f.Descriptor.Digest, nil
		}
	}
	return false, nil
}

// fileMode returns the permission bits recorded in the layer's ModelPack
// file metadata, limited to rwx for user, group and others (never setuid),
// and 0644 when none is recorded.
func fileMode(f ModelFile) fs.FileMode {
	var md modelspec.FileMetadata
	if s := f.Descriptor.Annotations[mediatypes.AnnotationFileMetadata]; s != "" && json.Unmarshal([]byte(s), &md) == nil && md.Mode != 0 {
		return fs.FileMode(md.Mode)&0o755 | 0o600
	}
	return 0o644
}
