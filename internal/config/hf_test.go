package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHFValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*HF)
		want string // "" valid
	}{
		{"defaults", func(*HF) {}, ""},
		{"disabled is never checked", func(h *HF) { h.Enabled, h.Prefix = false, "bad" }, ""},
		{"prefix without slash", func(h *HF) { h.Prefix = "hf" }, "hf.prefix"},
		{"prefix with trailing slash", func(h *HF) { h.Prefix = "/hf/" }, "hf.prefix"},
		{"prefix not clean", func(h *HF) { h.Prefix = "/a/../hf" }, "hf.prefix"},
		{"prefix on /v2", func(h *HF) { h.Prefix = "/v2/hf" }, "collides"},
		{"prefix on the admin API", func(h *HF) { h.Prefix = "/api" }, "collides"},
		{"uppercase project", func(h *HF) { h.Project = "HF" }, "hf.project"},
		{"upstream with credentials", func(h *HF) { h.Upstream = "https://user:pw@huggingface.co" }, "hf.upstream"},
		{"upstream not http", func(h *HF) { h.Upstream = "ftp://huggingface.co" }, "hf.upstream"},
		{"two token sources", func(h *HF) { h.Token, h.TokenEnv = "hf_x", "HF_TOKEN" }, "one of token"},
		{"small body bound", func(h *HF) { h.MaxAPIBody = 1024 }, "maxAPIBody"},
		{"bad allow pattern", func(h *HF) { h.Allow = []string{"org/["} }, "hf.allow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := defaultHF()
			h.Enabled = true
			tc.mod(&h)
			errs := h.validate()
			got := ""
			for _, e := range errs {
				got += e.Error() + "; "
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("validate = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHFTokenRedactedAndFromEnv(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "berth.yaml")
	if err := os.WriteFile(p, []byte("hf:\n  enabled: true\n  tokenEnv: BERTH_TEST_HF_TOKEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The variable tokenEnv names is not an unknown BERTH_* setting.
	c, err := Load(p, []string{"BERTH_TEST_HF_TOKEN=hf_secret", "BERTH_HF_TIMEOUT=1m"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !c.HF.Enabled || c.HF.Prefix != "/hf" || c.HF.Timeout != Duration(time.Minute) {
		t.Errorf("hf = %+v", c.HF)
	}
	c.HF.Token = "hf_very_secret"
	if strings.Contains(c.Redacted(), "hf_very_secret") {
		t.Errorf("Redacted() shows hf.token")
	}
}
