package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	i := Get()
	// A test binary has no module version and no VCS stamp.
	if i.Version != "devel" || i.GoVersion != runtime.Version() || i.Platform != runtime.GOOS+"/"+runtime.GOARCH || i.FIPSModule != "latest" {
		t.Fatalf("Get() = %+v", i)
	}
	version, commit = "v9.8.7", "0123456789abcdef"
	defer func() { version, commit = "", "" }()
	i = Get()
	if i.Version != "v9.8.7" || i.Commit != "0123456789abcdef" {
		t.Fatalf("stamped Get() = %+v", i)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		i    Info
		want string
	}{
		{Info{Version: "v1.2.3", Commit: "abc", GoVersion: "go1.26.8", Platform: "linux/arm64", FIPSModule: "v1.0.0-c2097c7c", FIPSMode: true},
			"berth v1.2.3\n  commit:   abc\n  go:       go1.26.8 linux/arm64\n  fips140:  on (module v1.0.0-c2097c7c)\n"},
		{Info{Version: "devel", Commit: "unknown", GoVersion: "go1.26.8", Platform: "darwin/amd64", FIPSModule: "latest"},
			"berth devel\n  commit:   unknown\n  go:       go1.26.8 darwin/amd64\n  fips140:  off (module latest)\n"},
	} {
		if got := tc.i.String("berth"); got != tc.want {
			t.Errorf("String:\n%s\nwant:\n%s", got, tc.want)
		}
	}
	if !strings.HasPrefix(Get().String("cric"), "cric devel\n") {
		t.Error("program name")
	}
}
