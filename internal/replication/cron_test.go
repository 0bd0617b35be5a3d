package replication

import (
	"testing"
	"time"
)

func TestCron(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		expr, from, want string
	}{
		{"* * * * *", "2026-12-07 10:00", "2026-12-07 10:01"},
		{"0 3 * * *", "2026-12-07 10:00", "2026-12-08 03:00"},
		{"*/15 * * * *", "2026-12-07 10:07", "2026-12-07 10:15"},
		{"30 8-17/4 * * *", "2026-12-07 12:31", "2026-12-07 16:30"},
		{"0 0 1 * *", "2026-12-07 10:00", "2027-01-01 00:00"},
		{"0 12 * * 0", "2026-12-07 10:00", "2026-12-13 12:00"}, // 7 December 2026 is a Monday
		{"0 12 * * 7", "2026-12-07 10:00", "2026-12-13 12:00"},
		{"0 0 15 * 1", "2026-12-08 10:00", "2026-12-14 00:00"}, // either day field
		{"0 0 29 2 *", "2026-12-07 10:00", "2028-02-29 00:00"},
		{"5,10 1 * 1,6 *", "2026-12-07 10:00", "2027-01-01 01:05"},
	} {
		c, err := parseCron(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if got := c.next(at(tc.from)); !got.Equal(at(tc.want)) {
			t.Errorf("%q after %s = %s, want %s", tc.expr, tc.from, got.Format("2006-01-02 15:04"), tc.want)
		}
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "a * * * *", "5-1 * * * *"} {
		if _, err := parseCron(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if c, _ := parseCron("0 0 30 2 *"); !c.next(at("2026-01-01 00:00")).IsZero() {
		t.Error("30 February runs")
	}
	r := Rule{Name: "c", Direction: Push, Remote: Remote{URL: "x"}, Repositories: []string{"a"}, Cron: "0 0 30 2 *"}
	if err := r.validate(); err == nil {
		t.Error("a cron that never runs is accepted")
	}
	r.Cron, r.Schedule = "0 3 * * *", Duration(time.Hour)
	if err := r.validate(); err == nil {
		t.Error("cron and schedule together are accepted")
	}
}
