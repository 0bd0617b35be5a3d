package oci

import (
	"errors"
	"testing"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	tests := []struct {
		header        string
		start, length int64
		partial       bool
		unsatisfiable bool
	}{
		{"", 0, 0, false, false},
		{"bytes=0-99", 0, 100, true, false},
		{"bytes=500-1499", 500, 500, true, false},
		{"bytes=500-", 500, 500, true, false},
		{"bytes=-100", 900, 100, true, false},
		{"bytes=-5000", 0, 1000, true, false},
		{"bytes=999-999", 999, 1, true, false},
		{"bytes=1000-", 0, 0, false, true},
		{"bytes=5000-10000", 0, 0, false, true},
		{"bytes=500-0", 0, 0, false, true},
		{"bytes=-0", 0, 0, false, true},
		{"bytes=0-1,5-6", 0, 0, false, false}, // multiple ranges: whole content
		{"items=0-5", 0, 0, false, false},
		{"bytes=a-b", 0, 0, false, false},
		{"bytes=5", 0, 0, false, false},
	}
	for _, tt := range tests {
		start, length, partial, err := ParseRange(tt.header, size)
		if tt.unsatisfiable != errors.Is(err, ErrRangeUnsatisfiable) {
			t.Errorf("%q: err = %v, want unsatisfiable=%v", tt.header, err, tt.unsatisfiable)
			continue
		}
		if partial != tt.partial || start != tt.start || length != tt.length {
			t.Errorf("%q: got (%d, %d, %v), want (%d, %d, %v)", tt.header, start, length, partial, tt.start, tt.length, tt.partial)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=-5", "bytes=5-", "bytes=9-1", "bytes=0-0,1-1", "bytes=99999999999999999999-"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				size = 0
			}
		}
		start, length, partial, err := ParseRange(header, size)
		if err != nil || !partial {
			return
		}
		if start < 0 || length <= 0 || start+length > size {
			t.Fatalf("ParseRange(%q, %d) = [%d, +%d) outside the content", header, size, start, length)
		}
	})
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in         string
		start, end int64
		ok         bool
	}{
		{"0-99", 0, 99, true},
		{"100-199", 100, 199, true},
		{"bytes 0-99/200", 0, 99, true},
		{"bytes=0-99", 0, 99, true},
		{"bytes 0-99/*", 0, 99, true},
		{"99-0", 0, 0, false},
		{"-1-5", 0, 0, false},
		{"abc", 0, 0, false},
		{"0-", 0, 0, false},
		{"1-99999999999999999999", 0, 0, false},
		{"0-9223372036854775807", 0, 0, false}, // the length would overflow
		{"0-9223372036854775806", 0, 9223372036854775806, true},
	}
	for _, tt := range tests {
		s, e, err := ParseContentRange(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (s != tt.start || e != tt.end)) {
			t.Errorf("ParseContentRange(%q) = %d, %d, %v; want %d, %d ok=%v", tt.in, s, e, err, tt.start, tt.end, tt.ok)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"0-99", "bytes 5-10/11", "10-5", "0-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := ParseContentRange(s)
		if err == nil && (start < 0 || end < start || end-start+1 <= 0) {
			t.Fatalf("ParseContentRange(%q) = %d-%d", s, start, end)
		}
	})
}
