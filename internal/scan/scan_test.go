package scan

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta/metatest"
)

func TestPolicyBlocks(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	fs := []Finding{{ID: "C1", Severity: Critical, Package: "a"}, {ID: "H1", Severity: High, Package: "b", Fixed: "2"},
		{ID: "M1", Severity: Medium, Package: "c"}}
	for _, c := range []struct {
		name string
		p    Policy
		want string
	}{
		{"off blocks nothing", Policy{Mode: ModeOff}, ""},
		{"high and above", Policy{Mode: ModeEnforce, Severity: "HIGH"}, "C1 H1"},
		{"critical only", Policy{Mode: ModeWarn, Severity: "critical"}, "C1"},
		{"allowed for good", Policy{Mode: ModeEnforce, Severity: "LOW", Allow: []Allowance{{ID: "C1", Reason: "r"}}}, "H1 M1"},
		{"allowance expired", Policy{Mode: ModeEnforce, Severity: "HIGH", Allow: []Allowance{{ID: "C1", Reason: "r", Expires: now.Add(-time.Hour)}}}, "C1 H1"},
		{"allowance running", Policy{Mode: ModeEnforce, Severity: "HIGH", Allow: []Allowance{{ID: "H1", Reason: "r", Expires: now.Add(time.Hour)}}}, "C1"},
	} {
		var got []string
		for _, f := range c.p.blocks(fs, now) {
			got = append(got, f.ID)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: blocks %v, want %s", c.name, got, c.want)
		}
	}
	if d := describeBlocked(fs); !strings.Contains(d, "HIGH H1 in b  (fixed in 2)") && !strings.Contains(d, "HIGH H1 in b (fixed in 2)") {
		t.Errorf("describeBlocked = %q", d)
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Policy{Mode: ModeOff}, ""},
		{Policy{Mode: ModeEnforce, Severity: "HIGH"}, ""},
		{Policy{Mode: "block"}, "want off, warn or enforce"},
		{Policy{Mode: ModeEnforce}, "needs a severity"},
		{Policy{Mode: ModeWarn, Severity: "HIGH", Allow: []Allowance{{ID: "X"}}}, "id and a reason"},
		{Policy{Mode: ModeWarn, Severity: "HIGH", Allow: []Allowance{{ID: "X", Reason: "a"}, {ID: "X", Reason: "b"}}}, "allowed twice"},
	} {
		err := c.p.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.p, err, c.want)
		}
	}
}

func TestParseTrivyReport(t *testing.T) {
	out := []byte(`{"SchemaVersion":2,"Results":[{"Target":"/tmp/sbom-1.cdx.json (alpine 3.19.1)","Vulnerabilities":[
		{"VulnerabilityID":"CVE-1","PkgName":"musl","InstalledVersion":"1.2.4-r2","FixedVersion":"1.2.4-r3","Severity":"HIGH",
		 "CVSS":{"nvd":{"V3Score":7.5},"redhat":{"V3Score":8.1}},"Layer":{"DiffID":"sha256:ab"}}]},
		{"Target":"usr/bin/app","Vulnerabilities":[{"VulnerabilityID":"GHSA-1","PkgName":"x","InstalledVersion":"v1","Severity":"weird"}]}]}`)
	fs, err := parseTrivyReport(out)
	if err != nil || len(fs) != 2 {
		t.Fatalf("%v %v", fs, err)
	}
	if f := fs[0]; f.Target != "alpine 3.19.1" || f.CVSS != 8.1 || f.Severity != High || f.Layer != "sha256:ab" || f.Fixed != "1.2.4-r3" {
		t.Errorf("os finding %+v", f)
	}
	if f := fs[1]; f.Target != "usr/bin/app" || f.Severity != Unknown {
		t.Errorf("binary finding %+v", f)
	}
	if _, err := parseTrivyReport([]byte(`{"SchemaVersion":1}`)); err == nil {
		t.Error("schema 1 accepted")
	}
}

func TestStore(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := NewStore(b.Open(t).DB())
			if _, err := s.Report(ctx, "sha256:x"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("missing report: %v", err)
			}
			db := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			r := Report{Digest: "sha256:x", Repository: "p/a", Engine: "trivy", Status: StatusOK, ScannedAt: time.Now(), DBUpdatedAt: db,
				Findings: []Finding{{ID: "M", Severity: Medium, Package: "m", Installed: "1", Target: "t"}, {ID: "C", Severity: Critical, Package: "c", Installed: "1", Fixed: "2", Target: "t"}}}
			if err := s.PutReport(ctx, r, nil); err != nil {
				t.Fatal(err)
			}
			r.Findings = r.Findings[1:] // replaced, not added to
			// A failing hook (the event outbox) rolls the report back with it.
			boom := errors.New("outbox down")
			if err := s.PutReport(ctx, r, func(context.Context, *sql.Tx, Report) error { return boom }); !errors.Is(err, boom) {
				t.Fatalf("PutReport with a failing hook: %v", err)
			}
			if got, _ := s.Report(ctx, "sha256:x"); len(got.Findings) != 2 {
				t.Fatalf("a report whose hook failed was stored: %+v", got)
			}
			var hooked Report
			if err := s.PutReport(ctx, r, func(_ context.Context, _ *sql.Tx, r Report) error { hooked = r; return nil }); err != nil {
				t.Fatal(err)
			}
			if hooked.Summary.Critical != 1 || hooked.Digest != "sha256:x" {
				t.Fatalf("hook saw %+v", hooked)
			}
			got, err := s.Report(ctx, "sha256:x")
			if err != nil || len(got.Findings) != 1 || got.Summary.Critical != 1 || got.Summary.Fixable != 1 || !got.DBUpdatedAt.Equal(db) {
				t.Fatalf("report %+v %v", got, err)
			}
			if err := s.PutSBOM(ctx, "sha256:x", "p/a", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			if newer, err := s.RecordDB(ctx, db); !newer || err != nil {
				t.Fatalf("first database: %v %v", newer, err)
			}
			if newer, _ := s.RecordDB(ctx, db.Add(-time.Hour)); newer {
				t.Fatal("an older database counted as newer")
			}
			if got, _ := s.NewestDB(ctx); !got.Equal(db) {
				t.Fatalf("newest database %v", got)
			}
			var n int
			if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM (`+staleReportsQuery(db.Add(time.Minute))+`) q`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("stale reports %d %v", n, err)
			}
			if err := s.PutPolicy(ctx, "p", Policy{Mode: ModeEnforce, Severity: "HIGH", ScanOnPush: true}); err != nil {
				t.Fatal(err)
			}
			if p, err := s.Policy(ctx, "p"); err != nil || !p.ScanOnPush || p.Severity != "HIGH" {
				t.Fatalf("policy %+v %v", p, err)
			}
		})
	}
}

// TestSBOMKey: the key is made once and then read back, on every backend, and its
// simple-signing signatures verify with its public key.
func TestSBOMKey(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := NewStore(b.Open(t).DB())
			k1, err := s.SBOMKey(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			k2, err := s.SBOMKey(context.Background())
			if err != nil || !k1.Equal(k2) {
				t.Fatalf("second read: %v, same key %v", err, err == nil && k1.Equal(k2))
			}
			payload, sig, err := SimpleSigning(k1, "127.0.0.1:5000/team/app", "sha256:"+strings.Repeat("b", 64))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := base64.StdEncoding.DecodeString(sig)
			sum := sha256.Sum256(payload)
			if !ecdsa.VerifyASN1(&k1.PublicKey, sum[:], raw) || !strings.Contains(string(payload), `"docker-manifest-digest":"sha256:bbbb`) {
				t.Fatalf("signature does not verify, or payload %s", payload)
			}
		})
	}
}
