// Package auth owns who may do what: authenticating users (local passwords, PBKDF2 or
// legacy bcrypt hashes (internal/passwd), or a
// directory), robot accounts and tokens; the role × action permission matrix over
// projects; the Docker token service; and the audit trail of logins and changes.
// Identities, projects, memberships and robots are rows in the metadata database.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/passwd"
)

// Action is something a principal does to a repository.
type Action string

// Actions. Catalog is the registry-wide listing (scope registry:catalog:*).
const (
	Pull    Action = "pull"
	Push    Action = "push"
	Delete  Action = "delete"
	Catalog Action = "*"
)

// Role is a principal's standing in a project.
type Role string

// Roles, from least to most.
const (
	Guest      Role = "guest"
	Developer  Role = "developer"
	Maintainer Role = "maintainer"
	Admin      Role = "admin"
)

// roleActions is the permission matrix (README "Permissions" mirrors it). Project admins
// also manage members and robots of their project (admin API).
var roleActions = map[Role][]Action{
	Guest:      {Pull},
	Developer:  {Pull, Push},
	Maintainer: {Pull, Push, Delete},
	Admin:      {Pull, Push, Delete},
}

var roleRank = map[Role]int{Guest: 1, Developer: 2, Maintainer: 3, Admin: 4}

// ValidRole tells whether r names a role.
func ValidRole(r string) bool { _, ok := roleRank[Role(r)]; return ok }

// Principal is an authenticated caller (or the anonymous one).
type Principal struct {
	Kind   string // user, robot, anonymous
	Name   string
	Admin  bool     // system administrator
	Groups []string // directory groups (LDAP)
	// Robot permissions: project ("*" for every project) → actions.
	RobotPerms []RobotPermission
	// Directory is set for users authenticated by the directory (LDAP): their groups
	// are only as fresh as their last login.
	Directory bool
	// expires is when a robot's account expires (zero: never); a cached login does not
	// outlive it.
	expires time.Time
}

// Anonymous is the caller without credentials.
var Anonymous = &Principal{Kind: "anonymous", Name: "anonymous"}

// RobotPermission grants actions on one project ("*" = every project, system robots only).
type RobotPermission struct {
	Project string   `json:"project"`
	Actions []Action `json:"actions"`
}

// Errors of authentication.
var (
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	ErrTooManyFailures    = errors.New("auth: too many failed logins; try again later")
	ErrDirectoryDown      = errors.New("auth: directory unavailable")
)

// Directory authenticates against an external directory (LDAP).
type Directory interface {
	// Authenticate verifies the password and returns the user's groups. It fails with
	// an error wrapping ErrInvalidCredentials, or any other error when unreachable.
	Authenticate(ctx context.Context, username, password string) (groups []string, email string, err error)
}

// Options configure the Service.
type Options struct {
	// ProjectCreation says who creates a project by pushing to it first: "everyone"
	// (any user) or "admins".
	ProjectCreation string
	// PublicPrefixes are projects every caller may pull from (the mirror's upstreams).
	PublicPrefixes []string
	// ExplicitProjects turns project creation by push off whatever ProjectCreation
	// says: set when the mirror has a default upstream, where every name outside a
	// local project is the upstream's, so a project made by a push would shadow it.
	ExplicitProjects bool
	// BasicCacheTTL is how long a verified username/password pair is trusted without
	// re-running the password hash.
	BasicCacheTTL time.Duration
	// Failed-login throttling (lockout.go): MaxFailures failures of one account from one
	// source within FailureWindow lock that account out from that source for
	// FailureWindow; MaxFailuresPerAccount failures of a user from anywhere lock it out
	// from the sources it never logged in from; MaxFailuresPerAddress failures from one
	// source, whatever the accounts, lock the source out (except for the accounts that
	// logged in from it). Zero means 10, 10×MaxFailures and 10×MaxFailures.
	MaxFailures           int
	MaxFailuresPerAccount int
	MaxFailuresPerAddress int
	FailureWindow         time.Duration
	// GroupRoles maps directory groups to project roles: group → project → role.
	GroupRoles map[string]map[string]Role
}

// Service authenticates and authorizes.
type Service struct {
	meta *meta.Store
	dir  Directory
	opts Options
	log  *slog.Logger
	// Tokens is the Docker token issuer and verifier.
	Tokens *Tokens

	logins   singleflight.Group
	mu       sync.Mutex
	verified map[[32]byte]cachedLogin // sha256(user, password) → principal
	limit    *limiter
	audit    *auditor
	// actorKey keys the marker that stands in the audit trail for a failed login's
	// username that looks like a secret.
	actorKey [32]byte
	// external holds OIDC users' groups (clisecret.go); nil without OIDC.
	external ExternalGroups
}

type cachedLogin struct {
	p       *Principal
	expires time.Time
}

// New returns the service. dir may be nil.
func New(m *meta.Store, dir Directory, tokens *Tokens, opts Options, log *slog.Logger) *Service {
	if opts.BasicCacheTTL <= 0 {
		opts.BasicCacheTTL = time.Minute
	}
	if opts.MaxFailures <= 0 {
		opts.MaxFailures = 10
	}
	if opts.FailureWindow <= 0 {
		opts.FailureWindow = 5 * time.Minute
	}
	if opts.MaxFailuresPerAccount <= 0 {
		opts.MaxFailuresPerAccount = 10 * opts.MaxFailures
	}
	if opts.MaxFailuresPerAddress <= 0 {
		opts.MaxFailuresPerAddress = 10 * opts.MaxFailures
	}
	if opts.ProjectCreation == "" {
		opts.ProjectCreation = "everyone"
	}
	s := &Service{meta: m, dir: dir, opts: opts, log: log, Tokens: tokens,
		verified: map[[32]byte]cachedLogin{},
		limit: newLimiter(limits{perPair: opts.MaxFailures, perAccount: opts.MaxFailuresPerAccount,
			perSource: opts.MaxFailuresPerAddress, window: opts.FailureWindow}, nil)}
	_, _ = rand.Read(s.actorKey[:])
	s.audit = newAuditor(m, log)
	return s
}

// Close flushes the audit trail.
func (s *Service) Close() { s.audit.close() }

// HashPassword returns a PBKDF2-HMAC-SHA-256 hash (internal/passwd). The 72-byte cap is
// bcrypt's, kept so a password accepted once is accepted by every Berth version.
func HashPassword(pw string) (string, error) {
	if len(pw) < 8 {
		return "", fmt.Errorf("auth: passwords need at least 8 characters")
	}
	if len(pw) > 72 {
		return "", fmt.Errorf("auth: passwords are at most 72 bytes")
	}
	return passwd.Hash(pw)
}

// Login verifies a username/password pair (a user's password or a robot's secret),
// throttled per account and source (lockout.go), and records the attempt.
func (s *Service) Login(ctx context.Context, username, password, remote string) (*Principal, error) {
	key := sha256.Sum256([]byte(username + "\x00" + password))
	s.mu.Lock()
	c, ok := s.verified[key]
	s.mu.Unlock()
	if ok && time.Now().Before(c.expires) {
		return c.p, nil
	}
	robot := kindOf(username) == "robot"
	if s.limit.locked(username, robot, remote) {
		s.audit.record(meta.AuditEntry{Actor: s.loginActor(ctx, username, password), ActorType: kindOf(username), Action: "login", Result: "denied", Remote: remote, Detail: "rate limited"})
		return nil, ErrTooManyFailures
	}
	// Identical logins arriving together (every client of a CI job when the cache
	// expires) share one hash run instead of each paying for it.
	v, err, _ := s.logins.Do(string(key[:]), func() (any, error) {
		return s.verify(context.WithoutCancel(ctx), username, password)
	})
	p, _ := v.(*Principal)
	if err != nil {
		if errors.Is(err, ErrInvalidCredentials) {
			s.limit.failed(username, robot, remote)
		}
		s.audit.record(meta.AuditEntry{Actor: s.loginActor(ctx, username, password), ActorType: kindOf(username), Action: "login", Result: "failed", Remote: remote, Detail: err.Error()})
		return nil, err
	}
	s.limit.succeeded(username, remote)
	s.audit.record(meta.AuditEntry{Actor: p.Name, ActorType: p.Kind, Action: "login", Result: "ok", Remote: remote})
	exp := time.Now().Add(s.opts.BasicCacheTTL)
	if !p.expires.IsZero() && p.expires.Before(exp) {
		exp = p.expires
	}
	s.mu.Lock()
	if len(s.verified) > 10000 {
		s.verified = map[[32]byte]cachedLogin{}
	}
	s.verified[key] = cachedLogin{p: p, expires: exp}
	s.mu.Unlock()
	return p, nil
}

func kindOf(name string) string {
	if strings.HasPrefix(name, "robot$") {
		return "robot"
	}
	return "user"
}

func (s *Service) verify(ctx context.Context, username, password string) (*Principal, error) {
	if username == "" || password == "" || len(username) > 256 {
		return nil, ErrInvalidCredentials
	}
	if strings.HasPrefix(username, "robot$") {
		return s.verifyRobot(ctx, username, password)
	}
	u, err := s.meta.UserByName(ctx, username)
	if err == nil && u.Source == "oidc" {
		return s.verifyCLISecret(ctx, u, password) // OIDC users have no password (clisecret.go)
	}
	switch {
	case errors.Is(err, meta.ErrNotFound) || (err == nil && u.Source != "local"):
		if s.dir != nil {
			// Directories match names case-insensitively: one account per person.
			if lower := strings.ToLower(username); lower != username {
				if lu, lerr := s.meta.UserByName(ctx, lower); lerr == nil {
					u, err = lu, nil
				} else {
					err = lerr
				}
				username = lower
			}
			if err == nil && u.Source != "ldap" {
				// A local account is opened by its local password only, however the
				// name is spelled: a directory user must never become it.
				passwd.Waste(password)
				return nil, ErrInvalidCredentials
			}
			return s.verifyDirectory(ctx, username, password, u, err == nil)
		}
		passwd.Waste(password)
		return nil, ErrInvalidCredentials
	case err != nil:
		return nil, err
	}
	if u.PasswordHash == "" {
		passwd.Waste(password)
		return nil, ErrInvalidCredentials
	}
	// The hash runs whatever the outcome, so timing does not tell disabled accounts apart.
	rehash, err := passwd.Verify(u.PasswordHash, password)
	if err != nil || u.Disabled {
		return nil, credentialsErr(err)
	}
	if rehash {
		s.rehashUser(ctx, u, password)
	}
	return &Principal{Kind: "user", Name: u.Name, Admin: u.Admin}, nil
}

func (s *Service) verifyDirectory(ctx context.Context, username, password string, u meta.User, known bool) (*Principal, error) {
	groups, email, err := s.dir.Authenticate(ctx, username, password)
	if errors.Is(err, ErrInvalidCredentials) {
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDirectoryDown, err)
	}
	if !known {
		// First login: a directory user gets a local row (no password) for memberships.
		if u, err = s.meta.CreateUser(ctx, meta.User{Name: username, Email: email, Source: "ldap"}); err != nil && !errors.Is(err, meta.ErrExists) {
			return nil, err
		}
	}
	if u.Disabled {
		return nil, ErrInvalidCredentials
	}
	return &Principal{Kind: "user", Name: username, Admin: u.Admin, Groups: groups, Directory: true}, nil
}

func (s *Service) verifyRobot(ctx context.Context, name, secret string) (*Principal, error) {
	r, err := s.meta.RobotByName(ctx, name)
	if errors.Is(err, meta.ErrNotFound) {
		passwd.Waste(secret)
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, err
	}
	rehash, err := passwd.Verify(r.SecretHash, secret)
	if err != nil {
		return nil, credentialsErr(err)
	}
	if r.Disabled || (!r.ExpiresAt.IsZero() && time.Now().After(r.ExpiresAt)) {
		return nil, ErrInvalidCredentials
	}
	if rehash {
		s.rehashRobot(ctx, r, secret)
	}
	var perms []RobotPermission
	if err := json.Unmarshal([]byte(r.Permissions), &perms); err != nil {
		return nil, fmt.Errorf("auth: robot %s permissions: %w", name, err)
	}
	if r.Project != "" {
		// A project robot never reaches beyond its project, whatever its list says.
		for i := range perms {
			perms[i].Project = r.Project
		}
	}
	return &Principal{Kind: "robot", Name: name, RobotPerms: perms, expires: r.ExpiresAt}, nil
}

// Forget drops the cached verified logins of the named account, so that a changed
// password or secret, a disabled or deleted account, or changed rights take effect on
// this replica at once (on other replicas within BasicCacheTTL; tokens already issued
// live out their lifetime).
func (s *Service) Forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.verified {
		if c.p.Name == name {
			delete(s.verified, k)
		}
	}
}

// Allowed returns which of want the principal may do on repo ("" with Catalog for the
// registry-wide listing). It never fails for missing rights: it grants less.
func (s *Service) Allowed(ctx context.Context, p *Principal, repo string, want []Action) ([]Action, error) {
	if repo == "" {
		if slices.Contains(want, Catalog) && p.Kind != "anonymous" {
			return []Action{Catalog}, nil
		}
		return nil, nil
	}
	if p.Admin {
		return intersect(want, []Action{Pull, Push, Delete}), nil
	}
	project := oci.Project(repo)
	have := map[Action]bool{}
	if slices.Contains(s.opts.PublicPrefixes, project) {
		have[Pull] = true
	}
	switch p.Kind {
	case "robot":
		for _, perm := range p.RobotPerms {
			if perm.Project == project || perm.Project == "*" {
				for _, a := range perm.Actions {
					have[a] = true
				}
			}
		}
		if !have[Pull] {
			// Public projects are readable by every caller, robots included.
			_, _, public, err := s.meta.Roles(ctx, project, nil)
			if err != nil {
				return nil, err
			}
			have[Pull] = public
		}
	default:
		best, exists, public, err := s.ProjectRole(ctx, p, project)
		if err != nil {
			return nil, err
		}
		if public {
			have[Pull] = true
		}
		for _, a := range roleActions[best] {
			have[a] = true
		}
		if !exists && p.Kind == "user" && s.opts.ProjectCreation == "everyone" && !s.opts.ExplicitProjects &&
			!slices.Contains(s.opts.PublicPrefixes, project) {
			creatable, err := s.unclaimed(ctx, project)
			if err != nil {
				return nil, err
			}
			if creatable {
				// The first push creates the project with the pusher as its admin.
				for _, a := range roleActions[Admin] {
					have[a] = true
				}
			}
		}
	}
	var out []Action
	for _, a := range want {
		if have[a] {
			out = append(out, a)
		}
	}
	return out, nil
}

// ProjectRole returns the highest role p holds in project through its own membership,
// its groups' memberships and the configured group mappings ("" for none; robots and
// the anonymous caller hold none), and whether the project exists and is public. A
// system administrator's standing is p.Admin, not a role.
func (s *Service) ProjectRole(ctx context.Context, p *Principal, project string) (role Role, exists, public bool, err error) {
	var principals []string
	if p.Kind != "anonymous" && p.Kind != "robot" {
		principals = append(principals, "user:"+p.Name)
		for _, g := range p.Groups {
			principals = append(principals, "group:"+g)
		}
	}
	roles, exists, public, err := s.meta.Roles(ctx, project, principals)
	if err != nil {
		return "", false, false, err
	}
	for _, g := range p.Groups {
		if r, ok := s.opts.GroupRoles[g][project]; ok {
			roles = append(roles, string(r))
		}
	}
	for _, r := range roles {
		if roleRank[Role(r)] > roleRank[role] {
			role = Role(r)
		}
	}
	return role, exists, public, nil
}

func intersect(want, have []Action) []Action {
	var out []Action
	for _, a := range want {
		if slices.Contains(have, a) {
			out = append(out, a)
		}
	}
	return out
}

// unclaimed tells whether a project without a row may be created by a push: only when
// nothing is stored under its name. Repositories without a project (pushed while
// authentication was off, or racing a project delete) belong to the system
// administrators: the project is adopted for them on the spot, private and without
// members, instead of going to whoever pushes to the name first.
func (s *Service) unclaimed(ctx context.Context, project string) (bool, error) {
	has, err := s.meta.HasRepositories(ctx, project)
	if err != nil || !has {
		return !has, err
	}
	if err := s.Adopt(ctx, project); err != nil {
		return false, err
	}
	return false, nil
}

// Adopt gives repositories stored without a project a private project with no members,
// so only system administrators reach them until they grant roles.
func (s *Service) Adopt(ctx context.Context, project string) error {
	_, err := s.meta.CreateProject(ctx, meta.Project{Name: project}, "", "")
	if errors.Is(err, meta.ErrExists) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.Warn("adopted repositories that had no project: private, system administrators only", "project", project)
	s.audit.record(meta.AuditEntry{Actor: "berth", ActorType: "system", Action: "project.adopt", Resource: project, Result: "ok", Remote: "local",
		Detail: "repositories without a project; private, no members"})
	return nil
}

// ErrProjectTaken reports a push that was to create a project someone else created first.
var ErrProjectTaken = errors.New("auth: the project was created by someone else meanwhile")

// EnsureProject creates the project of repo on its first push, with the pusher as admin
// (robots and anonymous callers never create projects). The right to push may have
// been granted as "the one who creates it" while the project did not exist; if someone
// else created it since, the push is refused with ErrProjectTaken unless the project
// as it now stands lets the pusher push.
func (s *Service) EnsureProject(ctx context.Context, p *Principal, repo string) error {
	project := oci.Project(repo)
	if slices.Contains(s.opts.PublicPrefixes, project) {
		return nil
	}
	_, err := s.meta.ProjectByName(ctx, project)
	if errors.Is(err, meta.ErrNotFound) {
		principal := ""
		if p.Kind == "user" {
			principal = "user:" + p.Name
		}
		_, err = s.meta.CreateProject(ctx, meta.Project{Name: project}, principal, string(Admin))
		if err == nil {
			s.audit.record(meta.AuditEntry{Actor: p.Name, ActorType: p.Kind, Action: "project.create", Resource: project, Result: "ok"})
			return nil
		}
	}
	if err != nil && !errors.Is(err, meta.ErrExists) {
		return err
	}
	got, err := s.Allowed(ctx, p, repo, []Action{Push})
	if err != nil {
		return err
	}
	if len(got) == 0 {
		return ErrProjectTaken
	}
	return nil
}

// Record adds an entry to the audit trail (asynchronously, batched).
func (s *Service) Record(e meta.AuditEntry) { s.audit.record(e) }

// AuditStats counts the audit trail's written, collapsed and dropped entries.
func (s *Service) AuditStats() AuditStats { return s.audit.stats() }

// Principal rebuilds the principal a token names, from the database: a refresh token
// must not outlive a deleted or disabled account, and listings need current rights.
func (s *Service) Principal(ctx context.Context, kind, name string, groups []string) (*Principal, error) {
	switch kind {
	case "anonymous":
		return Anonymous, nil
	case "robot":
		r, err := s.meta.RobotByName(ctx, name)
		if errors.Is(err, meta.ErrNotFound) {
			return nil, ErrInvalidCredentials
		}
		if err != nil {
			return nil, err
		}
		if r.Disabled || (!r.ExpiresAt.IsZero() && time.Now().After(r.ExpiresAt)) {
			return nil, ErrInvalidCredentials
		}
		var perms []RobotPermission
		if err := json.Unmarshal([]byte(r.Permissions), &perms); err != nil {
			return nil, err
		}
		if r.Project != "" {
			for i := range perms {
				perms[i].Project = r.Project
			}
		}
		return &Principal{Kind: "robot", Name: name, RobotPerms: perms}, nil
	}
	u, err := s.meta.UserByName(ctx, name)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, ErrInvalidCredentials
	}
	if u.Source == "oidc" {
		// The groups of the last OIDC login, fresher than those a token carries.
		if groups, err = s.externalGroups(ctx, name); err != nil {
			return nil, err
		}
	}
	return &Principal{Kind: "user", Name: name, Admin: u.Admin, Groups: groups}, nil
}
