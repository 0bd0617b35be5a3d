package oci

import (
	"errors"
	"fmt"
	"strings"
)

// MaxNameLength bounds repository names. The spec's regular expression has no bound, but
// clients limit "host/name" to 255 characters, so a longer name could never be pulled.
const MaxNameLength = 255

// MaxTagLength is the spec's limit for tags.
const MaxTagLength = 128

// ErrInvalidName reports a repository name that does not match the spec's grammar.
var ErrInvalidName = errors.New("invalid repository name")

// ErrInvalidTag reports a tag that does not match the spec's grammar.
var ErrInvalidTag = errors.New("invalid tag")

// ValidateName checks a repository name against the distribution spec grammar
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
// by hand: it is on every request's path, and a regular expression costs microseconds.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidName, MaxNameLength)
	}
	for comp := range strings.SplitSeq(name, "/") {
		if !validComponent(comp) {
			return fmt.Errorf("%w: component %q must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*", ErrInvalidName, comp)
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }

// validComponent matches [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func validComponent(s string) bool {
	i := 0
	for {
		// one or more alphanumerics
		start := i
		for i < len(s) && isLowerAlnum(s[i]) {
			i++
		}
		if i == start {
			return false
		}
		if i == len(s) {
			return true
		}
		// a separator: ".", "_", "__" or one or more "-"
		switch s[i] {
		case '.':
			i++
		case '_':
			i++
			if i < len(s) && s[i] == '_' {
				i++
			}
		case '-':
			for i < len(s) && s[i] == '-' {
				i++
			}
		default:
			return false
		}
		if i == len(s) {
			return false
		}
	}
}

// ValidateTag checks a tag against [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func ValidateTag(tag string) error {
	if tag == "" || len(tag) > MaxTagLength {
		return fmt.Errorf("%w: must be 1 to %d characters", ErrInvalidTag, MaxTagLength)
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
			(i > 0 && (c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("%w: %q must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", ErrInvalidTag, tag)
		}
	}
	return nil
}

// Project returns the first path component of a repository name: the unit of tenancy.
func Project(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return name
}
