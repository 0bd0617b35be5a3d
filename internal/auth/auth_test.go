package auth

// The permission matrix (every role × action, public and private projects, robots'
// explicit permissions, the first-push project creation rule), Login (passwords, robots,
// rate limiting, the verified-password cache) and the audit trail of logins.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/passwd"
)

const (
	testPassword = "correct-horse-battery"
	robotSecret  = "robot-secret-0123456789"
)

// Test secrets are hashed once, with PBKDF2's smallest accepted work factor: verification
// reads the iterations from the hash, so Login runs the same code as with production
// hashes, only faster (a full-cost verification takes about a second under the race
// detector).
var (
	hashOnce sync.Once
	pwHash   string
	robHash  string
)

func cheapHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := passwd.HashCost(pw, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func hashes(t testing.TB) (user, robot string) {
	t.Helper()
	hashOnce.Do(func() {
		pwHash, robHash = cheapHash(t, testPassword), cheapHash(t, robotSecret)
	})
	return pwHash, robHash
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// world is a store holding the test identities:
//
//	team  (private): gina guest, dave developer, mia maintainer, paul admin, group:devs developer
//	pub   (public):  no members
//	other (private): no members
//	root is a system administrator, olga a user without memberships, dora a disabled user.
//	Robots: robot$team+pull|push|delete|all (project team), robot$team+off (disabled),
//	robot$team+old (expired), robot$sys (system: every project, pull), robot$team+wide (a
//	project robot whose permissions name another project and "*").
type world struct {
	m *meta.Store
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	m := openStore(t)
	uh, rh := hashes(t)
	for _, u := range []meta.User{
		{Name: "gina"}, {Name: "dave"}, {Name: "mia"}, {Name: "paul"}, {Name: "olga"},
		{Name: "root", Admin: true}, {Name: "dora", Disabled: true},
	} {
		u.PasswordHash = uh
		if _, err := m.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.CreateProject(ctx, meta.Project{Name: "team"}, "user:paul", "admin"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []meta.Project{{Name: "pub", Public: true}, {Name: "other"}} {
		if _, err := m.CreateProject(ctx, p, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, mb := range []meta.Member{
		{Project: "team", Principal: "user:gina", Role: "guest"},
		{Project: "team", Principal: "user:dave", Role: "developer"},
		{Project: "team", Principal: "user:mia", Role: "maintainer"},
		{Project: "team", Principal: "group:devs", Role: "developer"},
	} {
		if err := m.SetMember(ctx, mb); err != nil {
			t.Fatal(err)
		}
	}
	robots := []meta.Robot{
		{Name: "robot$team+pull", Project: "team", Permissions: `[{"project":"team","actions":["pull"]}]`},
		{Name: "robot$team+push", Project: "team", Permissions: `[{"project":"team","actions":["push"]}]`},
		{Name: "robot$team+delete", Project: "team", Permissions: `[{"project":"team","actions":["delete"]}]`},
		{Name: "robot$team+all", Project: "team", Permissions: `[{"project":"team","actions":["pull","push","delete"]}]`},
		{Name: "robot$team+off", Project: "team", Permissions: `[{"project":"team","actions":["pull","push","delete"]}]`, Disabled: true},
		{Name: "robot$team+old", Project: "team", Permissions: `[{"project":"team","actions":["pull","push","delete"]}]`, ExpiresAt: time.Now().Add(-time.Hour)},
		{Name: "robot$team+later", Project: "team", Permissions: `[{"project":"team","actions":["pull"]}]`, ExpiresAt: time.Now().Add(time.Hour)},
		{Name: "robot$sys", Permissions: `[{"project":"*","actions":["pull"]}]`},
		{Name: "robot$team+wide", Project: "team", Permissions: `[{"project":"other","actions":["pull","push"]},{"project":"*","actions":["delete"]}]`},
	}
	for _, r := range robots {
		r.SecretHash = rh
		if _, err := m.CreateRobot(ctx, r); err != nil {
			t.Fatalf("robot %s: %v", r.Name, err)
		}
	}
	return &world{m: m}
}

// service returns a Service on the world's store and a function that closes it once
// (flushing the audit trail); it is also closed when the test ends.
func (w *world) service(t testing.TB, o Options) (*Service, func()) {
	t.Helper()
	tk := newTestTokens(t, w.m, TokenOptions{})
	s := New(w.m, nil, tk, o, quietLog())
	var once sync.Once
	closeFn := func() { once.Do(s.Close) }
	t.Cleanup(closeFn)
	return s, closeFn
}

func user(name string, groups ...string) *Principal {
	return &Principal{Kind: "user", Name: name, Groups: groups}
}

func robot(name string, perms ...RobotPermission) *Principal {
	return &Principal{Kind: "robot", Name: name, RobotPerms: perms}
}

func perm(project string, actions ...Action) RobotPermission {
	return RobotPermission{Project: project, Actions: actions}
}

var all = []Action{Pull, Push, Delete}

func actionsString(a []Action) string {
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = string(x)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func TestPermissionMatrix(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	everyone, _ := w.service(t, Options{ProjectCreation: "everyone", PublicPrefixes: []string{"docker.io"}, GroupRoles: map[string]map[string]Role{
		"ops": {"team": Maintainer}, "viewers": {"other": Guest},
	}})
	admins, _ := w.service(t, Options{ProjectCreation: "admins", PublicPrefixes: []string{"docker.io"}})

	var (
		none = []Action(nil)
		r    = []Action{Pull}
		rw   = []Action{Pull, Push}
		rwd  = []Action{Pull, Push, Delete}
	)
	sys := &Principal{Kind: "user", Name: "root", Admin: true}
	rPull := robot("robot$team+pull", perm("team", Pull))
	rPush := robot("robot$team+push", perm("team", Push))
	rDelete := robot("robot$team+delete", perm("team", Delete))
	rAll := robot("robot$team+all", perm("team", Pull, Push, Delete))
	rSys := robot("robot$sys", perm("*", Pull))

	type row struct {
		who  string
		p    *Principal
		repo string
		want []Action
	}
	rows := []row{
		// Roles on the private project.
		{"anonymous", Anonymous, "team/app", none},
		{"guest", user("gina"), "team/app", r},
		{"developer", user("dave"), "team/app", rw},
		{"maintainer", user("mia"), "team/app", rwd},
		{"project admin", user("paul"), "team/app", rwd},
		{"system admin", sys, "team/app", rwd},
		{"outsider", user("olga"), "team/app", none},
		{"guest, nested repo", user("gina"), "team/a/b/c", r},
		{"developer, project root repo", user("dave"), "team", rw},
		// Directory groups: a group member row, and a configured group → role mapping.
		{"group member (devs → developer)", user("olga", "devs"), "team/app", rw},
		{"group mapping (ops → maintainer)", user("olga", "ops"), "team/app", rwd},
		{"highest of direct and group role", user("gina", "devs"), "team/app", rw},
		{"group mapping on another project", user("olga", "viewers"), "other/app", r},
		{"unrelated group", user("olga", "nobody"), "team/app", none},
		// Roles give nothing in other projects.
		{"developer elsewhere", user("dave"), "other/app", none},
		{"maintainer elsewhere", user("mia"), "other/app", none},
		{"project admin elsewhere", user("paul"), "other/app", none},
		{"system admin elsewhere", sys, "other/app", rwd},
		// Public project: everyone reads, members' roles still apply, nobody else writes.
		{"anonymous on public", Anonymous, "pub/app", r},
		{"outsider on public", user("olga"), "pub/app", r},
		{"developer of another project on public", user("dave"), "pub/app", r},
		{"system admin on public", sys, "pub/app", rwd},
		// Mirror prefixes are readable by every caller.
		{"anonymous on a mirror prefix", Anonymous, "docker.io/library/alpine", r},
		{"robot on a mirror prefix", rPull, "docker.io/library/alpine", r},
		// Robots: exactly their permissions, in their project only.
		{"robot pull", rPull, "team/app", r},
		{"robot push", rPush, "team/app", []Action{Push}},
		{"robot delete", rDelete, "team/app", []Action{Delete}},
		{"robot all", rAll, "team/app", rwd},
		{"robot all elsewhere", rAll, "other/app", none},
		{"robot of no project", robot("robot$none"), "team/app", none},
		{"system robot on any project", rSys, "other/app", r},
		{"system robot on a missing project", rSys, "newproj/app", r},
		// Public projects are readable by anyone: robots included.
		{"robot on public", rPull, "pub/app", r},
		{"push robot on public", rPush, "pub/app", r},
		// A missing project: the first push by a user creates it (with the pusher as admin).
		{"anonymous, missing project", Anonymous, "newproj/app", none},
		{"user, missing project", user("olga"), "newproj/app", rwd},
		{"system admin, missing project", sys, "newproj/app", rwd},
		{"project robot, missing project", rAll, "newproj/app", none},
	}
	check := func(t *testing.T, s *Service, rw row) {
		t.Helper()
		got, err := s.Allowed(ctx, rw.p, rw.repo, all)
		if err != nil {
			t.Fatalf("%s on %s: %v", rw.who, rw.repo, err)
		}
		if !slices.Equal(got, rw.want) {
			t.Errorf("%s on %s: allowed %s, want %s", rw.who, rw.repo, actionsString(got), actionsString(rw.want))
		}
		// Each action alone gives the same answer, and order of the request is kept.
		for _, a := range all {
			one, err := s.Allowed(ctx, rw.p, rw.repo, []Action{a})
			if err != nil {
				t.Fatal(err)
			}
			if want := slices.Contains(rw.want, a); (len(one) == 1) != want {
				t.Errorf("%s on %s: %s alone allowed=%v, want %v", rw.who, rw.repo, a, len(one) == 1, want)
			}
		}
		if len(rw.want) > 1 {
			rev := slices.Clone(all)
			slices.Reverse(rev)
			got, _ := s.Allowed(ctx, rw.p, rw.repo, rev)
			want := slices.Clone(rw.want)
			slices.Reverse(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s on %s: reversed request allowed %s, want %s", rw.who, rw.repo, actionsString(got), actionsString(want))
			}
		}
	}
	t.Run("projectCreation=everyone", func(t *testing.T) {
		for _, rw := range rows {
			check(t, everyone, rw)
		}
	})
	t.Run("projectCreation=admins", func(t *testing.T) {
		for _, rw := range rows {
			if rw.who == "user, missing project" {
				rw.want = none // only administrators create projects
			}
			if strings.HasPrefix(rw.who, "group mapping") {
				continue // no group mapping configured on this service
			}
			check(t, admins, rw)
		}
	})
	t.Run("catalog", func(t *testing.T) {
		for _, c := range []struct {
			who  string
			p    *Principal
			want bool
		}{
			{"anonymous", Anonymous, false}, {"outsider", user("olga"), true}, {"guest", user("gina"), true},
			{"system admin", sys, true}, {"robot", rPull, true},
		} {
			got, err := everyone.Allowed(ctx, c.p, "", []Action{Catalog})
			if err != nil {
				t.Fatal(err)
			}
			if (len(got) == 1 && got[0] == Catalog) != c.want {
				t.Errorf("%s: catalog allowed %v, want %v", c.who, got, c.want)
			}
			// Repository actions on the registry itself are nothing.
			if got, _ := everyone.Allowed(ctx, c.p, "", all); len(got) != 0 {
				t.Errorf("%s: registry-wide %v granted", c.who, got)
			}
		}
	})
	t.Run("unknown actions", func(t *testing.T) {
		got, err := everyone.Allowed(ctx, sys, "team/app", []Action{"admin", "*", Pull})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []Action{Pull}) {
			t.Errorf("system admin asking for unknown actions got %v, want [pull]", got)
		}
		got, _ = everyone.Allowed(ctx, user("paul"), "team/app", []Action{"admin", "*"})
		if len(got) != 0 {
			t.Errorf("project admin got %v for unknown actions", got)
		}
	})
}

// Robots authenticated by Login get the permissions stored with them; a project robot
// never reaches beyond its project whatever its list says.
func TestRobotLoginPermissions(t *testing.T) {
	w := newWorld(t)
	s, _ := w.service(t, Options{})
	ctx := context.Background()
	p, err := s.Login(ctx, "robot$team+wide", robotSecret, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != "robot" || p.Name != "robot$team+wide" || p.Admin {
		t.Fatalf("principal %+v", p)
	}
	for _, c := range []struct {
		repo string
		want []Action
	}{
		{"team/app", []Action{Pull, Push, Delete}}, // both entries are rewritten to team
		{"other/app", nil},
		{"newproj/app", nil},
	} {
		got, err := s.Allowed(ctx, p, c.repo, all)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("robot$team+wide on %s: %v, want %v", c.repo, got, c.want)
		}
	}
	sysRobot, err := s.Login(ctx, "robot$sys", robotSecret, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"team/app", "other/x", "pub/y"} {
		if got, _ := s.Allowed(ctx, sysRobot, repo, all); !slices.Equal(got, []Action{Pull}) {
			t.Errorf("robot$sys on %s: %v, want [pull]", repo, got)
		}
	}
}

func TestEnsureProject(t *testing.T) {
	w := newWorld(t)
	s, closeS := w.service(t, Options{PublicPrefixes: []string{"docker.io"}})
	ctx := context.Background()

	// A user's first push creates the project with the pusher as its admin.
	if err := s.EnsureProject(ctx, user("olga"), "fresh/app"); err != nil {
		t.Fatal(err)
	}
	if p, err := w.m.ProjectByName(ctx, "fresh"); err != nil || p.Public {
		t.Fatalf("project fresh: %+v %v (want a private project)", p, err)
	}
	members, err := w.m.Members(ctx, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].Principal != "user:olga" || members[0].Role != "admin" {
		t.Fatalf("members of fresh: %+v, want user:olga admin", members)
	}
	// Now it exists: another user is an outsider there, the creator its admin.
	if got, _ := s.Allowed(ctx, user("dave"), "fresh/app", all); len(got) != 0 {
		t.Errorf("another user in a created project: %v", got)
	}
	if got, _ := s.Allowed(ctx, user("olga"), "fresh/other", all); !slices.Equal(got, all) {
		t.Errorf("creator in her project: %v", got)
	}
	// An existing project is left alone, and an outsider whose push was authorized
	// while it did not exist is refused.
	if err := s.EnsureProject(ctx, user("dave"), "fresh/x"); !errors.Is(err, ErrProjectTaken) {
		t.Fatalf("outsider's EnsureProject on an existing project = %v, want ErrProjectTaken", err)
	}
	if err := s.EnsureProject(ctx, user("olga"), "fresh/x"); err != nil {
		t.Fatal(err)
	}
	if members, _ := w.m.Members(ctx, "fresh"); len(members) != 1 {
		t.Errorf("EnsureProject on an existing project changed its members: %+v", members)
	}
	// A robot's push creates a project without members.
	if err := s.EnsureProject(ctx, robot("robot$sys", perm("*", Push)), "bot/app"); err != nil {
		t.Fatal(err)
	}
	if members, _ := w.m.Members(ctx, "bot"); len(members) != 0 {
		t.Errorf("robot-created project has members %+v", members)
	}
	// Mirror prefixes are never projects.
	if err := s.EnsureProject(ctx, user("olga"), "docker.io/library/alpine"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.m.ProjectByName(ctx, "docker.io"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("a mirror prefix became a project: %v", err)
	}
	closeS()
	entries, err := w.m.Audit(ctx, meta.AuditFilter{Action: "project.create"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("project.create audit entries: %+v, want fresh and bot", entries)
	}
}

func TestLogin(t *testing.T) {
	w := newWorld(t)
	s, closeS := w.service(t, Options{MaxFailures: 1000})
	ctx := context.Background()
	okCases := []struct {
		name, user, pass string
		kind             string
		admin            bool
	}{
		{"user", "dave", testPassword, "user", false},
		{"system admin", "root", testPassword, "user", true},
		{"robot", "robot$team+pull", robotSecret, "robot", false},
		{"robot expiring later", "robot$team+later", robotSecret, "robot", false},
	}
	for _, c := range okCases {
		p, err := s.Login(ctx, c.user, c.pass, "10.0.0.1")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.Kind != c.kind || p.Name != c.user || p.Admin != c.admin {
			t.Errorf("%s: principal %+v", c.name, p)
		}
	}
	bad := []struct{ name, user, pass string }{
		{"wrong password", "dave", "wrong-password-123"},
		{"password of another user", "dave", "x" + testPassword},
		{"empty password", "dave", ""},
		{"empty user", "", testPassword},
		{"unknown user", "nobody", testPassword},
		{"disabled user", "dora", testPassword},
		{"robot wrong secret", "robot$team+pull", testPassword},
		{"robot disabled", "robot$team+off", robotSecret},
		{"robot expired", "robot$team+old", robotSecret},
		{"robot unknown", "robot$team+ghost", robotSecret},
		{"robot secret as user password", "dave", robotSecret},
		{"overlong user", strings.Repeat("u", 300), testPassword},
		{"password prefix (bcrypt 72-byte cut)", "dave", testPassword[:len(testPassword)-1]},
	}
	for _, c := range bad {
		p, err := s.Login(ctx, c.user, c.pass, "10.0.0.1")
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: got %+v, %v; want ErrInvalidCredentials", c.name, p, err)
		}
	}
	// Principal rebuilds identities for refresh tokens and listings from the database.
	for _, c := range []struct {
		kind, name string
		ok         bool
	}{
		{"user", "dave", true}, {"user", "dora", false}, {"user", "nobody", false},
		{"robot", "robot$team+all", true}, {"robot", "robot$team+off", false}, {"robot", "robot$team+old", false},
		{"anonymous", "anonymous", true},
	} {
		p, err := s.Principal(ctx, c.kind, c.name, nil)
		if (err == nil) != c.ok {
			t.Errorf("Principal(%s %s): %+v %v, want ok=%v", c.kind, c.name, p, err, c.ok)
		}
	}
	if p, _ := s.Principal(ctx, "user", "root", nil); p == nil || !p.Admin {
		t.Errorf("Principal(root) = %+v, want a system admin", p)
	}
	if p, _ := s.Principal(ctx, "robot", "robot$team+wide", nil); p == nil || len(p.RobotPerms) != 2 || p.RobotPerms[0].Project != "team" || p.RobotPerms[1].Project != "team" {
		t.Errorf("Principal(robot$team+wide) = %+v, want both permissions bound to team", p)
	}

	// Every attempt is in the audit trail: who, result, from where.
	closeS()
	okEntries, err := w.m.Audit(ctx, meta.AuditFilter{Action: "login", Result: "ok", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	failed, err := w.m.Audit(ctx, meta.AuditFilter{Action: "login", Result: "failed", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Identical failures (dave's, from one address) are folded into a counting row.
	if n, m := auditCount(okEntries), auditCount(failed); n != len(okCases) || m != len(bad) {
		t.Errorf("audit: %d ok and %d failed logins, want %d and %d", n, m, len(okCases), len(bad))
	}
	for _, e := range append(okEntries, failed...) {
		if e.Remote != "10.0.0.1" || e.At.IsZero() || time.Since(e.At) > time.Minute {
			t.Errorf("audit entry %+v lacks who/when/where", e)
		}
		if strings.Contains(e.Detail, testPassword) || strings.Contains(e.Detail, robotSecret) {
			t.Errorf("audit entry leaks a secret: %+v", e)
		}
	}
	byActor := map[string]meta.AuditEntry{}
	for _, e := range failed {
		byActor[e.Actor] = e
	}
	if e := byActor["robot$team+off"]; e.ActorType != "robot" {
		t.Errorf("failed robot login recorded as %+v", e)
	}
	if e := byActor["nobody"]; e.ActorType != "user" {
		t.Errorf("failed unknown-user login recorded as %+v", e)
	}
}

func TestLoginRateLimit(t *testing.T) {
	ctx := context.Background()
	t.Run("per user", func(t *testing.T) {
		w := newWorld(t)
		s, closeS := w.service(t, Options{MaxFailures: 3, MaxFailuresPerAccount: 3, FailureWindow: time.Hour})
		for i := range 3 {
			// Each failure from another address: only the per-account counter reaches 3.
			if _, err := s.Login(ctx, "dave", fmt.Sprintf("wrong-%d-password", i), fmt.Sprintf("10.0.1.%d", i)); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		if _, err := s.Login(ctx, "dave", testPassword, "10.0.2.1"); !errors.Is(err, ErrTooManyFailures) {
			t.Fatalf("correct password after 3 failures: %v, want ErrTooManyFailures", err)
		}
		if _, err := s.Login(ctx, "dave", "wrong-again-password", "10.0.2.2"); !errors.Is(err, ErrTooManyFailures) {
			t.Fatalf("while locked out: %v, want ErrTooManyFailures", err)
		}
		// Other users are not affected.
		if _, err := s.Login(ctx, "mia", testPassword, "10.0.2.1"); err != nil {
			t.Fatalf("another user: %v", err)
		}
		closeS()
		denied, _ := w.m.Audit(ctx, meta.AuditFilter{Action: "login", Result: "denied"})
		if auditCount(denied) != 2 || denied[0].Actor != "dave" {
			t.Errorf("rate-limited attempts in the audit trail: %+v, want 2 for dave", denied)
		}
	})
	t.Run("per address", func(t *testing.T) {
		w := newWorld(t)
		s, _ := w.service(t, Options{MaxFailures: 3, MaxFailuresPerAddress: 3, FailureWindow: time.Hour})
		for i, u := range []string{"gina", "olga", "nobody"} {
			if _, err := s.Login(ctx, u, fmt.Sprintf("wrong-%d-password", i), "10.0.3.3"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		if _, err := s.Login(ctx, "dave", testPassword, "10.0.3.3"); !errors.Is(err, ErrTooManyFailures) {
			t.Fatalf("login from the address after 3 failures: %v, want ErrTooManyFailures", err)
		}
		if _, err := s.Login(ctx, "robot$team+pull", robotSecret, "10.0.3.3"); !errors.Is(err, ErrTooManyFailures) {
			t.Fatalf("robot login from the address: %v, want ErrTooManyFailures", err)
		}
		// The same users from another address are fine (their own counters are at 1).
		if _, err := s.Login(ctx, "gina", testPassword, "10.0.3.4"); err != nil {
			t.Fatalf("from another address: %v", err)
		}
	})
	t.Run("window", func(t *testing.T) {
		w := newWorld(t)
		s, _ := w.service(t, Options{MaxFailures: 2, FailureWindow: 300 * time.Millisecond})
		for range 2 {
			// An empty password fails without bcrypt, so both failures are recent.
			if _, err := s.Login(ctx, "dave", "", "10.0.4.4"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatal(err)
			}
		}
		if _, err := s.Login(ctx, "dave", testPassword, "10.0.4.4"); !errors.Is(err, ErrTooManyFailures) {
			t.Fatalf("inside the window: %v", err)
		}
		time.Sleep(400 * time.Millisecond)
		if _, err := s.Login(ctx, "dave", testPassword, "10.0.4.4"); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
	t.Run("robots", func(t *testing.T) {
		// Robots are throttled per source only: failures spread over many addresses
		// never lock a robot out of a clean one, however many there are.
		w := newWorld(t)
		s, _ := w.service(t, Options{MaxFailures: 2, MaxFailuresPerAccount: 2, FailureWindow: time.Hour})
		for i := range 6 {
			_, _ = s.Login(ctx, "robot$team+pull", fmt.Sprintf("wrong-%d-secret", i), fmt.Sprintf("10.0.5.%d", i/2))
		}
		if _, err := s.Login(ctx, "robot$team+pull", robotSecret, "10.0.5.9"); err != nil {
			t.Fatalf("robot from a clean address after 6 failures elsewhere: %v", err)
		}
		if _, err := s.Login(ctx, "robot$team+pull", robotSecret+"x", "10.0.5.0"); !errors.Is(err, ErrTooManyFailures) {
			t.Fatalf("robot from an address with 2 failures: %v, want ErrTooManyFailures", err)
		}
	})
}

// A verified password is trusted for BasicCacheTTL without bcrypt; a wrong one is never
// taken from the cache; after the TTL the database is asked again.
func TestVerifiedPasswordCache(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	const ttl = time.Second
	s, _ := w.service(t, Options{BasicCacheTTL: ttl, MaxFailures: 1000})
	newHash := cheapHash(t, "a-brand-new-password")
	if _, err := s.Login(ctx, "dave", testPassword, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	cachedAt := time.Now()
	// Change the password behind the service's back: the cached pair still works
	// (proving no bcrypt and no database lookup ran).
	u, err := w.m.UserByName(ctx, "dave")
	if err != nil {
		t.Fatal(err)
	}
	u.PasswordHash = newHash
	if err := w.m.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 50 {
		if _, err := s.Login(ctx, "dave", testPassword, "10.0.0.1"); err != nil {
			t.Fatalf("cached login: %v", err)
		}
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("50 cached logins took %s: bcrypt is running per login", d)
	}
	if time.Since(cachedAt) > ttl {
		t.Fatal("test too slow: the cache expired before it was checked")
	}
	// A wrong password is never taken from the cache; the new one is checked.
	if _, err := s.Login(ctx, "dave", "wrong-password-xyz", "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password with a warm cache: %v", err)
	}
	if _, err := s.Login(ctx, "dave", "a-brand-new-password", "10.0.0.1"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	// The cache is keyed by user and password together.
	if _, err := s.Login(ctx, "mia", testPassword+"x", "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("mia with a wrong password: %v", err)
	}
	if _, err := s.Login(ctx, "mia", "a-brand-new-password", "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("dave's cached password for mia: %v", err)
	}
	time.Sleep(time.Until(cachedAt.Add(ttl + 100*time.Millisecond)))
	if _, err := s.Login(ctx, "dave", testPassword, "10.0.0.1"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old password after the cache TTL: %v, want ErrInvalidCredentials", err)
	}
}

func TestHashPassword(t *testing.T) {
	for _, pw := range []string{"", "short", "1234567", strings.Repeat("x", 73)} {
		if _, err := HashPassword(pw); err == nil {
			t.Errorf("HashPassword(%d bytes) accepted", len(pw))
		}
	}
	h, err := HashPassword("exactly8")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$pbkdf2-sha256$i=600000$") || strings.Contains(h, "exactly8") {
		t.Errorf("hash %q is not PBKDF2-HMAC-SHA-256 at 600000 iterations", h)
	}
	h2, _ := HashPassword("exactly8")
	if h == h2 {
		t.Error("two hashes of one password are equal (no salt)")
	}
	if ValidRole("owner") || !ValidRole("guest") || !ValidRole("admin") || !ValidRole("developer") || !ValidRole("maintainer") {
		t.Error("ValidRole")
	}
}

// slowDirectory counts directory logins and holds each one long enough for concurrent
// callers to overlap.
type slowDirectory struct {
	mu    sync.Mutex
	calls int
}

func (d *slowDirectory) Authenticate(ctx context.Context, username, password string) ([]string, string, error) {
	d.mu.Lock()
	d.calls++
	d.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	if password != "directory pw" {
		return nil, "", ErrInvalidCredentials
	}
	return []string{"devs"}, "", nil
}

// TestConcurrentLoginsShareOneCheck: identical logins arriving together (a CI fleet when
// the verified-password cache expires) verify the credential once.
func TestConcurrentLoginsShareOneCheck(t *testing.T) {
	w := newWorld(t)
	dir := &slowDirectory{}
	s := New(w.m, dir, newTestTokens(t, w.m, TokenOptions{}), Options{}, quietLog())
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Login(context.Background(), "ldapuser", "directory pw", "10.0.0.1"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if dir.calls != 1 {
		t.Fatalf("16 concurrent identical logins asked the directory %d times, want 1", dir.calls)
	}
}
