package auth

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/berth-registry/berth/internal/meta"
)

var repeated = regexp.MustCompile(`^repeated (\d+) more times`)

// auditCount is how many events rows stand for: a collapsed row counts its repeats.
func auditCount(entries []meta.AuditEntry) int {
	n := 0
	for _, e := range entries {
		if m := repeated.FindStringSubmatch(e.Detail); m != nil {
			k, _ := strconv.Atoi(m[1])
			n += k
			continue
		}
		n++
	}
	return n
}

// TestAuditBoundsFields: whatever a request carries, a row stays small, and a cut value
// says it was cut.
func TestAuditBoundsFields(t *testing.T) {
	w := newWorld(t)
	s, closeS := w.service(t, Options{})
	huge := strings.Repeat("é", 40_000) // 80 KB, two bytes a rune
	s.Record(meta.AuditEntry{Actor: huge, ActorType: huge, Action: huge, Resource: "team/app:" + huge, Result: huge, Remote: huge, Detail: huge})
	closeS()
	got, err := w.m.Audit(context.Background(), meta.AuditFilter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("audit: %v %+v", err, got)
	}
	e := got[0]
	for name, c := range map[string]struct {
		v   string
		max int
	}{
		"actor": {e.Actor, maxAuditActor}, "actor type": {e.ActorType, maxAuditType}, "action": {e.Action, maxAuditAction},
		"resource": {e.Resource, maxAuditResource}, "result": {e.Result, maxAuditResult}, "remote": {e.Remote, maxAuditRemote},
		"detail": {e.Detail, maxAuditDetail},
	} {
		if len(c.v) > c.max || !utf8.ValidString(c.v) {
			t.Errorf("%s stored as %d bytes %.40q…, want at most %d, valid UTF-8", name, len(c.v), c.v, c.max)
		}
		if c.max >= 64 && !strings.HasSuffix(c.v, "…[80000 bytes]") && !strings.HasSuffix(c.v, "…[80009 bytes]") {
			t.Errorf("%s does not say it was cut from how much: %q", name, c.v)
		}
	}
	if short := bound("team/app:v1", 512); short != "team/app:v1" {
		t.Errorf("a short value was changed: %q", short)
	}
}

// TestAuditCollapsesRepeats: a flood of identical denials becomes a first row and one
// counting row; successful changes are never folded; different entries stay apart.
func TestAuditCollapsesRepeats(t *testing.T) {
	w := newWorld(t)
	s, closeS := w.service(t, Options{})
	deny := meta.AuditEntry{Actor: "anonymous", ActorType: "anonymous", Action: "pull", Resource: "secret/app:v1", Result: "denied", Remote: "203.0.113.9"}
	for range 300 {
		s.Record(deny)
	}
	other := deny
	other.Remote = "203.0.113.10"
	s.Record(other)
	push := meta.AuditEntry{Actor: "dave", ActorType: "user", Action: "push", Resource: "team/app:v1", Result: "ok", Remote: "10.0.0.1"}
	s.Record(push)
	s.Record(push)
	closeS()
	ctx := context.Background()
	denied, err := w.m.Audit(ctx, meta.AuditFilter{Result: "denied", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(denied) != 3 || auditCount(denied) != 301 {
		t.Errorf("301 denials from two addresses stored as %d rows counting %d, want 3 rows counting 301: %+v", len(denied), auditCount(denied), denied)
	}
	pushes, _ := w.m.Audit(ctx, meta.AuditFilter{Action: "push"})
	if len(pushes) != 2 {
		t.Errorf("two successful pushes stored as %d rows, want 2", len(pushes))
	}
	if st := s.AuditStats(); st.Written != 5 || st.Collapsed != 299 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 5 written, 299 collapsed, 0 dropped", st)
	}
}

// TestAuditCollapseWindow: repeats are folded per window; a repeat after the window
// opens a new one.
func TestAuditCollapseWindow(t *testing.T) {
	w := newWorld(t)
	a := &auditor{meta: w.m, log: quietLog(), in: make(chan meta.AuditEntry, auditQueue), done: make(chan struct{}), window: 300 * time.Millisecond}
	go a.run()
	e := meta.AuditEntry{Actor: "mallory", ActorType: "user", Action: "login", Result: "failed", Remote: "203.0.113.9", Detail: "auth: invalid credentials"}
	for range 5 {
		a.record(e)
	}
	time.Sleep(700 * time.Millisecond) // the window closes and its counting row is written
	for range 3 {
		a.record(e)
	}
	a.close()
	got, _ := w.m.Audit(context.Background(), meta.AuditFilter{Actor: "mallory"})
	if len(got) != 4 || auditCount(got) != 8 {
		t.Fatalf("8 failures over two windows: %d rows counting %d, want 4 counting 8: %+v", len(got), auditCount(got), got)
	}
	for _, r := range got {
		if m := repeated.FindStringSubmatch(r.Detail); m != nil && !strings.HasSuffix(r.Detail, "; auth: invalid credentials") {
			t.Errorf("counting row lost the original detail: %q", r.Detail)
		}
	}
}

// TestAuditNeverDropsSilently: when the writer cannot keep up, a request waits for room;
// what is still lost is counted.
func TestAuditNeverDropsSilently(t *testing.T) {
	w := newWorld(t)
	// No writer runs: the one-slot queue fills at once.
	a := &auditor{meta: w.m, log: quietLog(), in: make(chan meta.AuditEntry, 1), done: make(chan struct{}), window: time.Minute}
	a.record(meta.AuditEntry{Action: "push", Result: "ok"})
	start := time.Now()
	a.record(meta.AuditEntry{Action: "push", Result: "ok"})
	if d := time.Since(start); d < backPressure/2 {
		t.Errorf("a full queue refused the entry after %s, without back-pressure", d)
	}
	if st := a.stats(); st.Dropped != 1 {
		t.Errorf("stats %+v, want 1 dropped", st)
	}
	// With a writer, waiting entries get through.
	b := &auditor{meta: w.m, log: quietLog(), in: make(chan meta.AuditEntry, 1), done: make(chan struct{}), window: time.Minute}
	go b.run()
	for i := range 50 {
		b.record(meta.AuditEntry{Action: "push", Result: "ok", Resource: fmt.Sprintf("team/app:v%d", i)})
	}
	b.close()
	b.record(meta.AuditEntry{Action: "push", Result: "ok"})
	if st := b.stats(); st.Written != 50 || st.Dropped != 1 {
		t.Errorf("stats %+v, want 50 written and the one after close dropped", st)
	}
}

// TestLoginActorRedaction: a failed login's username is kept when it is a name, and
// replaced by a stable marker when it holds the password or looks like a secret.
func TestLoginActorRedaction(t *testing.T) {
	w := newWorld(t)
	s, _ := w.service(t, Options{})
	ctx := context.Background()
	cases := []struct {
		user, pass string
		keep       bool
	}{
		{"dave", "wrong-password", true},
		{"jane.doe@example.com", "wrong-password", true},
		{"robot$team+pull", "wrong-secret-value", true},
		{"Administrator", "hunter22", true},
		{"firstname.lastname@corp.example.com", "x", true},
		{"hunter22", "hunter22", false},                      // the password typed twice
		{"davehunter22", "hunter22", false},                  // name and password run together
		{"ghp_R2d2C3p0xY7wQ9zL4mN8vB1kJ6hG5fD3s", "", false}, // a pasted token
		{"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkYXZlIn0.c2lnbmF0dXJl", "", false},
		{"Zq8xM2pL9wT4vR7k", "password", false},
		{strings.Repeat("a", 65), "password", false},
		{"dave\x00admin", "password", false},
	}
	for _, c := range cases {
		got := s.loginActor(ctx, c.user, c.pass)
		if c.keep != (got == c.user) {
			t.Errorf("loginActor(%q) = %q, keep=%v", c.user, got, c.keep)
		}
		if !c.keep {
			if c.pass != "" && strings.Contains(got, c.pass) || strings.Contains(got, c.user) || !strings.HasPrefix(got, "<redacted ") {
				t.Errorf("marker %q reveals the input or is unmarked", got)
			}
			if again := s.loginActor(ctx, c.user, c.pass); again != got {
				t.Errorf("marker not stable: %q then %q", got, again)
			}
		}
	}
	// An existing account keeps its name even when it looks random.
	if _, err := w.m.CreateUser(ctx, meta.User{Name: "Zq8xM2pL9wT4vR7kA1", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := s.loginActor(ctx, "Zq8xM2pL9wT4vR7kA1", "password"); got != "Zq8xM2pL9wT4vR7kA1" {
		t.Errorf("an existing account's name was redacted: %q", got)
	}
	// Through Login: the failed attempt's row holds the marker, never the pasted secret.
	const token = "ghp_R2d2C3p0xY7wQ9zL4mN8vB1kJ6hG5fD3s"
	_, _ = s.Login(ctx, token, "", "10.0.0.1")
	s.Close()
	rows, _ := w.m.Audit(ctx, meta.AuditFilter{Action: "login"})
	for _, r := range rows {
		if strings.Contains(r.Actor, "R2d2") || strings.Contains(r.Detail, "R2d2") {
			t.Errorf("audit row keeps the secret: %+v", r)
		}
	}
	if len(rows) == 0 {
		t.Error("the failed login was not audited")
	}
}
