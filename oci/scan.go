package oci

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"

	"github.com/modelreg/modelreg/errdef"
	"github.com/modelreg/modelreg/mediatypes"
)

// IgnoreFile is the name of the ignore file a model folder may hold, in
// gitignore syntax (https://git-scm.com/docs/gitignore): one in the folder
// itself or in any of its subfolders, each applying below itself, the
// deeper one winning, as git reads .gitignore files.
const IgnoreFile = ".modelregignore"

// ScanOptions relax the safety rules of ScanModelDir. The zero value is
// the safe default: links that leave the folder and files that look like
// credentials are refused.
type ScanOptions struct {
	// FollowExternalLinks stores the files that symbolic links leaving the
	// model folder point at. If false, each such link is refused.
	FollowExternalLinks bool
	// AllowCredentials pushes files that look like credentials (see
	// ScanModelDir). If false, each is refused unless an ignore file
	// leaves it out.
	AllowCredentials bool
}

// SkippedPath is a file or folder of a model folder that a push leaves out
// on purpose.
type SkippedPath struct {
	// Path is relative to the model folder, with forward slashes; a
	// folder's ends with "/".
	Path string `json:"path"`
	// Reason says which rule left it out: "git" (.git), "huggingface-cache"
	// (.cache/huggingface), "ignore-file" (a .modelregignore pattern) or
	// "pull-staging" (a folder left by a killed pull).
	Reason string `json:"reason"`
}

// Reasons of a SkippedPath.
const (
	SkipGit          = "git"
	SkipHFCache      = "huggingface-cache"
	SkipIgnoreFile   = "ignore-file"
	SkipPullStaging  = "pull-staging"
	credentialsFlag  = "--allow-credentials"
	externalLinkFlag = "--follow-external-links"
)

// Scan is what ScanModelDir found.
type Scan struct {
	// Files are the files to push, sorted by Path.
	Files []File
	// Skipped are the paths left out, sorted by Path; a skipped folder is
	// one entry, not one per file in it.
	Skipped []SkippedPath
}

// ScanModelDir lists the files of the model folder dir that a push takes,
// and what it leaves out, following these rules:
//
//   - Every regular file is taken, names starting with "." included,
//     except folders named .git (and .git files of worktrees), the
//     .cache/huggingface folder that huggingface_hub writes into a local
//     folder, and what the .modelregignore files exclude (IgnoreFile).
//   - A symbolic link to a file is followed and the file stored under the
//     link's name, as a regular file, when the link resolves inside dir
//     (through any chain of links). One that resolves outside is refused
//     unless opts.FollowExternalLinks, except in a Hugging Face cache: when
//     dir is (or is inside) models--ORG--NAME/snapshots/REV, links into that
//     model's cache folder (../../blobs/SHA) count as inside.
//   - A link to a folder, a link loop, a dangling link and special files
//     (sockets, pipes, devices) are refused: a folder link could repeat or
//     leave the tree, so its files are not guessed at.
//   - Files that look like credentials are refused unless
//     opts.AllowCredentials or an ignore file leaves them out: .env and
//     .env.* (but .env.example, .env.sample, .env.template), .netrc and
//     _netrc, .git-credentials, .pypirc, cosign.key, a PEM private key in
//     the first 64 KiB of any file, and a config.json holding a docker
//     "auths" object.
//
// Every problem found is named in one error wrapping
// errdef.ErrInvalidInput, with the flag or ignore line that would resolve
// it; nothing is read beyond the first 64 KiB of a file. The folder being
// missing, not a folder or holding no file to push are errors as well.
func ScanModelDir(dir string, opts ScanOptions) (Scan, error) {
	var res Scan
	info, err := os.Stat(dir)
	if err != nil {
		return res, fmt.Errorf("%w: model folder %s: %v", errdef.ErrInvalidInput, dir, err)
	}
	if !info.IsDir() {
		return res, fmt.Errorf("%w: model folder %s is not a folder; give the folder that holds the model files", errdef.ErrInvalidInput, dir)
	}
	roots, err := linkRoots(dir)
	if err != nil {
		return res, fmt.Errorf("%w: model folder %s: %v", errdef.ErrInvalidInput, dir, err)
	}
	var (
		patterns   []gitignore.Pattern
		links      []string // refused links, each with why
		creds      []string // files that look like credentials, each with why
		otherProbs []string
	)
	// A walk does not enter a root that is a link (e.g. "current" ->
	// snapshots/REV): walk what it points at.
	walkRoot := roots[0]
	err = filepath.WalkDir(walkRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(walkRoot, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			ps, err := readIgnoreFile(p, nil)
			patterns = append(patterns, ps...)
			return err
		}
		parts := strings.Split(rel, "/")
		isDir := d.IsDir()
		skip := func(reason string) error {
			if isDir {
				res.Skipped = append(res.Skipped, SkippedPath{Path: rel + "/", Reason: reason})
				return filepath.SkipDir
			}
			res.Skipped = append(res.Skipped, SkippedPath{Path: rel, Reason: reason})
			return nil
		}
		switch {
		case d.Name() == ".git":
			return skip(SkipGit)
		case isDir && d.Name() == "huggingface" && len(parts) >= 2 && parts[len(parts)-2] == ".cache":
			return skip(SkipHFCache)
		case strings.Contains(d.Name(), stagingMark):
			return skip(SkipPullStaging)
		case len(patterns) > 0 && gitignore.NewMatcher(patterns).Match(parts, isDir || isDirLink(p, d)):
			return skip(SkipIgnoreFile)
		}
		if isDir {
			ps, err := readIgnoreFile(p, parts)
			patterns = append(patterns, ps...)
			return err
		}
		if err := ValidatePath(rel); err != nil {
			// Refuse at push what every pull would refuse (e.g. a backslash).
			otherProbs = append(otherProbs, fmt.Sprintf("%s: rename the file: %v", rel, err))
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if why := checkLink(p, roots, opts.FollowExternalLinks); why != "" {
				links = append(links, rel+" "+why)
				return nil
			}
		}
		fi, err := os.Stat(p) // follows symlinks
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		if !fi.Mode().IsRegular() {
			otherProbs = append(otherProbs, fmt.Sprintf("%s is a %s, not a regular file; remove it or add it to %s", rel, describeMode(fi.Mode()), IgnoreFile))
			return nil
		}
		if !opts.AllowCredentials {
			names := []string{d.Name()}
			if d.Type()&fs.ModeSymlink != 0 {
				if target, err := filepath.EvalSymlinks(p); err == nil {
					names = append(names, filepath.Base(target))
				}
			}
			why, err := credentialKind(p, names)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			if why != "" {
				creds = append(creds, rel+" ("+why+")")
				return nil
			}
		}
		res.Files = append(res.Files, File{
			// Abs keeps dir as given, so digest cache entries written by a
			// pull into dir are found.
			Path: rel, Abs: filepath.Join(dir, filepath.FromSlash(rel)), Size: fi.Size(), Mode: fi.Mode().Perm(),
			Role: mediatypes.RoleOf(rel),
		})
		return nil
	})
	if err != nil {
		return Scan{}, fmt.Errorf("%w: model folder %s: %v", errdef.ErrInvalidInput, dir, err)
	}
	var probs []string
	if len(links) > 0 {
		probs = append(probs, fmt.Sprintf("%d link(s) refused: %s; copy the files into the folder, add the links to %s, or pass %s to push the files links outside point at",
			len(links), strings.Join(links, "; "), IgnoreFile, externalLinkFlag))
	}
	if len(creds) > 0 {
		probs = append(probs, fmt.Sprintf("%d file(s) look like credentials: %s; add them to %s to leave them out, or pass %s to push them",
			len(creds), strings.Join(creds, ", "), IgnoreFile, credentialsFlag))
	}
	probs = append(probs, otherProbs...)
	if len(probs) > 0 {
		return Scan{}, fmt.Errorf("%w: model folder %s: nothing was pushed: %s", errdef.ErrInvalidInput, dir, strings.Join(probs, "; "))
	}
	if len(res.Files) == 0 {
		return Scan{}, fmt.Errorf("%w: model folder %s holds no files to push (%d path(s) skipped: .git, .cache/huggingface and %s patterns)", errdef.ErrInvalidInput, dir, len(res.Skipped), IgnoreFile)
	}
	sort.Slice(res.Files, func(i, j int) bool { return res.Files[i].Path < res.Files[j].Path })
	sort.Slice(res.Skipped, func(i, j int) bool { return res.Skipped[i].Path < res.Skipped[j].Path })
	return res, nil
}

// readIgnoreFile reads the patterns of dir's IgnoreFile, if any; domain is
// dir's path below the model folder, to which its patterns are relative.
func readIgnoreFile(dir string, domain []string) ([]gitignore.Pattern, error) {
	f, err := os.Open(filepath.Join(dir, IgnoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, IgnoreFile), err)
	}
	return ps, nil
}

// isDirLink reports whether the entry is a symbolic link to a folder, so
// a "name/" ignore pattern leaves it out as git would a folder.
func isDirLink(p string, d fs.DirEntry) bool {
	if d.Type()&fs.ModeSymlink == 0 {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// linkRoots returns the real paths inside which links of dir may point:
// dir itself and, in a Hugging Face cache, the model's cache folder.
func linkRoots(dir string) ([]string, error) {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	resolved, err = filepath.Abs(resolved)
	if err != nil {
		return nil, err
	}
	roots := []string{resolved}
	if cache := hfCacheRoot(resolved); cache != "" {
		roots = append(roots, cache)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		if cache := hfCacheRoot(abs); cache != "" {
			if r, err := filepath.EvalSymlinks(cache); err == nil {
				roots = append(roots, r)
			}
		}
	}
	return roots, nil
}

// hfCacheRoot returns the model's cache folder when p is, or is inside,
// a snapshot of the Hugging Face hub cache
// (https://huggingface.co/docs/huggingface_hub/guides/manage-cache):
// .../models--ORG--NAME/snapshots/REV[/...]. Else "".
func hfCacheRoot(p string) string {
	for q := p; ; {
		parent := filepath.Dir(q)
		if parent == q {
			return ""
		}
		if filepath.Base(parent) == "snapshots" {
			repo := filepath.Dir(parent)
			b := filepath.Base(repo)
			for _, kind := range []string{"models--", "datasets--", "spaces--"} {
				if strings.HasPrefix(b, kind) && len(b) > len(kind) {
					return repo
				}
			}
		}
		q = parent
	}
}

// checkLink says why the link at p is refused, or "" when it may be
// followed: it resolves to a file inside one of roots, or anywhere when
// external links are allowed.
func checkLink(p string, roots []string, external bool) string {
	target, err := filepath.EvalSymlinks(p)
	switch {
	case err != nil && isLoop(err):
		return "is a link loop"
	case errors.Is(err, fs.ErrNotExist):
		dest, _ := os.Readlink(p)
		return fmt.Sprintf("-> %s points at nothing", dest)
	case err != nil:
		return fmt.Sprintf("cannot be resolved: %v", err)
	}
	fi, err := os.Stat(target)
	if err == nil && fi.IsDir() {
		return fmt.Sprintf("-> %s is a link to a folder (links to folders are not followed)", target)
	}
	if abs, err := filepath.Abs(target); err == nil {
		target = abs
	}
	for _, r := range roots {
		if within(r, target) {
			return ""
		}
	}
	if external {
		return ""
	}
	return fmt.Sprintf("-> %s leaves the model folder", target)
}

// within reports whether path p is root or below it.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func isLoop(err error) bool {
	// EvalSymlinks reports a loop as "too many links" (its own limit of
	// 255 hops), os.Stat as ELOOP.
	return errors.Is(err, syscall.ELOOP) || strings.Contains(err.Error(), "too many links")
}

// credentialSniff is how much of each file is read to look for a PEM
// private key: keys sit at the start of the files that hold them.
const credentialSniff = 64 << 10

var pemPrivateKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`) })

// credentialKind says what kind of credential the file at p looks like,
// or "": by its names (a link's and its target's) and its first bytes.
func credentialKind(p string, names []string) (string, error) {
	for _, name := range names {
		if why := credentialName(strings.ToLower(name)); why != "" {
			return why, nil
		}
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head, err := io.ReadAll(io.LimitReader(f, credentialSniff))
	if err != nil {
		return "", err
	}
	if pemPrivateKey().Match(head) {
		return "PEM private key", nil
	}
	if slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, "config.json") }) && bytes.Contains(head, []byte(`"auths"`)) {
		var cfg struct {
			Auths map[string]json.RawMessage `json:"auths"`
		}
		if json.Unmarshal(head, &cfg) == nil && len(cfg.Auths) > 0 {
			return "docker config with auths", nil
		}
	}
	return "", nil
}

// credentialName says what credential a file named lower (in lower case)
// holds by the conventions of the tools that write it, or "".
func credentialName(lower string) string {
	switch {
	case lower == ".env":
		return "dotenv file"
	case strings.HasPrefix(lower, ".env."):
		switch strings.TrimPrefix(lower, ".env.") {
		case "example", "sample", "template", "dist":
		default:
			return "dotenv file"
		}
	case lower == ".netrc" || lower == "_netrc":
		return "netrc file"
	case lower == ".git-credentials":
		return "git credentials"
	case lower == ".pypirc":
		return "PyPI credentials"
	case lower == "cosign.key":
		return "cosign private key"
	}
	return ""
}
