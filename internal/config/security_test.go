package config

import (
	"strings"
	"testing"
)

func TestFailedLoginLimits(t *testing.T) {
	auth := "auth:\n  enabled: true\n  admin:\n    username: admin\n    password: pw-123456\n  failedLogins:\n"
	c, err := Load(writeFile(t, auth+"    max: 20\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Auth.FailedLogins; f.MaxPerAccount != 200 || f.MaxPerAddress != 200 {
		t.Errorf("wide limits default to 10 × max: %+v", f)
	}
	c, err = Load(writeFile(t, auth+"    max: 5\n    maxPerAccount: 30\n    maxPerAddress: 40\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Auth.FailedLogins; f.Max != 5 || f.MaxPerAccount != 30 || f.MaxPerAddress != 40 {
		t.Errorf("loaded %+v", f)
	}
	for _, bad := range []string{"    max: 10\n    maxPerAccount: 5\n", "    max: 10\n    maxPerAddress: 9\n"} {
		if _, err := Load(writeFile(t, auth+bad), nil); err == nil || !strings.Contains(err.Error(), "maxPerAccount and maxPerAddress") {
			t.Errorf("%q: err = %v, want a limit below max refused", bad, err)
		}
	}
}

func TestMetricsPublic(t *testing.T) {
	c, err := Load("", nil)
	if err != nil || c.Metrics.Public {
		t.Fatalf("default: public=%v err=%v, want private", c.Metrics.Public, err)
	}
	c, err = Load(writeFile(t, "metrics:\n  public: true\n"), []string{})
	if err != nil || !c.Metrics.Public {
		t.Fatalf("metrics.public: true: %+v %v", c.Metrics, err)
	}
	if c, err = Load("", []string{"BERTH_METRICS_PUBLIC=true"}); err != nil || !c.Metrics.Public {
		t.Fatalf("BERTH_METRICS_PUBLIC: %+v %v", c.Metrics, err)
	}
}
