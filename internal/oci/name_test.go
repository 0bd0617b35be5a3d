package oci

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"library/ubuntu", true},
		{"team/app", true},
		{"a.b_c__d-e---f/g", true},
		{"registry.k8s.io/pause", true},
		{"a/b/c/d/e", true},
		{strings.Repeat("a", MaxNameLength), true},
		{strings.Repeat("a", MaxNameLength+1), false},
		{"", false},
		{"Upper", false},
		{"team/App", false},
		{"..", false},
		{"a/../b", false},
		{"a//b", false},
		{"/a", false},
		{"a/", false},
		{"a_", false},
		{"a___b", false},
		{"a.-b", false},
		{".a", false},
		{"-a", false},
		{"a b", false},
		{"a%2e", false},
		{"a\x00b", false},
		{"ü", false},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestValidateTag(t *testing.T) {
	tests := []struct {
		tag string
		ok  bool
	}{
		{"latest", true},
		{"v1.2.3", true},
		{"_x", true},
		{"A-b_c.D", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{"-bad", false},
		{".bad", false},
		{"a:b", false},
		{"a/b", false},
		{"sha256-" + strings.Repeat("a", 64), true},
	}
	for _, tt := range tests {
		err := ValidateTag(tt.tag)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateTag(%q) = %v, want ok=%v", tt.tag, err, tt.ok)
		}
	}
}

func TestProject(t *testing.T) {
	for in, want := range map[string]string{"team/app": "team", "app": "app", "a/b/c": "a"} {
		if got := Project(in); got != want {
			t.Errorf("Project(%q) = %q, want %q", in, got, want)
		}
	}
}

// nameGrammar is the spec's grammar as a slow reference for the fuzzer.
func nameGrammar(s string) bool {
	if s == "" || len(s) > MaxNameLength {
		return false
	}
	for _, comp := range strings.Split(s, "/") {
		if comp == "" {
			return false
		}
		// alnum runs separated by exactly one separator token
		seps := strings.FieldsFunc(comp, func(r rune) bool { return isLowerAlnum(byte(r)) && r < 128 })
		runs := strings.FieldsFunc(comp, func(r rune) bool { return !(r < 128 && isLowerAlnum(byte(r))) })
		if !isLowerAlnum(comp[0]) || !isLowerAlnum(comp[len(comp)-1]) || len(runs) != len(seps)+1 {
			return false
		}
		for _, sep := range seps {
			if sep != "." && sep != "_" && sep != "__" && strings.Trim(sep, "-") != "" {
				return false
			}
		}
	}
	return true
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "library/ubuntu", "a.b_c__d-e/f", "A", "a//b", "a/../b", "a___b", "a-", strings.Repeat("ab/", 90)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ValidateName(s) == nil
		if want := nameGrammar(s); got != want {
			t.Fatalf("ValidateName(%q) ok=%v, grammar says %v", s, got, want)
		}
		if got && (strings.Contains(s, "..") || strings.HasPrefix(s, "/") || strings.ContainsAny(s, "\\%\x00 ")) {
			t.Fatalf("accepted a dangerous name %q", s)
		}
	})
}

func FuzzValidateTag(f *testing.F) {
	for _, s := range []string{"latest", "-x", "a.b", strings.Repeat("x", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateTag(s) != nil {
			return
		}
		if len(s) == 0 || len(s) > MaxTagLength || strings.ContainsAny(s, ":/@ ") || s[0] == '.' || s[0] == '-' {
			t.Fatalf("accepted invalid tag %q", s)
		}
	})
}
