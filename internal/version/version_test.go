package version

import (
	"runtime/debug"
	"testing"
)

func TestGet(t *testing.T) {
	stamped := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "github.com/modelreg/modelreg", Version: "(devel)"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123abcd"},
				{Key: "vcs.modified", Value: "true"},
			},
		}, true
	}
	installed := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"}}, true
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	tests := []struct {
		name            string
		version, commit string
		read            func() (*debug.BuildInfo, bool)
		wantV, wantC    string
	}{
		{"ldflags win", "v1.2.3", "feedface", stamped, "v1.2.3", "feedface"},
		{"vcs stamp", "", "", stamped, "dev", "0123abcd-dirty"},
		{"go install at a version", "", "", installed, "v0.3.0", ""},
		{"nothing known", "", "", none, "dev", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := get(tt.version, tt.commit, tt.read)
			if got.Version != tt.wantV || got.Commit != tt.wantC {
				t.Errorf("get = %+v, want version %q commit %q", got, tt.wantV, tt.wantC)
			}
			if got.GoVersion == "" || got.Platform == "" {
				t.Errorf("get = %+v: Go version and platform must be set", got)
			}
		})
	}
}
