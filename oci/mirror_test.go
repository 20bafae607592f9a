package oci

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/modelreg/modelreg/errdef"
)

func TestMirrorsOrderAndMapping(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(conf, []byte(`
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "registry.example.com/team"
location = "registry.example.com/team"

[[registry.mirror]]
location = "cache.local:5000/example-team"
pull-from-mirror = "digest-only"

[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"

[[registry]]
location = "other.example.com"

[[registry.mirror]]
location = "cache.local:5000/other"
insecure = true

[[registry]]
prefix = "*.wild.example"
location = "x.wild.example"

[[registry.mirror]]
location = "wildcache.local"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientOptions{Mirror: MirrorOptions{Mirrors: []string{"node.local:5001", "registry.example.com=http://pinned.local/x/"}, RegistriesConf: conf}})
	if err != nil {
		t.Fatal(err)
	}
	names := func(ref string) []string {
		t.Helper()
		r, err := ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		repos, err := c.Mirrors(r)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range repos {
			out = append(out, m.Reference.Registry+"/"+m.Reference.Repository)
		}
		return out
	}
	for _, tc := range []struct {
		ref  string
		want []string
	}{
		// Flag mirrors first, in order; then registries.conf; the
		// tag-only mirror never.
		{"registry.example.com/team/sentiment:production", []string{"node.local:5001/team/sentiment", "pinned.local/x/team/sentiment", "cache.local:5000/example-team/sentiment"}},
		// A prefix matches whole path components only.
		{"registry.example.com/teamwork/m:v1", []string{"node.local:5001/teamwork/m", "pinned.local/x/teamwork/m"}},
		{"other.example.com/a/b:v1", []string{"node.local:5001/a/b", "cache.local:5000/other/a/b"}},
		{"eu.wild.example/m:v1", []string{"node.local:5001/m", "wildcache.local/m"}},
		// A mirror on the origin's own host is no mirror.
		{"node.local:5001/m:v1", nil},
	} {
		if got := names(tc.ref); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Mirrors(%s) = %q, want %q", tc.ref, got, tc.want)
		}
	}
	if !c.mirrors.insecure("cache.local:5000") || c.mirrors.insecure("node.local:5001") {
		t.Errorf("insecure = true is the registries.conf mirror's only")
	}
}

func TestMirrorsBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(bad, []byte("[[registry]]\nprefix = \"a.example\"\n[[registry.mirror]]\nlocation = \"m.example\"\npull-from-mirror = \"sometimes\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notTOML := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(notTOML, []byte("[[registry]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []MirrorOptions{
		{Mirrors: []string{"m.example/repo:tag"}},
		{Mirrors: []string{"=m.example"}},
		{RegistriesConf: bad},
		{RegistriesConf: notTOML},
		{RegistriesConf: filepath.Join(t.TempDir(), "missing.conf")},
	} {
		if _, err := NewClient(ClientOptions{Mirror: opts}); !errors.Is(err, errdef.ErrInvalidInput) {
			t.Errorf("NewClient(%+v) = %v, want ErrInvalidInput", opts, err)
		}
	}
}
