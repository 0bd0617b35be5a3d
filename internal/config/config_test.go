package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "berth.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":5000" || c.Database.Driver != "sqlite" || c.Database.DSN != filepath.Join("data", "berth.db") ||
		c.Storage.Filesystem.Root != filepath.Join("data", "storage") || c.Limits.ManifestSize != 4<<20 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestFileAndEnv(t *testing.T) {
	p := writeFile(t, `
addr: 127.0.0.1:6000
data: /srv/berth
limits:
  manifestSize: 8MiB
  blobSize: 10GiB
uploads:
  ttl: 2h
manifests:
  allowSparse: true
`)
	c, err := Load(p, []string{"BERTH_LOG_LEVEL=debug", "BERTH_DATABASE_SQLITE_SYNCHRONOUS=NORMAL", "BERTH_LIMITS_HEADER_BYTES=128KiB", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:6000" || c.Limits.ManifestSize != 8<<20 || c.Limits.BlobSize != 10<<30 ||
		time.Duration(c.Uploads.TTL) != 2*time.Hour || !c.Manifests.AllowSparse || c.Log.Level != "debug" ||
		c.Database.SQLiteSynchronous != "NORMAL" || c.Limits.HeaderBytes != 128<<10 || c.Database.DSN != "/srv/berth/berth.db" {
		t.Fatalf("loaded: %+v", c)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		file string
		env  []string
		want string
	}{
		{"nosuchkey: 1\n", nil, "nosuchkey"},
		{"log:\n  level: loud\n", nil, "log.level"},
		{"", []string{"BERTH_NO_SUCH=1"}, "unknown environment variable BERTH_NO_SUCH"},
		{"", []string{"BERTH_LIMITS_MANIFEST_SIZE=huge"}, "byte size"},
		{"", []string{"BERTH_UPLOADS_TTL=forever"}, "BERTH_UPLOADS_TTL"},
		{"database:\n  driver: postgres\n", nil, "database.dsn is required"},
		{"tls:\n  cert: a.pem\n", nil, "tls.cert and tls.key"},
		{"addr: nope\n", nil, "addr"},
	}
	for _, tt := range tests {
		_, err := Load(writeFile(t, tt.file), tt.env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("file %q env %v: err = %v, want it to mention %q", tt.file, tt.env, err, tt.want)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.Database.Driver = "postgres"
	c.Database.DSN = "postgres://berth:s3cret@db:5432/berth"
	out := c.Redacted()
	if strings.Contains(out, "s3cret") || !strings.Contains(out, "REDACTED") {
		t.Fatalf("secret not redacted:\n%s", out)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "4MiB": 4 << 20, "1GB": 1e9, "512 KiB": 512 << 10, "7B": 7} {
		var b ByteSize
		if err := b.parse(in); err != nil || int64(b) != want {
			t.Errorf("%q: %d %v, want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "99999999999999GiB"} {
		var b ByteSize
		if err := b.parse(in); err == nil {
			t.Errorf("%q accepted as %d", in, b)
		}
	}
}

func TestSecretEnvAndToolEnvAreNotConfig(t *testing.T) {
	p := writeFile(t, "auth:\n  enabled: true\n  admin:\n    username: admin\n    passwordEnv: BERTH_FIRST_ADMIN_PASSWORD\n")
	if _, err := Load(p, []string{"BERTH_FIRST_ADMIN_PASSWORD=x", "BERTH_URL=http://x", "BERTH_PG_DIR=/tmp/x"}); err != nil {
		t.Fatalf("secret source and tool variables rejected: %v", err)
	}
	if _, err := Load(p, []string{"BERTH_DATABSE_DSN=x"}); err == nil {
		t.Fatal("a misspelled variable was accepted")
	}
}

// The test and CI tooling exports BERTH_ variables of its own (.ci/run sets
// BERTH_ARTIFACTS); a berth started under that environment must not refuse them.
func TestToolingEnvIgnored(t *testing.T) {
	keys := []string{"BERTH_ARTIFACTS", "BERTH_TOOLS", "BERTH_TEST_POSTGRES_DSN"}
	for k := range ignoredEnv {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if _, err := Load(writeFile(t, ""), []string{k + "=x"}); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}
