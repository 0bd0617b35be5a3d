package config

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestFIPSSwitch: fips: true is refused unless Go's FIPS 140-3 mode is on, and accepted
// under GODEBUG=fips140=on (checked in a child process, where the mode can be set).
func TestFIPSSwitch(t *testing.T) {
	if os.Getenv("CONFIG_FIPS_CHILD") != "" {
		if _, err := Load("", []string{"BERTH_FIPS=true"}); err != nil {
			t.Fatalf("fips: true under fips140=on: %v", err)
		}
		if got := FIPSStatus(); !strings.HasPrefix(got, "on (module ") {
			t.Fatalf("FIPSStatus() = %q", got)
		}
		return
	}
	_, err := Load("", []string{"BERTH_FIPS=true"})
	if err == nil || !strings.Contains(err.Error(), "GODEBUG=fips140=on") {
		t.Fatalf("fips: true with FIPS mode off: %v, want a refusal naming GODEBUG=fips140=on", err)
	}
	if got := FIPSStatus(); got != "off" {
		t.Fatalf("FIPSStatus() = %q, want off", got)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSSwitch$", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=on", "CONFIG_FIPS_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestFIPSSwitch") {
		t.Fatalf("child under fips140=on: %v\n%s", err, out)
	}
}
