package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	modelspec "github.com/modelpack/model-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
)

// PullOptions configure PullFiles. The zero value pulls every file.
type PullOptions struct {
	TransferOptions
	// Include keeps only files whose path, or whose base name for a
	// pattern without "/", matches one of these path.Match globs. Empty
	// keeps all.
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
		if _, err := path.Match(pat, ""); err != nil {
			return nil, fmt.Errorf("%w: --include %q: %v", errdef.ErrInvalidInput, pat, err)
		}
	}
	var out []ModelFile
	used := map[string]bool{}
	for _, f := range mv.Files {
		for _, pat := range include {
			if matchFile(pat, f.Path) {
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

func matchFile(pat, p string) bool {
	if ok, _ := path.Match(pat, p); ok {
		return true
	}
	if !strings.Contains(pat, "/") {
		ok, _ := path.Match(pat, path.Base(p))
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
// folder beside dir, Concurrency files at a time, large blobs as parallel
// byte ranges (see DownloadBlob), each checked against its digest and size
// before it becomes visible, and only when all are complete are they
// renamed into place (or the temporary folder becomes dir if dir did not
// exist). On error the temporary folder is removed and dir is as it was.
// The digests of the files written are recorded in the cache.
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

	var need []int
	for i, f := range files {
		pf := PulledFile{Path: f.Path, Digest: f.Descriptor.Digest.String(), Size: f.Descriptor.Size}
		res.Files = append(res.Files, pf)
		if !dirExists {
			need = append(need, i)
			continue
		}
		have, err := checkTarget(absDir, f, opts.Cache)
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

	parent, base := filepath.Dir(absDir), filepath.Base(absDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return PullResult{}, fmt.Errorf("creating %s: %w", parent, err)
	}
	staging, err := os.MkdirTemp(parent, "."+base+".modelreg-pull-*")
	if err != nil {
		return PullResult{}, fmt.Errorf("creating a temporary folder beside %s: %w", dir, err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(staging)
		}
	}()

	t := newTransferClient(repo, opts.TransferOptions)
	prog := progressFrom(ctx, opts.TransferOptions)
	var total int64
	for _, i := range need {
		total += files[i].Descriptor.Size
	}
	prog.Start(len(need), total)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.concurrency())
	for _, i := range need {
		f := files[i]
		g.Go(func() error {
			dst := filepath.Join(staging, filepath.FromSlash(f.Path))
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
	prog.Finish(err)
	if err != nil {
		return PullResult{}, err
	}
	for _, i := range need {
		res.Files[i].Downloaded = true
		res.BytesDownloaded += files[i].Descriptor.Size
	}

	if !dirExists {
		if err := os.Chmod(staging, 0o755); err != nil {
			return PullResult{}, err
		}
		if err := os.Rename(staging, absDir); err != nil {
			return PullResult{}, fmt.Errorf("moving the pulled files into %s: %w", dir, err)
		}
		committed = true
	} else {
		for _, i := range need {
			rel := filepath.FromSlash(files[i].Path)
			dst := filepath.Join(absDir, rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return PullResult{}, err
			}
			if err := os.Rename(filepath.Join(staging, rel), dst); err != nil {
				return PullResult{}, fmt.Errorf("moving %s into %s: %w", files[i].Path, dir, err)
			}
		}
	}
	// Record what was written, so the next pull into dir, or a push of
	// it, does not hash these files again, and which repository holds the
	// blobs, so a push to a sibling repository can mount them.
	for _, i := range need {
		d := files[i].Descriptor.Digest
		opts.Cache.Store(filepath.Join(absDir, filepath.FromSlash(files[i].Path)), d)
		opts.Cache.RecordRepository(repo.Reference.Registry, repo.Reference.Repository, d)
	}
	return res, nil
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
