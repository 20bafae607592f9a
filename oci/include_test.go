package oci

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelreg/modelreg/errdef"
)

func TestMatchInclude(t *testing.T) {
	for _, tc := range []struct {
		pat, path string
		want      bool
	}{
		// ** matches zero or more folders (huggingface_hub#3314).
		{"**/*.json", "config.json", true},
		{"**/*.json", "a/config.json", true},
		{"**/*.json", "a/b/tokenizer.json", true},
		{"**/*.json", "a/b/model.onnx", false},
		{"a/**/x.bin", "a/x.bin", true},
		{"a/**/x.bin", "a/b/c/x.bin", true},
		{"a/**", "a/b/c", true},
		{"**", "a/b", true},
		// Without "/", the base name matches too, at any depth.
		{"*.json", "config.json", true},
		{"*.json", "a/b/config.json", true},
		{"config.json", "sub/config.json", true},
		{"*.{json,txt}", "a/merges.txt", true},
		{"model-0000[1-2]-of-00003.safetensors", "model-00002-of-00003.safetensors", true},
		// With "/", the pattern is for the whole path and * stays in one
		// folder.
		{"a/*.json", "a/config.json", true},
		{"a/*.json", "a/b/config.json", false},
		{"*/config.json", "config.json", false},
		{"onnx/model.onnx", "x/onnx/model.onnx", false},
		{"?.bin", "ab.bin", false},
	} {
		if got := MatchInclude(tc.pat, tc.path); got != tc.want {
			t.Errorf("MatchInclude(%q, %q) = %v, want %v", tc.pat, tc.path, got, tc.want)
		}
	}
}

func modelVersionOf(paths ...string) *ModelVersion {
	mv := &ModelVersion{}
	for _, p := range paths {
		mv.Files = append(mv.Files, ModelFile{Path: p, Descriptor: ocispec.Descriptor{}})
	}
	return mv
}

func TestSelectFilesGlobstar(t *testing.T) {
	mv := modelVersionOf("config.json", "a/config.json", "a/b/tokenizer.json", "a/b/model.onnx")
	got, err := SelectFiles(mv, []string{"**/*.json"})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range got {
		paths = append(paths, f.Path)
	}
	if want := []string{"config.json", "a/config.json", "a/b/tokenizer.json"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("--include '**/*.json' selects %q, want %q", paths, want)
	}
	if _, err := SelectFiles(mv, []string{"a/[b"}); !errors.Is(err, errdef.ErrInvalidInput) || !strings.Contains(err.Error(), "a/[b") {
		t.Errorf("invalid pattern: %v", err)
	}
	if _, err := SelectFiles(mv, []string{"*.gguf"}); !errors.Is(err, errdef.ErrInvalidInput) {
		t.Errorf("a pattern matching nothing: %v", err)
	}
}

// FuzzIncludeMatch checks MatchInclude never panics, that a path with no
// glob characters selects itself, that the base-name rule holds for
// patterns without "/", and that "**/" in front of a pattern matches the
// same files any number of folders deeper.
func FuzzIncludeMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"**/*.json", "a/b/c.json"}, {"*.json", "config.json"}, {"a/**", "a/b"}, {"[", "x"},
		{"{a,b", "a"}, {`\`, `\`}, {"**/", "a/"}, {"a/**/b/**/c", "a/x/b/c"}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, p string) {
		got := MatchInclude(pat, p)
		if ValidatePath(p) != nil {
			return // pulls refuse such paths before matching
		}
		if !strings.ContainsAny(p, `*?[]{}\`) && !MatchInclude(p, p) {
			t.Errorf("the path %q as a pattern does not match itself", p)
		}
		if !got {
			return
		}
		if !strings.Contains(pat, "/") && !MatchInclude(pat, "dir/"+p) {
			t.Errorf("%q matches %q but not dir/%s: the base-name rule is broken", pat, p, p)
		}
		if !MatchInclude("**/"+pat, "x/y/"+p) || !MatchInclude("**/"+pat, p) {
			t.Errorf("%q matches %q but **/%s does not match it at depth 0 and 2", pat, p, pat)
		}
	})
}
