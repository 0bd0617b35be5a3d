// Package buildinfo says which Berth a binary is: its version (stamped by the release
// build with -ldflags -X, else the module version), the commit (stamped, else the VCS
// revision Go records), the Go version, the platform and the FIPS 140-3 state, for
// `berth version`, `cric version` and user agents.
package buildinfo

import (
	"crypto/fips140"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Stamped by `make release` and the image build:
//
//	-ldflags "-X github.com/berth-registry/berth/internal/buildinfo.version=v1.2.3
//	          -X github.com/berth-registry/berth/internal/buildinfo.commit=<sha>"
//
// The commit is stamped rather than read from Go's VCS stamp because release builds run
// with -buildvcs=false: the VCS stamp records the commit time and a dirty flag of the
// work tree, which would make two builds of one commit differ.
var (
	version string
	commit  string
)

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	// FIPSModule is the Go Cryptographic Module the binary was built with: a frozen,
	// validated one (GOFIPS140=v1.0.0 gives "v1.0.0-c2097c7c") or "latest", the
	// module of the Go source tree.
	FIPSModule string `json:"fipsModule"`
	// FIPSMode: FIPS 140-3 mode is on in this process (GODEBUG=fips140=on or only, the
	// default of a GOFIPS140 build).
	FIPSMode bool `json:"fipsMode"`
}

// Get returns the running binary's Info.
func Get() Info {
	i := Info{Version: version, Commit: commit, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, FIPSModule: "latest", FIPSMode: fips140.Enabled()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.modified" && s.Value == "true" && !strings.HasSuffix(i.Commit, "-dirty") && commit == "":
				i.Commit += "-dirty"
			case s.Key == "GOFIPS140":
				i.FIPSModule = s.Value
			}
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
}

// Version is Get().Version.
func Version() string { return Get().Version }

// String renders Info for a version command, e.g.
//
//	berth v1.2.3
//	  commit:      0123abcd…
//	  go:          go1.26.8 linux/amd64
//	  fips140:     on (module v1.0.0-c2097c7c)
func (i Info) String(program string) string {
	mode := "off"
	if i.FIPSMode {
		mode = "on"
	}
	return fmt.Sprintf("%s %s\n  commit:   %s\n  go:       %s %s\n  fips140:  %s (module %s)\n",
		program, i.Version, i.Commit, i.GoVersion, i.Platform, mode, i.FIPSModule)
}
