package auth

import (
	"fmt"
	"testing"
	"time"
)

// fakeClock is a settable time source.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// A limiter step: fail or succeed a login, or check whether one would be refused.
type step struct {
	op      string // fail, ok, check, wait
	account string
	remote  string
	times   int           // fail: how many failures
	wait    time.Duration // wait
	locked  bool          // check: the expected answer
}

func TestLimiter(t *testing.T) {
	lim := limits{perPair: 3, perAccount: 10, perSource: 20, window: time.Minute}
	fail := func(acct, remote string, n int) step {
		return step{op: "fail", account: acct, remote: remote, times: n}
	}
	check := func(acct, remote string, locked bool) step {
		return step{op: "check", account: acct, remote: remote, locked: locked}
	}
	ok := func(acct, remote string) step { return step{op: "ok", account: acct, remote: remote} }
	wait := func(d time.Duration) step { return step{op: "wait", wait: d} }
	cases := []struct {
		name  string
		steps []step
	}{
		{"below the pair limit nothing is locked", []step{
			fail("alice", "10.0.0.1", 2), check("alice", "10.0.0.1", false)}},
		{"the pair limit locks that pair only", []step{
			fail("alice", "10.0.0.1", 3),
			check("alice", "10.0.0.1", true),
			check("alice", "10.0.0.2", false),
			check("bob", "10.0.0.1", false)}},
		{"a pair lock lasts one window", []step{
			fail("alice", "10.0.0.1", 3), wait(59 * time.Second), check("alice", "10.0.0.1", true),
			wait(2 * time.Second), check("alice", "10.0.0.1", false)}},
		{"failures older than the window do not add up", []step{
			fail("alice", "10.0.0.1", 2), wait(61 * time.Second), fail("alice", "10.0.0.1", 2),
			check("alice", "10.0.0.1", false)}},
		{"account names fold case", []step{
			fail("Alice", "10.0.0.1", 2), fail("alice", "10.0.0.1", 1), check("ALICE", "10.0.0.1", true)}},
		{"the account limit locks sources that never logged in", []step{
			fail("alice", "10.0.1.1", 3), fail("alice", "10.0.1.2", 3), fail("alice", "10.0.1.3", 3),
			check("alice", "10.0.9.9", false), // 9 < 10
			fail("alice", "10.0.1.4", 1),
			check("alice", "10.0.9.9", true),
			check("bob", "10.0.9.9", false)}},
		{"the account limit spares trusted sources", []step{
			ok("alice", "192.0.2.10"),
			fail("alice", "10.0.1.1", 3), fail("alice", "10.0.1.2", 3), fail("alice", "10.0.1.3", 3), fail("alice", "10.0.1.4", 3),
			check("alice", "10.0.9.9", true),
			check("alice", "192.0.2.10", false)}},
		{"robots have no account limit", []step{
			fail("robot$ci", "10.0.1.1", 3), fail("robot$ci", "10.0.1.2", 3), fail("robot$ci", "10.0.1.3", 3), fail("robot$ci", "10.0.1.4", 3),
			check("robot$ci", "10.0.9.9", false),
			check("robot$ci", "10.0.1.1", true)}},
		{"the source limit stops spraying over accounts", []step{
			fail("a1", "10.0.2.1", 2), fail("a2", "10.0.2.1", 2), fail("a3", "10.0.2.1", 2), fail("a4", "10.0.2.1", 2),
			fail("a5", "10.0.2.1", 2), fail("a6", "10.0.2.1", 2), fail("a7", "10.0.2.1", 2), fail("a8", "10.0.2.1", 2),
			fail("a9", "10.0.2.1", 2), check("fresh", "10.0.2.1", false),
			fail("a10", "10.0.2.1", 2),
			check("fresh", "10.0.2.1", true),
			check("robot$ci", "10.0.2.1", true),
			check("fresh", "10.0.2.2", false)}},
		{"the source limit spares accounts trusted there", []step{
			ok("carol", "10.0.2.1"),
			fail("a1", "10.0.2.1", 2), fail("a2", "10.0.2.1", 2), fail("a3", "10.0.2.1", 2), fail("a4", "10.0.2.1", 2),
			fail("a5", "10.0.2.1", 2), fail("a6", "10.0.2.1", 2), fail("a7", "10.0.2.1", 2), fail("a8", "10.0.2.1", 2),
			fail("a9", "10.0.2.1", 2), fail("a10", "10.0.2.1", 2),
			check("fresh", "10.0.2.1", true), check("carol", "10.0.2.1", false)}},
		{"a success clears its pair's failures", []step{
			fail("alice", "10.0.0.1", 2), ok("alice", "10.0.0.1"), fail("alice", "10.0.0.1", 2),
			check("alice", "10.0.0.1", false)}},
		{"a trusted source still locks on its own failures", []step{
			ok("alice", "10.0.0.1"), fail("alice", "10.0.0.1", 3), check("alice", "10.0.0.1", true)}},
		{"IPv6 counts by /64", []step{
			fail("alice", "2001:db8:1:2::1", 1), fail("alice", "2001:db8:1:2::2", 1), fail("alice", "2001:db8:1:2:ffff::3", 1),
			check("alice", "2001:db8:1:2::99", true),
			check("alice", "2001:db8:1:3::1", false)}},
		{"IPv4-mapped IPv6 is IPv4", []step{
			fail("alice", "::ffff:10.0.0.1", 3), check("alice", "10.0.0.1", true)}},
		{"overlong names share no counter with their prefix", []step{
			fail(string(make([]byte, 300)), "10.0.0.1", 3), check(string(make([]byte, 299)), "10.0.0.1", false),
			check(string(make([]byte, 300)), "10.0.0.1", true)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			l := newLimiter(lim, clk.now)
			for i, s := range c.steps {
				robot := kindOf(s.account) == "robot"
				switch s.op {
				case "fail":
					for range s.times {
						l.failed(s.account, robot, s.remote)
					}
				case "ok":
					l.succeeded(s.account, s.remote)
				case "wait":
					clk.advance(s.wait)
				case "check":
					if got := l.locked(s.account, robot, s.remote); got != s.locked {
						t.Fatalf("step %d: locked(%.20q from %s) = %v, want %v", i, s.account, s.remote, got, s.locked)
					}
				}
			}
		})
	}
}

// TestLimiterBounded: the table never outgrows its capacity and evicts the least
// recently used counters, not everything at once: a lock survives a flood of other
// failures that fits in the table.
func TestLimiterBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newLimiter(limits{perPair: 3, perAccount: 1000, perSource: 1000, window: time.Hour, capacity: 1000}, clk.now)
	l.failed("victim", false, "10.0.0.1")
	l.failed("victim", false, "10.0.0.1")
	l.failed("victim", false, "10.0.0.1")
	// 300 failures for other accounts from other addresses: 900 counters with the
	// victim's 3, within capacity.
	for i := range 299 {
		l.failed(fmt.Sprintf("user%d", i), false, fmt.Sprintf("10.1.%d.%d", i/250, i%250))
	}
	if !l.locked("victim", false, "10.0.0.1") {
		t.Fatal("a flood within capacity reset an active lock")
	}
	for i := range 5000 {
		l.failed(fmt.Sprintf("flood%d", i), false, fmt.Sprintf("10.2.%d.%d", i/250, i%250))
		if n := l.size(); n > 1000 {
			t.Fatalf("table holds %d counters, capacity 1000", n)
		}
	}
	// Expired counters are dropped when looked at, not kept forever.
	clk.advance(2 * time.Hour)
	for i := range 5000 {
		_ = l.locked(fmt.Sprintf("flood%d", i), false, fmt.Sprintf("10.2.%d.%d", i/250, i%250))
	}
	if n := l.size(); n > 10 {
		t.Errorf("%d counters left after every window expired and was looked at", n)
	}
}
