// Package tagrules holds Berth's per-project tag rules: retention policies, which delete
// the tags no rule keeps, and immutable-tag rules, which refuse moving or deleting a tag.
// They are one package because they share their patterns, their selection of a project's
// repositories and their store, and because retention must never delete a tag an
// immutable rule protects: both read the same rules in one place.
//
// Patterns are globs in the style of Harbor's doublestar matching: `*` matches any run of
// characters except `/`, `**` any run including `/`, `?` one character except `/`,
// `[abc]`, `[a-z]` and `[!abc]` a character class, `{a,b}` either alternative; every other
// character matches itself, and a pattern matches the whole name (it is anchored).
package tagrules

import (
	"fmt"
	"regexp"
	"strings"
)

// Pattern is a compiled glob.
type Pattern struct {
	src string
	re  *regexp.Regexp
}

// Compile parses a glob (see the package comment).
func Compile(glob string) (Pattern, error) {
	if glob == "" {
		return Pattern{}, fmt.Errorf("tagrules: empty pattern")
	}
	var b strings.Builder
	b.WriteString("^(?:")
	depth := 0 // open {…} groups
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			if i+1 < len(glob) && glob[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			end := strings.IndexByte(glob[i+1:], ']')
			if end < 0 {
				return Pattern{}, fmt.Errorf("tagrules: pattern %q: unclosed [", glob)
			}
			class := glob[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			if class == "" || class == "^" {
				return Pattern{}, fmt.Errorf("tagrules: pattern %q: empty character class", glob)
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += end + 1
		case '{':
			depth++
			b.WriteString("(?:")
		case '}':
			if depth == 0 {
				return Pattern{}, fmt.Errorf("tagrules: pattern %q: } without {", glob)
			}
			depth--
			b.WriteString(")")
		case ',':
			if depth > 0 {
				b.WriteString("|")
			} else {
				b.WriteString(",")
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if depth > 0 {
		return Pattern{}, fmt.Errorf("tagrules: pattern %q: unclosed {", glob)
	}
	b.WriteString(")$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return Pattern{}, fmt.Errorf("tagrules: pattern %q: %w", glob, err)
	}
	return Pattern{src: glob, re: re}, nil
}

// Match tells whether the whole of name matches.
func (p Pattern) Match(name string) bool { return p.re != nil && p.re.MatchString(name) }

func (p Pattern) String() string { return p.src }

// Selector picks names: those matching Match (every name when empty) and not matching
// Exclude (none excluded when empty).
type Selector struct {
	Match   string `json:"match,omitempty"`
	Exclude string `json:"exclude,omitempty"`
}

// selector is a compiled Selector.
type selector struct{ match, exclude *Pattern }

func (s Selector) compile() (selector, error) {
	var out selector
	for _, f := range []struct {
		src string
		dst **Pattern
	}{{s.Match, &out.match}, {s.Exclude, &out.exclude}} {
		if f.src == "" {
			continue
		}
		p, err := Compile(f.src)
		if err != nil {
			return selector{}, err
		}
		*f.dst = &p
	}
	return out, nil
}

func (s selector) picks(name string) bool {
	return (s.match == nil || s.match.Match(name)) && (s.exclude == nil || !s.exclude.Match(name))
}

func (s Selector) String() string {
	switch {
	case s.Match != "" && s.Exclude != "":
		return s.Match + " except " + s.Exclude
	case s.Exclude != "":
		return "all except " + s.Exclude
	case s.Match != "":
		return s.Match
	}
	return "all"
}
