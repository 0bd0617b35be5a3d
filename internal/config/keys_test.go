package config

import (
	"strings"
	"testing"
)

// TestUnknownKeys: a typo names the key path and line, suggests the nearest valid key,
// and every bad key of the file is reported at once.
func TestUnknownKeys(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"top level", "logs:\n  level: debug\n", []string{`line 1: unknown key "logs" (did you mean "log"?)`}},
		{"nested", "log:\n  levle: debug\n", []string{`line 2: unknown key "log.levle" (did you mean "log.level"?)`}},
		{"case", "database:\n  maxopenconns: 3\n", []string{`unknown key "database.maxopenconns" (did you mean "database.maxOpenConns"?)`}},
		{"in a list", "mirror:\n  upstreams:\n    - name: docker.io\n      tagTtl: 1m\n      prefixs: [d]\n",
			[]string{`line 4: unknown key "mirror.upstreams[0].tagTtl" (did you mean "mirror.upstreams[0].tagTTL"?)`, `line 5: unknown key "mirror.upstreams[0].prefixs" (did you mean "mirror.upstreams[0].prefixes"?)`}},
		{"no near key", "frobnicate: 1\n", []string{`line 1: unknown key "frobnicate"`}},
		{"two at once", "adr: x\nstorag: {}\n", []string{`"adr" (did you mean "addr"?)`, `"storag" (did you mean "storage"?)`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(writeFile(t, c.yaml), nil)
			if err == nil {
				t.Fatal("loaded a file with an unknown key")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "config.Config") || strings.Contains(err.Error(), "not found in type") {
				t.Errorf("error names Go types: %q", err)
			}
		})
	}
	// Durations and sizes are scalars with their own syntax, not structs with keys.
	if _, err := Load(writeFile(t, "uploads:\n  ttl: 2h\nlimits:\n  blobSize: 1GiB\n"), nil); err != nil {
		t.Errorf("valid file: %v", err)
	}
}

func TestUnknownEnvSuggestion(t *testing.T) {
	_, err := Load("", []string{"BERTH_LOG_LEVLE=debug"})
	if err == nil || !strings.Contains(err.Error(), "did you mean BERTH_LOG_LEVEL?") {
		t.Fatalf("error = %v", err)
	}
}
