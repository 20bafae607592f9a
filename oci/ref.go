// Package oci holds everything of modelreg that talks to an OCI registry:
// references, the registry client (auth, TLS, retries), packing a model
// folder into a ModelPack manifest, the transfer engine (blob upload and
// download) and version tags.
package oci

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"

	"github.com/modelreg/modelreg/errdef"
)

// DefaultTag is the tag a reference without tag or digest means, as with
// docker and oras.
const DefaultTag = "latest"

// Reference is a parsed HOST[:PORT]/REPO[:TAG|@DIGEST] reference.
type Reference struct {
	// Registry is HOST[:PORT].
	Registry string
	// Repository is the path within the registry, e.g. "team/sentiment".
	Repository string
	// Tag is the tag, "" when the reference names a digest only.
	Tag string
	// Digest is the manifest digest, "" when the reference names a tag.
	Digest digest.Digest
}

// ParseReference parses HOST[:PORT]/REPO[:TAG|@DIGEST] (distribution-spec
// names, as oras-go's registry.ParseReference). A bare repository means
// [DefaultTag]. REPO:TAG@DIGEST keeps both and the digest wins. Errors wrap
// errdef.ErrInvalidInput.
func ParseReference(s string) (Reference, error) {
	tag := ""
	rest := s
	if i := strings.Index(s, "@"); i >= 0 {
		// oras-go drops the tag of REPO:TAG@DIGEST; keep it for messages.
		head := s[:i]
		if j := strings.LastIndex(head, ":"); j > strings.LastIndex(head, "/") {
			tag = head[j+1:]
			rest = head[:j] + s[i:]
		}
	}
	if err := lowercaseRepository(s); err != nil {
		return Reference{}, err
	}
	r, err := registry.ParseReference(rest)
	if err != nil {
		return Reference{}, fmt.Errorf("%w: reference %q: want HOST[:PORT]/REPO[:TAG|@DIGEST], e.g. localhost:5000/team/model:v1: %v", errdef.ErrInvalidInput, s, err)
	}
	ref := Reference{Registry: r.Registry, Repository: r.Repository, Tag: tag}
	if d, err := r.Digest(); err == nil {
		ref.Digest = d
	} else if r.Reference != "" {
		ref.Tag = r.Reference
	}
	// oras-go checks neither the tag it drops nor that "@" is followed by
	// a digest ("a/b: @" parsed as tag " "; found by FuzzParseReference).
	if strings.Contains(s, "@") && ref.Digest == "" {
		return Reference{}, fmt.Errorf("%w: reference %q: no digest after \"@\"; want HOST[:PORT]/REPO@sha256:HEX", errdef.ErrInvalidInput, s)
	}
	if tag != "" {
		if err := (registry.Reference{Reference: tag}).ValidateReferenceAsTag(); err != nil {
			return Reference{}, fmt.Errorf("%w: reference %q: tag %q: a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", errdef.ErrInvalidInput, s, tag)
		}
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = DefaultTag
	}
	return ref, nil
}

// ParseRepository parses HOST[:PORT]/REPO, refusing a tag or digest.
func ParseRepository(s string) (Reference, error) {
	if err := lowercaseRepository(s); err != nil {
		return Reference{}, err
	}
	r, err := registry.ParseReference(s)
	if err != nil || r.Reference != "" {
		return Reference{}, fmt.Errorf("%w: repository %q: want HOST[:PORT]/REPO without tag or digest, e.g. localhost:5000/team/model", errdef.ErrInvalidInput, s)
	}
	return Reference{Registry: r.Registry, Repository: r.Repository}, nil
}

// lowercaseRepository refuses a repository with uppercase letters, naming
// the rule: the distribution-spec name grammar ("Pulling manifests":
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*)
// has no uppercase, and oras-go only says "invalid repository". The host
// (before the first "/") may have any case, as DNS does; the tag may too.
func lowercaseRepository(s string) error {
	_, path, ok := strings.Cut(s, "/")
	if !ok {
		return nil
	}
	repo := path
	if i := strings.IndexAny(repo, ":@"); i >= 0 {
		repo = repo[:i]
	}
	if repo == strings.ToLower(repo) {
		return nil
	}
	host, _, _ := strings.Cut(s, "/")
	return fmt.Errorf("%w: repository %q in %q: repository names must be lowercase (OCI distribution-spec name grammar); use %s/%s",
		errdef.ErrInvalidInput, repo, s, host, strings.ToLower(repo))
}

// Name returns HOST[:PORT]/REPO.
func (r Reference) Name() string { return r.Registry + "/" + r.Repository }

// Ref returns the digest if set, else the tag: what to resolve.
func (r Reference) Ref() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}

// WithDigest returns HOST/REPO@DIGEST for d.
func (r Reference) WithDigest(d digest.Digest) Reference {
	return Reference{Registry: r.Registry, Repository: r.Repository, Digest: d}
}

// WithTag returns HOST/REPO:TAG.
func (r Reference) WithTag(tag string) Reference {
	return Reference{Registry: r.Registry, Repository: r.Repository, Tag: tag}
}

// String formats the reference as HOST/REPO:TAG, HOST/REPO@DIGEST, or
// HOST/REPO:TAG@DIGEST.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// IsLoopback reports whether the registry host is localhost or a loopback
// address; such registries are spoken to over plain HTTP, as docker, oras and
// cosign do.
func IsLoopback(registryHost string) bool {
	host := registryHost
	if h, _, err := net.SplitHostPort(registryHost); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

var versionTag = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^v([1-9][0-9]{0,8})$`) })

// VersionNumber returns N for a version tag "vN" (N ≥ 1, no leading zero),
// and false for any other tag (an alias).
func VersionNumber(tag string) (int, bool) {
	m := versionTag().FindStringSubmatch(tag)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// VersionTag returns "vN".
func VersionTag(n int) string { return "v" + strconv.Itoa(n) }

// IsVersionTag reports whether tag has the form vN.
func IsVersionTag(tag string) bool { _, ok := VersionNumber(tag); return ok }

var aliasName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`) })

// ValidateAlias checks that name is a valid OCI tag that is not a version
// tag (vN) and not a cosign or referrers-schema tag (sha256-...). Errors
// wrap errdef.ErrInvalidInput.
func ValidateAlias(name string) error {
	switch {
	case !aliasName().MatchString(name):
		return fmt.Errorf("%w: alias %q: must be a tag: letters, digits, '.', '_', '-', at most 128, not starting with '.' or '-'", errdef.ErrInvalidInput, name)
	case IsVersionTag(name):
		return fmt.Errorf("%w: alias %q looks like a version tag (vN); version tags are allocated by push and never move", errdef.ErrInvalidInput, name)
	case strings.HasPrefix(name, "sha256-") || strings.HasPrefix(name, "sha512-"):
		return fmt.Errorf("%w: alias %q: tags starting with sha256- are reserved for signatures and referrers", errdef.ErrInvalidInput, name)
	}
	return nil
}
