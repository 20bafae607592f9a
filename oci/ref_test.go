package oci

import (
	"errors"
	"testing"

	"github.com/modelreg/modelreg/errdef"
)

func TestParseReference(t *testing.T) {
	const d = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	for _, tc := range []struct {
		in, name, tag, digest string
	}{
		{"localhost:5000/team/model", "localhost:5000/team/model", "latest", ""},
		{"localhost:5000/team/model:v3", "localhost:5000/team/model", "v3", ""},
		{"registry.example.com/a/b/c:production", "registry.example.com/a/b/c", "production", ""},
		{"localhost:5000/m@" + d, "localhost:5000/m", "", d},
		{"localhost:5000/m:v1@" + d, "localhost:5000/m", "v1", d},
	} {
		r, err := ParseReference(tc.in)
		if err != nil {
			t.Fatalf("ParseReference(%q): %v", tc.in, err)
		}
		if r.Name() != tc.name || r.Tag != tc.tag || r.Digest.String() != tc.digest {
			t.Errorf("ParseReference(%q) = %s %q %q, want %s %q %q", tc.in, r.Name(), r.Tag, r.Digest, tc.name, tc.tag, tc.digest)
		}
	}
	for _, bad := range []string{"", "model", "localhost:5000/UPPER", "localhost:5000/m:bad tag", "localhost:5000/m@sha256:12"} {
		if _, err := ParseReference(bad); !errors.Is(err, errdef.ErrInvalidInput) {
			t.Errorf("ParseReference(%q) err = %v, want ErrInvalidInput", bad, err)
		}
	}
	if _, err := ParseRepository("localhost:5000/m:v1"); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("ParseRepository with a tag: err = %v, want ErrInvalidInput", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:5000": true, "127.1.2.3": true, "[::1]:5000": true,
		"registry.example.com": false, "10.0.0.1:5000": false, "localhost.example.com": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestVersionTags(t *testing.T) {
	for tag, want := range map[string]int{"v1": 1, "v10": 10, "v0": 0, "v01": 0, "v": 0, "V2": 0, "v2a": 0, "latest": 0} {
		n, ok := VersionNumber(tag)
		if ok != (want > 0) || n != want {
			t.Errorf("VersionNumber(%q) = %d, %v; want %d", tag, n, ok, want)
		}
	}
	got := VersionTags([]string{"v10", "latest", "v2", "sha256-abc.sig", "v1"})
	if len(got) != 3 || got[0] != "v1" || got[1] != "v2" || got[2] != "v10" {
		t.Errorf("VersionTags = %v, want [v1 v2 v10]", got)
	}
	aliases := AliasTags([]string{"v1", "production", "sha256-abc.att", "latest", "sha256-" + "ab"})
	if len(aliases) != 2 || aliases[0] != "latest" || aliases[1] != "production" {
		t.Errorf("AliasTags = %v, want [latest production]", aliases)
	}
}

func TestValidatePath(t *testing.T) {
	for _, ok := range []string{"a", "model.safetensors", "sub/dir/file.bin", "a..b", ".hidden"} {
		if err := ValidatePath(ok); err != nil {
			t.Errorf("ValidatePath(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/../../x", "/etc/passwd", "a/./b", "a//b", "a/", `a\b`, "a\x00b", "a/..", ".modelreg-replaced/a", "sub/.modelreg-pull-1-x/a"} {
		if err := ValidatePath(bad); !errors.Is(err, errdef.ErrIntegrity) {
			t.Errorf("ValidatePath(%q) = %v, want ErrIntegrity", bad, err)
		}
	}
}

func TestFormatParamSize(t *testing.T) {
	for n, want := range map[int64]string{512: "512", 1500: "1.5K", 16578: "16.6K", 124_000_000: "124M", 6_738_415_616: "6.7B", 7_000_000_000: "7B", 1_200_000_000_000: "1.2T"} {
		if got := FormatParamSize(n); got != want {
			t.Errorf("FormatParamSize(%d) = %q, want %q", n, got, want)
		}
	}
}
