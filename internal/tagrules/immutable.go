package tagrules

import (
	"fmt"
	"strings"
	"time"
)

// ImmutableRule protects the tags of a project whose name matches Tags and whose
// repository path (after the project) matches Repositories ("**" when empty): such a tag
// may be created, and pushed again with the same manifest, but never moved to another
// manifest or deleted, by hand or by retention.
type ImmutableRule struct {
	ID           int64     `json:"id"`
	Project      string    `json:"project"`
	Tags         string    `json:"tags"`
	Repositories string    `json:"repositories"`
	CreatedAt    time.Time `json:"createdAt"`
}

// Validate checks the rule's patterns.
func (r ImmutableRule) Validate() error {
	if strings.TrimSpace(r.Tags) == "" {
		return fmt.Errorf("an immutable rule needs a tag pattern (e.g. v* or **)")
	}
	_, err := r.compile()
	return err
}

// compiledImmutable is a rule ready to match.
type compiledImmutable struct {
	rule        ImmutableRule
	tags, repos Pattern
}

func (r ImmutableRule) compile() (compiledImmutable, error) {
	if r.Repositories == "" {
		r.Repositories = "**"
	}
	tags, err := Compile(r.Tags)
	if err != nil {
		return compiledImmutable{}, fmt.Errorf("tags: %w", err)
	}
	repos, err := Compile(r.Repositories)
	if err != nil {
		return compiledImmutable{}, fmt.Errorf("repositories: %w", err)
	}
	return compiledImmutable{rule: r, tags: tags, repos: repos}, nil
}

// String names the rule in refusals and retention reasons.
func (r ImmutableRule) String() string {
	repos := r.Repositories
	if repos == "" {
		repos = "**"
	}
	return fmt.Sprintf("immutable rule %d (tags %s, repositories %s)", r.ID, r.Tags, repos)
}

// protecting returns the first rule protecting tag in the repository at path (the name
// after the project), or nil. A stored rule that no longer compiles (it was validated
// when added) protects everything it might have matched: failing closed keeps tags.
func protecting(rules []ImmutableRule, path, tag string) *ImmutableRule {
	for i := range rules {
		c, err := rules[i].compile()
		if err != nil || (c.repos.Match(path) && c.tags.Match(tag)) {
			return &rules[i]
		}
	}
	return nil
}
