package replication

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cronSpec is a parsed five-field cron expression (minute hour day-of-month month
// day-of-week, in UTC): each field a set of allowed values.
type cronSpec struct {
	min, hour, dom, month, dow [64]bool
	domAny, dowAny             bool
}

// parseCron reads "m h dom mon dow": each field *, a value, a range a-b, a list a,b and
// steps (*/15, 1-30/5). Day of week 0-7 (0 and 7 Sunday). When both day fields are
// restricted, a day matching either runs (as cron does).
func parseCron(s string) (*cronSpec, error) {
	f := strings.Fields(s)
	if len(f) != 5 {
		return nil, fmt.Errorf("cron %q: want five fields (minute hour day-of-month month day-of-week)", s)
	}
	c := &cronSpec{domAny: f[2] == "*", dowAny: f[4] == "*"}
	for i, spec := range []struct {
		set       *[64]bool
		lo, hi    int
		name      string
		wrapSeven bool
	}{{&c.min, 0, 59, "minute", false}, {&c.hour, 0, 23, "hour", false}, {&c.dom, 1, 31, "day of month", false},
		{&c.month, 1, 12, "month", false}, {&c.dow, 0, 7, "day of week", true}} {
		if err := parseField(f[i], spec.lo, spec.hi, spec.set); err != nil {
			return nil, fmt.Errorf("cron %q: %s: %w", s, spec.name, err)
		}
		if spec.wrapSeven && spec.set[7] {
			spec.set[0] = true
		}
	}
	return c, nil
}

func parseField(field string, lo, hi int, set *[64]bool) error {
	for _, part := range strings.Split(field, ",") {
		rng, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return fmt.Errorf("bad step %q", stepText)
			}
			step = n
		}
		a, b := lo, hi
		if rng != "*" {
			x, y, isRange := strings.Cut(rng, "-")
			var err error
			if a, err = strconv.Atoi(x); err != nil {
				return fmt.Errorf("bad value %q", x)
			}
			b = a
			if isRange {
				if b, err = strconv.Atoi(y); err != nil {
					return fmt.Errorf("bad value %q", y)
				}
			} else if hasStep {
				b = hi
			}
		}
		if a < lo || b > hi || a > b {
			return fmt.Errorf("%q outside %d-%d", part, lo, hi)
		}
		for v := a; v <= b; v += step {
			set[v] = true
		}
	}
	return nil
}

// next is the first minute after t (UTC) the expression selects.
func (c *cronSpec) next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Minute).Add(time.Minute)
	for limit := t.AddDate(5, 0, 0); t.Before(limit); {
		if !c.month[int(t.Month())] {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !c.day(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !c.hour[t.Hour()] {
			t = t.Truncate(time.Hour).Add(time.Hour)
			continue
		}
		if !c.min[t.Minute()] {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{} // never (e.g. 30 February)
}

func (c *cronSpec) day(t time.Time) bool {
	dom, dow := c.dom[t.Day()], c.dow[int(t.Weekday())]
	switch {
	case c.domAny && c.dowAny:
		return true
	case c.domAny:
		return dow
	case c.dowAny:
		return dom
	}
	return dom || dow
}
