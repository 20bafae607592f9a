// Package version holds what the modelreg binary says about itself:
// its release version, the source commit and the Go toolchain.
//
// Version and Commit are set at link time, as goreleaser and ko do:
//
//	go build -ldflags "-X github.com/modelreg/modelreg/internal/version.Version=v0.3.0 \
//	  -X github.com/modelreg/modelreg/internal/version.Commit=$(git rev-parse HEAD)" ./cmd/modelreg
//
// Without them, [Get] falls back to what the Go toolchain stamped into the
// binary (runtime/debug.ReadBuildInfo: the module version of `go install
// …@vX`, and the vcs.revision and vcs.modified settings of a build inside
// a git checkout).
package version

import (
	"runtime"
	"runtime/debug"
)

// Set by -ldflags "-X …". Empty means "not given".
var (
	// Version is the release, e.g. "v0.3.0" or "dev".
	Version string
	// Commit is the full git commit the binary was built from.
	Commit string
)

// Info is the version report of `modelreg version -o json`.
type Info struct {
	// Version is the release; "dev" when neither ldflags nor the module
	// build info name one.
	Version string `json:"version"`
	// Commit is the source commit, with a "-dirty" suffix when the
	// toolchain saw uncommitted changes; "" when unknown.
	Commit string `json:"commit,omitempty"`
	// GoVersion is the toolchain that built the binary (runtime.Version).
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get returns the version of the running binary.
func Get() Info {
	return get(Version, Commit, readBuildInfo)
}

var readBuildInfo = debug.ReadBuildInfo

func get(version, commit string, read func() (*debug.BuildInfo, bool)) Info {
	info := Info{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := read(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if info.Commit == "" {
			var rev, modified string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if rev != "" && modified == "true" {
				rev += "-dirty"
			}
			info.Commit = rev
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}
