package oci

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// ErrInvalidRange reports a malformed Content-Range header on an upload chunk.
var ErrInvalidRange = errors.New("invalid content range")

// ParseContentRange parses the upload chunk header "<start>-<end>" (inclusive), also
// accepting the RFC 9110 form "bytes <start>-<end>/<total|*>" some clients send.
func ParseContentRange(s string) (start, end int64, err error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "bytes"); ok {
		s = strings.TrimLeft(rest, " =")
		if i := strings.IndexByte(s, '/'); i >= 0 {
			s = s[:i]
		}
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, ErrInvalidRange
	}
	start, err1 := parseNonNegative(a)
	end, err2 := parseNonNegative(b)
	// end = MaxInt64 would make the length end-start+1 overflow (to a negative
	// length callers read as "unknown"); no real range reaches it.
	if err1 != nil || err2 != nil || end < start || end == math.MaxInt64 {
		return 0, 0, ErrInvalidRange
	}
	return start, end, nil
}

func parseNonNegative(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, ErrInvalidRange
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrInvalidRange
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// ErrRangeUnsatisfiable reports a Range header none of whose ranges overlap the content.
var ErrRangeUnsatisfiable = errors.New("range not satisfiable")

// ParseRange interprets a Range request header against content of size bytes and
// returns the single byte range [start, start+length) to send. ok is false when the
// header should be ignored (absent, not "bytes", malformed, or several ranges: serving
// the whole content is always a correct answer to those). An unsatisfiable range
// returns ErrRangeUnsatisfiable.
func ParseRange(header string, size int64) (start, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(header, "bytes=")
	if !found || strings.IndexByte(spec, ',') >= 0 {
		return 0, 0, false, nil
	}
	spec = strings.TrimSpace(spec)
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false, nil
	}
	if first == "" {
		// Suffix range: the last N bytes.
		n, perr := parseNonNegative(last)
		if perr != nil {
			return 0, 0, false, nil
		}
		if n == 0 {
			return 0, 0, false, ErrRangeUnsatisfiable
		}
		if n > size {
			n = size
		}
		if size == 0 {
			return 0, 0, false, ErrRangeUnsatisfiable
		}
		return size - n, n, true, nil
	}
	s, perr := parseNonNegative(first)
	if perr != nil {
		return 0, 0, false, nil
	}
	if s >= size {
		return 0, 0, false, ErrRangeUnsatisfiable
	}
	e := size - 1
	if last != "" {
		v, perr := parseNonNegative(last)
		if perr != nil {
			return 0, 0, false, nil
		}
		if v < s {
			// RFC 9110 would ignore it; Go's ServeContent and the OCI conformance suite
			// answer 416, which tells the client its request was wrong.
			return 0, 0, false, ErrRangeUnsatisfiable
		}
		if v < e {
			e = v
		}
	}
	return s, e - s + 1, true, nil
}
