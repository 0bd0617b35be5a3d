package config

import (
	"strings"
	"testing"
)

func TestStorageS3(t *testing.T) {
	p := writeFile(t, `
storage:
  driver: s3
  s3:
    endpoint: http://127.0.0.1:7070
    region: us-east-1
    bucket: registry
    prefix: team/berth
    forcePathStyle: true
    accessKey: testaccess
    createBucket: true
`)
	c, err := Load(p, []string{"BERTH_STORAGE_S3_SECRET_KEY=s3cr3t-value", "BERTH_STORAGE_S3_PART_SIZE=16MiB", "BERTH_STORAGE_S3_REDIRECT=true"})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Storage.S3
	if c.Storage.Driver != "s3" || s.Endpoint != "http://127.0.0.1:7070" || s.Bucket != "registry" || s.Prefix != "team/berth" ||
		!s.ForcePathStyle || s.AccessKey != "testaccess" || s.SecretKey != "s3cr3t-value" || !s.CreateBucket || !s.Redirect ||
		s.PartSize != 16<<20 || s.Insecure {
		t.Fatalf("loaded: %+v", s)
	}
	out := c.Redacted()
	if strings.Contains(out, "s3cr3t-value") || !strings.Contains(out, "secretKey: REDACTED") || !strings.Contains(out, "accessKey: testaccess") {
		t.Fatalf("secret key not redacted:\n%s", out)
	}

	// Credentials may come from the AWS chain; the part size defaults to 8MiB.
	c, err = Load(writeFile(t, "storage:\n  driver: s3\n  s3:\n    bucket: my-bucket\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.S3.PartSize != 8<<20 || c.Storage.S3.AccessKey != "" {
		t.Fatalf("defaults: %+v", c.Storage.S3)
	}
}

func TestStorageS3Errors(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		env  []string
		want string
	}{
		{"storage:\n  driver: s3\n", nil, "storage.s3.bucket is required"},
		{"storage:\n  driver: nfs\n", nil, "want filesystem or s3"},
		{"storage:\n  driver: s3\n  s3:\n    bucket: Bad_Bucket\n", nil, "storage.s3.bucket"},
		{"storage:\n  driver: s3\n  s3:\n    bucket: b1b\n    endpoint: 127.0.0.1:7070\n", nil, "storage.s3.endpoint"},
		{"storage:\n  driver: s3\n  s3:\n    bucket: b1b\n    endpoint: http://h/x\n", nil, "storage.s3.endpoint"},
		{"storage:\n  driver: s3\n  s3:\n    bucket: b1b\n    accessKey: a\n", nil, "set together"},
		{"storage:\n  driver: s3\n  s3:\n    bucket: b1b\n", []string{"BERTH_STORAGE_S3_SECRET_KEY=x"}, "set together"},
		{"storage:\n  driver: s3\n  s3:\n    bucket: b1b\n    prefix: a/../b\n", nil, "storage.s3.prefix"},
		{"storage:\n  driver: s3\n  s3:\n    bucket: b1b\n    partSize: 1MiB\n", nil, "storage.s3.partSize"},
		{"storage:\n  driver: s3\n  s3:\n    bucket: b1b\n    ca: /ca.pem\n    insecure: true\n", nil, "ca and insecure"},
		{"storage:\n  driver: s3\n  s3:\n    bucket: b1b\n", []string{"BERTH_STORAGE_S3_FORCE_PATH_STYLE=maybe"}, "BERTH_STORAGE_S3_FORCE_PATH_STYLE"},
	} {
		_, err := Load(writeFile(t, tt.yaml), tt.env)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q %v: err = %v, want it to mention %q", tt.yaml, tt.env, err, tt.want)
		}
	}
	// The s3 section is ignored (not validated) with the filesystem driver.
	if _, err := Load(writeFile(t, "storage:\n  s3:\n    partSize: 1MiB\n"), nil); err != nil {
		t.Fatalf("filesystem driver with an unused s3 section: %v", err)
	}
}
