package tagrules

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// tag builds a TagInfo pushed and pulled the given days ago.
func tag(repo, name string, pushedDays, pulledDays int) TagInfo {
	return TagInfo{Repository: repo, Tag: name, Digest: "sha256:" + name,
		Pushed: now.AddDate(0, 0, -pushedDays), Pulled: now.AddDate(0, 0, -pulledDays)}
}

func names(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, strings.TrimPrefix(d.Repository, "p/")+":"+d.Tag)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	tags := []TagInfo{
		tag("p/app", "v1", 30, 30), tag("p/app", "v2", 20, 1), tag("p/app", "v3", 10, 10),
		tag("p/app", "latest", 1, 1), tag("p/app", "dev-1", 40, 40), tag("p/app", "dev-2", 2, 2),
		tag("p/tools/cli", "v1", 100, 100), tag("p/tools/cli", "v2", 50, 50),
	}
	day := Duration(24 * time.Hour)
	for _, c := range []struct {
		name      string
		rules     []Rule
		immutable string // tag name protected in every repository
		del       []string
	}{
		{name: "latest pushed 2 per repository",
			rules: []Rule{{Keep: KeepLatestPushed, Count: 2}},
			del:   []string{"app:dev-1", "app:v1", "app:v2", "app:v3"}},
		{name: "latest pulled 2 (ties by name)",
			rules: []Rule{{Keep: KeepLatestPulled, Count: 2}},
			del:   []string{"app:dev-1", "app:dev-2", "app:v1", "app:v3"}},
		{name: "pushed within 15 days, v* always",
			rules: []Rule{{Keep: KeepPushedWithin, Within: 15 * day}, {Tags: Selector{Match: "v*"}, Keep: KeepAlways}},
			del:   []string{"app:dev-1"}},
		{name: "pulled within 5 days",
			rules: []Rule{{Keep: KeepPulledWithin, Within: 5 * day}},
			del:   []string{"app:dev-1", "app:v1", "app:v3", "tools/cli:v1", "tools/cli:v2"}},
		{name: "only tools/** in scope",
			rules: []Rule{{Repositories: Selector{Match: "tools/**"}, Keep: KeepLatestPushed, Count: 1}},
			del:   []string{"tools/cli:v1"}},
		{name: "the rule ranks only the tags it picks",
			rules: []Rule{{Repositories: Selector{Match: "app"}, Tags: Selector{Exclude: "dev-*"}, Keep: KeepLatestPushed, Count: 1}},
			del:   []string{"app:dev-1", "app:dev-2", "app:v1", "app:v2", "app:v3"}},
		{name: "immutable tags are kept whatever the rules say",
			rules:     []Rule{{Keep: KeepLatestPushed, Count: 1}},
			immutable: "v1",
			del:       []string{"app:dev-1", "app:dev-2", "app:v2", "app:v3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := Policy{Rules: c.rules}
			keep, del, err := p.Evaluate("p", tags, now, func(ti TagInfo) string {
				if ti.Tag == c.immutable {
					return "rule 1"
				}
				return ""
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := names(del); !slices.Equal(got, c.del) {
				t.Errorf("deleted %v, want %v", got, c.del)
			}
			if len(keep)+len(del) > len(tags) {
				t.Errorf("%d kept + %d deleted > %d tags", len(keep), len(del), len(tags))
			}
			for _, d := range append(keep, del...) {
				if d.Reason == "" {
					t.Errorf("%s:%s has no reason", d.Repository, d.Tag)
				}
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want string // substring of the error; "" valid
	}{
		{`{"rules":[{"keep":"latestPushed","count":3}]}`, ""},
		{`{"rules":[{"keep":"pulledWithin","within":"720h"}],"schedule":"24h"}`, ""},
		{`{"rules":[]}`, "at least one rule"},
		{`{"rules":[{"keep":"latestPushed"}]}`, "count >= 1"},
		{`{"rules":[{"keep":"pushedWithin"}]}`, "positive within"},
		{`{"rules":[{"keep":"newest"}]}`, "keep must be one of"},
		{`{"rules":[{"keep":"always","tags":{"match":"v["}}]}`, "unclosed ["},
		{`{"rules":[{"keep":"always"}],"schedule":"1s"}`, "at least 1m"},
	} {
		var p Policy
		if err := json.Unmarshal([]byte(c.doc), &p); err != nil {
			t.Fatalf("%s: %v", c.doc, err)
		}
		err := p.Validate()
		if c.want == "" && err != nil {
			t.Errorf("%s: %v", c.doc, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: error %v, want %q", c.doc, err, c.want)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error("a duration of \"soon\" was accepted")
	}
}

func TestProtecting(t *testing.T) {
	rules := []ImmutableRule{{ID: 1, Tags: "v*", Repositories: "prod/**"}, {ID: 2, Tags: "stable"}}
	for _, c := range []struct {
		path, tag string
		want      int64
	}{
		{"prod/app", "v1", 1}, {"prod/a/b", "v2", 1}, {"dev/app", "v1", 0},
		{"dev/app", "stable", 2}, {"app", "latest", 0},
	} {
		var got int64
		if r := protecting(rules, c.path, c.tag); r != nil {
			got = r.ID
		}
		if got != c.want {
			t.Errorf("%s:%s protected by %d, want %d", c.path, c.tag, got, c.want)
		}
	}
}
