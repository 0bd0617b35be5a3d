package tagrules

import "testing"

func TestCompile(t *testing.T) {
	for _, c := range []struct {
		glob string
		yes  []string
		no   []string
	}{
		{"v*", []string{"v", "v1", "v1.2.3", "v1-rc"}, []string{"", "1.0", "xv1", "v1/x"}},
		{"**", []string{"", "a", "a/b/c"}, nil},
		{"team/*", []string{"team/app", "team/"}, []string{"team/a/b", "team", "other/app"}},
		{"team/**", []string{"team/app", "team/a/b"}, []string{"team", "teams/app"}},
		{"v?.*", []string{"v1.0", "v2.x"}, []string{"v10.0", "v/.0"}},
		{"release-[0-9]*", []string{"release-1", "release-2024"}, []string{"release-x", "release-"}},
		{"[!l]*", []string{"v1", "main"}, []string{"latest"}},
		{"{latest,stable}", []string{"latest", "stable"}, []string{"latest2", "stabl", "{latest,stable}"}},
		{"a.b", []string{"a.b"}, []string{"axb"}}, // dots are literal
		{"sha256-*.sig", []string{"sha256-abc.sig"}, []string{"sha256-abc.att"}},
		{"1,2", []string{"1,2"}, []string{"1"}}, // a comma outside {} is literal
	} {
		p, err := Compile(c.glob)
		if err != nil {
			t.Fatalf("Compile(%q): %v", c.glob, err)
		}
		for _, n := range c.yes {
			if !p.Match(n) {
				t.Errorf("%q should match %q", c.glob, n)
			}
		}
		for _, n := range c.no {
			if p.Match(n) {
				t.Errorf("%q should not match %q", c.glob, n)
			}
		}
	}
}

func TestCompileInvalid(t *testing.T) {
	for _, g := range []string{"", "v[", "[]", "[!]", "{a,b", "a}"} {
		if _, err := Compile(g); err == nil {
			t.Errorf("Compile(%q) accepted an invalid pattern", g)
		}
	}
}
