package config

import (
	"strings"
	"testing"
)

func TestThrottleValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Throttle)
		want string // "" valid
	}{
		{"defaults", func(*Throttle) {}, ""},
		{"everything off", func(t *Throttle) {
			*t = Throttle{MaxClients: 1000, Uploads: UploadThrottle{RetryAfter: Duration(1e9)}}
		}, ""},
		{"CIDRs and addresses", func(t *Throttle) { t.TrustedNetworks = []string{"10.0.0.0/8", "::1", "192.0.2.7"} }, ""},
		{"bad CIDR", func(t *Throttle) { t.TrustedProxies = []string{"10.0.0.0/33"} }, "throttle.trustedProxies"},
		{"negative session bound", func(t *Throttle) { t.Uploads.PerProject = -1 }, "throttle.uploads"},
		{"rate without burst", func(t *Throttle) { t.Write.Burst = 0 }, "throttle.write"},
		{"too few buckets", func(t *Throttle) { t.MaxClients = 10 }, "throttle.maxClients"},
		{"sub-second idle", func(t *Throttle) { t.BodyIdleTimeout = Duration(5e8) }, "throttle.bodyIdleTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := defaultThrottle()
			tc.edit(&th)
			errs := th.validate()
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Fatalf("unexpected errors: %v", errs)
			case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want)):
				t.Fatalf("errors %v, want one naming %s", errs, tc.want)
			}
		})
	}
}

func TestThrottleFromEnv(t *testing.T) {
	c, err := Load("", []string{"BERTH_THROTTLE_UPLOADS_PER_CLIENT=7", "BERTH_THROTTLE_BODY_IDLE_TIMEOUT=5s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Throttle.Uploads.PerClient != 7 || c.Throttle.BodyIdleTimeout != Duration(5e9) || c.Throttle.Read.Rate != 200 {
		t.Fatalf("throttle %+v", c.Throttle)
	}
}
