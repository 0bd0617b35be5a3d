package oci

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestParseDigest(t *testing.T) {
	h64 := strings.Repeat("a", 64)
	h128 := strings.Repeat("b", 128)
	tests := []struct {
		in string
		ok bool
	}{
		{"sha256:" + h64, true},
		{"sha512:" + h128, true},
		{"sha256:" + h64[:63], false},
		{"sha256:" + strings.ToUpper(h64), false},
		{"sha256:" + h128, false},
		{"sha512:" + h64, false},
		{"md5:d41d8cd98f00b204e9800998ecf8427e", false},
		{"sha384:" + strings.Repeat("c", 96), false},
		{"sha256", false},
		{"sha256:xyz", false},
		{":" + h64, false},
		{"", false},
		{"sha256:" + h64 + "\n", false},
	}
	for _, tt := range tests {
		_, err := ParseDigest(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseDigest(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func FuzzParseDigest(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("0", 64))
	f.Add("sha512:" + strings.Repeat("f", 128))
	f.Add("sha256:ZZ")
	f.Add("sha256:" + strings.Repeat("0", 64) + "/../x")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		// Anything accepted must be a digest go-digest also accepts, and safe in a path.
		if err := digest.Digest(d).Validate(); err != nil {
			t.Fatalf("ParseDigest accepted %q, go-digest rejects it: %v", s, err)
		}
		if strings.ContainsAny(string(d), "/\\. ") {
			t.Fatalf("accepted digest with path characters: %q", s)
		}
	})
}
