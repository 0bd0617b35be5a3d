package tagrules

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// What a retention rule keeps.
const (
	KeepLatestPushed = "latestPushed" // the Count most recently pushed tags per repository
	KeepLatestPulled = "latestPulled" // the Count most recently pulled tags per repository
	KeepPushedWithin = "pushedWithin" // tags pushed within Within
	KeepPulledWithin = "pulledWithin" // tags pulled within Within
	KeepAlways       = "always"       // every tag the selectors pick
)

// Duration is a time.Duration written as "720h" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"720h\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Rule keeps some of the tags its selectors pick. Repositories selects by the repository
// path after the project ("team/app" in "proj/team/app"), Tags by tag name.
type Rule struct {
	Repositories Selector `json:"repositories"`
	Tags         Selector `json:"tags"`
	Keep         string   `json:"keep"`
	Count        int      `json:"count,omitempty"`
	Within       Duration `json:"within,omitempty"`
}

// Policy is a project's retention policy. A tag is in scope when its repository is
// selected by at least one rule; a tag in scope is kept when an immutable rule protects
// it or when at least one rule selecting its repository and its name keeps it; every
// other tag in scope is deleted. Tags in repositories no rule selects are never touched.
type Policy struct {
	Rules []Rule `json:"rules"`
	// Schedule is how often the policy runs as a job (0: only when run by hand).
	Schedule Duration `json:"schedule,omitempty"`
}

// Validate checks the policy and compiles its patterns.
func (p Policy) Validate() error {
	_, err := p.compile()
	return err
}

type compiledRule struct {
	Rule
	index      int
	repos, tag selector
}

func (p Policy) compile() ([]compiledRule, error) {
	if len(p.Rules) == 0 {
		return nil, errors.New("a retention policy needs at least one rule")
	}
	if p.Schedule != 0 && time.Duration(p.Schedule) < time.Minute {
		return nil, errors.New("schedule must be at least 1m (or 0: run by hand only)")
	}
	out := make([]compiledRule, len(p.Rules))
	for i, r := range p.Rules {
		c := compiledRule{Rule: r, index: i + 1}
		var err error
		if c.repos, err = r.Repositories.compile(); err != nil {
			return nil, fmt.Errorf("rule %d: repositories: %w", i+1, err)
		}
		if c.tag, err = r.Tags.compile(); err != nil {
			return nil, fmt.Errorf("rule %d: tags: %w", i+1, err)
		}
		switch r.Keep {
		case KeepLatestPushed, KeepLatestPulled:
			if r.Count < 1 {
				return nil, fmt.Errorf("rule %d: keep %s needs count >= 1", i+1, r.Keep)
			}
		case KeepPushedWithin, KeepPulledWithin:
			if r.Within <= 0 {
				return nil, fmt.Errorf("rule %d: keep %s needs a positive within", i+1, r.Keep)
			}
		case KeepAlways:
		default:
			return nil, fmt.Errorf("rule %d: keep must be one of %s, %s, %s, %s, %s (got %q)", i+1,
				KeepLatestPushed, KeepLatestPulled, KeepPushedWithin, KeepPulledWithin, KeepAlways, r.Keep)
		}
		out[i] = c
	}
	return out, nil
}

// describe names the rule in reasons and the audit trail.
func (c compiledRule) describe() string {
	what := c.Keep
	switch c.Keep {
	case KeepLatestPushed, KeepLatestPulled:
		what = fmt.Sprintf("%s %d", c.Keep, c.Count)
	case KeepPushedWithin, KeepPulledWithin:
		what = fmt.Sprintf("%s %s", c.Keep, time.Duration(c.Within))
	}
	return fmt.Sprintf("rule %d (%s; repositories %s; tags %s)", c.index, what, c.Repositories, c.Tags)
}

// TagInfo is one tag as retention sees it. Pushed is when the tag was last pushed or
// moved; Pulled when its manifest was last pulled (its push when never pulled).
type TagInfo struct {
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	Digest     string    `json:"digest"`
	Pushed     time.Time `json:"pushed"`
	Pulled     time.Time `json:"pulled"`
}

// Decision is what retention decided for a tag in scope, and why.
type Decision struct {
	TagInfo
	Reason string `json:"reason"`
}

// Evaluate decides, for the tags of one project, which the policy keeps and which it
// deletes (tags out of scope appear in neither). immutable names the rule protecting a
// tag ("" when none). Both lists are sorted by repository and tag.
func (p Policy) Evaluate(project string, tags []TagInfo, now time.Time, immutable func(TagInfo) string) (keep, del []Decision, err error) {
	rules, err := p.compile()
	if err != nil {
		return nil, nil, err
	}
	path := func(t TagInfo) string { return strings.TrimPrefix(t.Repository, project+"/") }
	kept := map[int]string{} // index in tags → reason
	for _, r := range rules {
		// Rank per repository among the tags this rule picks.
		byRepo := map[string][]int{}
		for i, t := range tags {
			if r.repos.picks(path(t)) && r.tag.picks(t.Tag) {
				byRepo[t.Repository] = append(byRepo[t.Repository], i)
			}
		}
		for _, idx := range byRepo {
			for rank, i := range r.order(tags, idx) {
				if _, done := kept[i]; !done && r.keeps(tags[i], rank, now) {
					kept[i] = "kept by " + r.describe()
				}
			}
		}
	}
	for i, t := range tags {
		if !slices.ContainsFunc(rules, func(r compiledRule) bool { return r.repos.picks(path(t)) }) {
			continue // out of scope
		}
		if rule := immutable(t); rule != "" {
			keep = append(keep, Decision{t, "immutable: " + rule})
		} else if why, ok := kept[i]; ok {
			keep = append(keep, Decision{t, why})
		} else {
			del = append(del, Decision{t, "kept by no rule"})
		}
	}
	byName := func(a, b Decision) int {
		return cmp.Or(cmp.Compare(a.Repository, b.Repository), cmp.Compare(a.Tag, b.Tag))
	}
	slices.SortFunc(keep, byName)
	slices.SortFunc(del, byName)
	return keep, del, nil
}

// order sorts a repository's picked tags most recent first by the rule's clock (ties by
// name, so a run is deterministic).
func (r compiledRule) order(tags []TagInfo, idx []int) []int {
	when := func(t TagInfo) time.Time {
		if r.Keep == KeepLatestPulled || r.Keep == KeepPulledWithin {
			return t.Pulled
		}
		return t.Pushed
	}
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(when(tags[b]).Compare(when(tags[a])), cmp.Compare(tags[a].Tag, tags[b].Tag))
	})
	return idx
}

func (r compiledRule) keeps(t TagInfo, rank int, now time.Time) bool {
	switch r.Keep {
	case KeepLatestPushed, KeepLatestPulled:
		return rank < r.Count
	case KeepPushedWithin:
		return !t.Pushed.Before(now.Add(-time.Duration(r.Within)))
	case KeepPulledWithin:
		return !t.Pulled.Before(now.Add(-time.Duration(r.Within)))
	}
	return true // always
}
