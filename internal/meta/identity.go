package meta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrExists reports a unique name that is already taken.
var ErrExists = errors.New("meta: already exists")

// User is a local or directory (LDAP) account.
type User struct {
	ID           int64
	Name         string
	PasswordHash string // PBKDF2 or legacy bcrypt (internal/passwd); empty for directory users
	Email        string
	Admin        bool // system administrator
	Source       string
	Disabled     bool
	CreatedAt    time.Time
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CreateUser adds a user; ErrExists when the name is taken.
func (s *Store) CreateUser(ctx context.Context, u User) (User, error) {
	if u.Source == "" {
		u.Source = "local"
	}
	res, err := s.exec(ctx, `INSERT INTO users (name, password_hash, email, admin, source, disabled, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING`,
		u.Name, u.PasswordHash, u.Email, b2i(u.Admin), u.Source, b2i(u.Disabled), now())
	if err != nil {
		return User{}, fmt.Errorf("meta: create user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return User{}, ErrExists
	}
	return s.UserByName(ctx, u.Name)
}

// UserByName returns a user.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	var u User
	var admin, disabled int
	var created int64
	err := s.read(ctx, `SELECT id, name, password_hash, email, admin, source, disabled, created_at FROM users WHERE name = $1`, name).
		Scan(&u.ID, &u.Name, &u.PasswordHash, &u.Email, &admin, &u.Source, &disabled, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("meta: user %s: %w", name, err)
	}
	u.Admin, u.Disabled, u.CreatedAt = admin == 1, disabled == 1, time.UnixMilli(created)
	return u, nil
}

// UpdateUser rewrites a user's password hash, email, admin and disabled flags.
func (s *Store) UpdateUser(ctx context.Context, u User) error {
	res, err := s.exec(ctx, `UPDATE users SET password_hash = $1, email = $2, admin = $3, disabled = $4 WHERE name = $5`,
		u.PasswordHash, u.Email, b2i(u.Admin), b2i(u.Disabled), u.Name)
	if err != nil {
		return fmt.Errorf("meta: update user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteUser removes a user and their memberships.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = $1`, name)
		if err != nil {
			return fmt.Errorf("meta: delete user: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM members WHERE principal = $1`, "user:"+name)
		return err
	})
}

// Users lists users after last by name, at most n.
func (s *Store) Users(ctx context.Context, last string, n int) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, email, admin, source, disabled, created_at FROM users
		WHERE name > $1 ORDER BY name LIMIT $2`, last, n)
	if err != nil {
		return nil, fmt.Errorf("meta: users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var admin, disabled int
		var created int64
		if err := rows.Scan(&u.ID, &u.Name, &u.Email, &admin, &u.Source, &disabled, &created); err != nil {
			return nil, err
		}
		u.Admin, u.Disabled, u.CreatedAt = admin == 1, disabled == 1, time.UnixMilli(created)
		out = append(out, u)
	}
	return out, rows.Err()
}

// Project is a tenancy unit: the first path component of its repositories.
type Project struct {
	ID        int64
	Name      string
	Public    bool
	CreatedAt time.Time
}

// CreateProject adds a project, optionally with a first member; ErrExists when taken.
func (s *Store) CreateProject(ctx context.Context, p Project, principal, role string) (Project, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO projects (name, public, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO NOTHING RETURNING id`, p.Name, b2i(p.Public), now()).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrExists
		}
		if err != nil {
			return fmt.Errorf("meta: create project: %w", err)
		}
		if principal != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO members (project_id, principal, role) VALUES ($1, $2, $3)`, id, principal, role); err != nil {
				return fmt.Errorf("meta: add member: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return Project{}, err
	}
	return s.ProjectByName(ctx, p.Name)
}

// ProjectByName returns a project.
func (s *Store) ProjectByName(ctx context.Context, name string) (Project, error) {
	var p Project
	var public int
	var created int64
	err := s.read(ctx, `SELECT id, name, public, created_at FROM projects WHERE name = $1`, name).Scan(&p.ID, &p.Name, &public, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Project{}, ErrNotFound
	}
	if err != nil {
		return Project{}, fmt.Errorf("meta: project %s: %w", name, err)
	}
	p.Public, p.CreatedAt = public == 1, time.UnixMilli(created)
	return p, nil
}

// SetProjectPublic changes a project's visibility.
func (s *Store) SetProjectPublic(ctx context.Context, name string, public bool) error {
	res, err := s.exec(ctx, `UPDATE projects SET public = $1 WHERE name = $2`, b2i(public), name)
	if err != nil {
		return fmt.Errorf("meta: update project: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ErrNotEmpty reports a project that still has repositories.
var ErrNotEmpty = errors.New("meta: project still has repositories")

// DeleteProject removes a project with its members and project robots. A project that
// still has repositories is not deleted (ErrNotEmpty): the check and the delete are one
// transaction, so no repository the check saw can be left without its owner. One
// created by a push racing the delete is left ownerless, which package auth treats as
// owned by the system administrators (see HasRepositories).
func (s *Store) DeleteProject(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM projects WHERE name = $1`, name).Scan(&id); errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		if has, err := hasRepositories(ctx, tx, name); err != nil {
			return err
		} else if has {
			return ErrNotEmpty
		}
		for _, q := range []string{`DELETE FROM members WHERE project_id = $1`, `DELETE FROM robots WHERE project_id = $1`, `DELETE FROM projects WHERE id = $1`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("meta: delete project: %w", err)
			}
		}
		return nil
	})
}

// ProjectExists tells whether a project row exists.
func (s *Store) ProjectExists(ctx context.Context, name string) (bool, error) {
	var id int64
	err := s.read(ctx, `SELECT id FROM projects WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("meta: project %s: %w", name, err)
	}
	return true, nil
}

// HasRepositories tells whether any repository belongs to the project: one named like
// it or under "<project>/".
func (s *Store) HasRepositories(ctx context.Context, project string) (bool, error) {
	return hasRepositories(ctx, readQuerier{s}, project)
}

// readQuerier runs single-row reads through the store's prepared read statements.
type readQuerier struct{ s *Store }

func (q readQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.s.read(ctx, query, args...)
}

// Names under "<p>/" sort between "<p>/" and "<p>0" ('0' follows '/'), so one index
// range answers.
func hasRepositories(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, project string) (bool, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = $1 OR (name >= $2 AND name < $3) LIMIT 1`,
		project, project+"/", project+"0").Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("meta: repositories of project %s: %w", project, err)
	}
	return true, nil
}

// UnownedProjects lists the projects that have repositories but no project row (pushed
// while authentication was off, or racing a project delete), skipping the names skip
// reports true for (the mirror's cache namespaces). One indexed query per project.
func (s *Store) UnownedProjects(ctx context.Context, skip func(project string) bool) ([]string, error) {
	var out []string
	for last := ""; ; {
		names, err := s.Repositories(ctx, last, 1)
		if err != nil || len(names) == 0 {
			return out, err
		}
		p := names[0]
		if i := strings.IndexByte(p, '/'); i >= 0 {
			p = p[:i]
		}
		last = p + "0" // past every "<p>/..." name; "<p>" itself sorts before them
		if skip != nil && skip(p) {
			continue
		}
		if ok, err := s.ProjectExists(ctx, p); err != nil {
			return nil, err
		} else if !ok && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
}

// Projects lists projects after last by name, at most n.
func (s *Store) Projects(ctx context.Context, last string, n int) ([]Project, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, public, created_at FROM projects WHERE name > $1 ORDER BY name LIMIT $2`, last, n)
	if err != nil {
		return nil, fmt.Errorf("meta: projects: %w", err)
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		var p Project
		var public int
		var created int64
		if err := rows.Scan(&p.ID, &p.Name, &public, &created); err != nil {
			return nil, err
		}
		p.Public, p.CreatedAt = public == 1, time.UnixMilli(created)
		out = append(out, p)
	}
	return out, rows.Err()
}

// Member is a principal's role in a project.
type Member struct {
	Project   string
	Principal string // user:<name> or group:<group>
	Role      string
}

// SetMember adds or changes a member's role.
func (s *Store) SetMember(ctx context.Context, m Member) error {
	res, err := s.exec(ctx, `INSERT INTO members (project_id, principal, role)
		SELECT id, $2, $3 FROM projects WHERE name = $1
		ON CONFLICT (project_id, principal) DO UPDATE SET role = excluded.role`, m.Project, m.Principal, m.Role)
	if err != nil {
		return fmt.Errorf("meta: set member: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// RemoveMember removes a principal from a project.
func (s *Store) RemoveMember(ctx context.Context, project, principal string) error {
	res, err := s.exec(ctx, `DELETE FROM members WHERE principal = $2
		AND project_id = (SELECT id FROM projects WHERE name = $1)`, project, principal)
	if err != nil {
		return fmt.Errorf("meta: remove member: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Members lists a project's members.
func (s *Store) Members(ctx context.Context, project string) ([]Member, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT m.principal, m.role FROM members m JOIN projects p ON p.id = m.project_id
		WHERE p.name = $1 ORDER BY m.principal`, project)
	if err != nil {
		return nil, fmt.Errorf("meta: members: %w", err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		m := Member{Project: project}
		if err := rows.Scan(&m.Principal, &m.Role); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Roles returns the roles any of principals has in the project, and whether the project
// exists and is public.
func (s *Store) Roles(ctx context.Context, project string, principals []string) (roles []string, exists, public bool, err error) {
	p, err := s.ProjectByName(ctx, project)
	if errors.Is(err, ErrNotFound) {
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, err
	}
	for _, pr := range principals {
		var role string
		err := s.read(ctx, `SELECT role FROM members WHERE project_id = $1 AND principal = $2`, p.ID, pr).Scan(&role)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, true, p.Public, fmt.Errorf("meta: member role: %w", err)
		}
		roles = append(roles, role)
	}
	return roles, true, p.Public, nil
}

// Robot is a non-human account with explicit permissions.
type Robot struct {
	ID          int64
	Name        string
	Project     string // "" for a system robot
	SecretHash  string
	Permissions string // JSON, interpreted by package auth
	ExpiresAt   time.Time
	Disabled    bool
	CreatedAt   time.Time
}

// CreateRobot adds a robot; ErrExists when the name is taken, ErrNotFound when its
// project does not exist.
func (s *Store) CreateRobot(ctx context.Context, r Robot) (Robot, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var projectID any
		if r.Project != "" {
			var id int64
			if err := tx.QueryRowContext(ctx, `SELECT id FROM projects WHERE name = $1`, r.Project).Scan(&id); errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			} else if err != nil {
				return err
			}
			projectID = id
		}
		var expires int64
		if !r.ExpiresAt.IsZero() {
			expires = r.ExpiresAt.UnixMilli()
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO robots (name, project_id, secret_hash, permissions, expires_at, disabled, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING`,
			r.Name, projectID, r.SecretHash, r.Permissions, expires, b2i(r.Disabled), now())
		if err != nil {
			return fmt.Errorf("meta: create robot: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrExists
		}
		return nil
	})
	if err != nil {
		return Robot{}, err
	}
	return s.RobotByName(ctx, r.Name)
}

const robotColumns = `r.id, r.name, COALESCE(p.name, ''), r.secret_hash, r.permissions, r.expires_at, r.disabled, r.created_at`

func scanRobot(sc interface{ Scan(...any) error }) (Robot, error) {
	var r Robot
	var expires, created int64
	var disabled int
	if err := sc.Scan(&r.ID, &r.Name, &r.Project, &r.SecretHash, &r.Permissions, &expires, &disabled, &created); err != nil {
		return Robot{}, err
	}
	if expires > 0 {
		r.ExpiresAt = time.UnixMilli(expires)
	}
	r.Disabled, r.CreatedAt = disabled == 1, time.UnixMilli(created)
	return r, nil
}

// RobotByName returns a robot.
func (s *Store) RobotByName(ctx context.Context, name string) (Robot, error) {
	r, err := scanRobot(s.read(ctx, `SELECT `+robotColumns+` FROM robots r LEFT JOIN projects p ON p.id = r.project_id WHERE r.name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Robot{}, ErrNotFound
	}
	if err != nil {
		return Robot{}, fmt.Errorf("meta: robot %s: %w", name, err)
	}
	return r, nil
}

// UpdateRobot rewrites a robot's secret hash, permissions, expiry and disabled flag.
func (s *Store) UpdateRobot(ctx context.Context, r Robot) error {
	var expires int64
	if !r.ExpiresAt.IsZero() {
		expires = r.ExpiresAt.UnixMilli()
	}
	res, err := s.exec(ctx, `UPDATE robots SET secret_hash = $1, permissions = $2, expires_at = $3, disabled = $4 WHERE name = $5`,
		r.SecretHash, r.Permissions, expires, b2i(r.Disabled), r.Name)
	if err != nil {
		return fmt.Errorf("meta: update robot: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteRobot removes a robot.
func (s *Store) DeleteRobot(ctx context.Context, name string) error {
	res, err := s.exec(ctx, `DELETE FROM robots WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("meta: delete robot: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Robots lists robots, of one project when project is set.
func (s *Store) Robots(ctx context.Context, project string) ([]Robot, error) {
	q := `SELECT ` + robotColumns + ` FROM robots r LEFT JOIN projects p ON p.id = r.project_id`
	var args []any
	if project != "" {
		q += ` WHERE p.name = $1`
		args = append(args, project)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY r.name`, args...)
	if err != nil {
		return nil, fmt.Errorf("meta: robots: %w", err)
	}
	defer rows.Close()
	var out []Robot
	for rows.Next() {
		r, err := scanRobot(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SigningKey returns the token signing key, creating it with generate on first use. The
// first replica's key wins a race; every replica then signs with it.
func (s *Store) SigningKey(ctx context.Context, generate func() (id, pem string, err error)) (id, pem string, err error) {
	err = s.read(ctx, `SELECT id, private_pem FROM signing_keys ORDER BY created_at, id LIMIT 1`).Scan(&id, &pem)
	if err == nil {
		return id, pem, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("meta: signing key: %w", err)
	}
	newID, newPEM, err := generate()
	if err != nil {
		return "", "", err
	}
	if _, err := s.exec(ctx, `INSERT INTO signing_keys (id, private_pem, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, newID, newPEM, now()); err != nil {
		return "", "", fmt.Errorf("meta: store signing key: %w", err)
	}
	err = s.r.QueryRowContext(ctx, `SELECT id, private_pem FROM signing_keys ORDER BY created_at, id LIMIT 1`).Scan(&id, &pem)
	return id, pem, err
}

// AuditEntry is one recorded action.
type AuditEntry struct {
	ID        int64
	At        time.Time
	Actor     string
	ActorType string // user, robot, anonymous
	Action    string // login, push, pull, delete, member, project, user, robot
	Resource  string
	Result    string // ok, denied, failed
	Remote    string
	Detail    string
}

// AppendAudit records entries in one transaction.
func (s *Store) AppendAudit(ctx context.Context, entries []AuditEntry) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// One prepared statement per batch: preparing per row was half the cost.
		st, err := tx.PrepareContext(ctx, `INSERT INTO audit_log (at, actor, actor_type, action, resource, result, remote, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`)
		if err != nil {
			return fmt.Errorf("meta: audit: %w", err)
		}
		defer st.Close()
		for _, e := range entries {
			if _, err := st.ExecContext(ctx, e.At.UnixMilli(), e.Actor, e.ActorType, e.Action, e.Resource, e.Result, e.Remote, e.Detail); err != nil {
				return fmt.Errorf("meta: audit: %w", err)
			}
		}
		return nil
	})
}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Actor, Action, Resource, Result string
	Since, Until                    time.Time
	BeforeID                        int64 // keyset pagination: entries older than this id
	Limit                           int
	// Projects, when not nil, keeps only entries about these projects: resources that
	// are the project itself ("team"), one of its repositories ("team/app:v1",
	// "team:v1") or one of its robots ("robot$team+ci"). Empty and not nil matches none.
	Projects []string
}

// likeEscaper escapes LIKE wildcards (with ESCAPE '\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Audit lists entries newest first.
func (s *Store) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	q := `SELECT id, at, actor, actor_type, action, resource, result, remote, detail FROM audit_log WHERE 1 = 1`
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND "+cond, len(args))
	}
	if f.Actor != "" {
		add("actor = $%d", f.Actor)
	}
	if f.Action != "" {
		add("action = $%d", f.Action)
	}
	if f.Resource != "" {
		add("resource = $%d", f.Resource)
	}
	if f.Result != "" {
		add("result = $%d", f.Result)
	}
	if !f.Since.IsZero() {
		add("at >= $%d", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("at < $%d", f.Until.UnixMilli())
	}
	if f.BeforeID > 0 {
		add("id < $%d", f.BeforeID)
	}
	if f.Projects != nil {
		var or []string
		for _, p := range f.Projects {
			e := likeEscaper.Replace(p)
			args = append(args, p, e+"/%", e+":%", "robot$"+e+"+%")
			n := len(args)
			or = append(or, fmt.Sprintf(`resource = $%d OR resource LIKE $%d ESCAPE '\' OR resource LIKE $%d ESCAPE '\' OR resource LIKE $%d ESCAPE '\'`, n-3, n-2, n-1, n))
		}
		if len(or) == 0 {
			or = []string{"1 = 0"}
		}
		q += " AND (" + strings.Join(or, " OR ") + ")"
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("meta: audit query: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.ActorType, &e.Action, &e.Resource, &e.Result, &e.Remote, &e.Detail); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PruneAudit deletes entries older than before.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM audit_log WHERE at < $1`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("meta: prune audit: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// ReplaceUserHash swaps a user's password hash for newHash only while it is still
// oldHash, so upgrading a hash at login never overwrites a concurrent change (a new
// password, a disabled flag). It reports whether the row changed.
func (s *Store) ReplaceUserHash(ctx context.Context, name, oldHash, newHash string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE users SET password_hash = $1 WHERE name = $2 AND password_hash = $3`, newHash, name, oldHash)
	if err != nil {
		return false, fmt.Errorf("meta: replace user hash: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReplaceRobotHash is ReplaceUserHash for a robot's secret hash.
func (s *Store) ReplaceRobotHash(ctx context.Context, name, oldHash, newHash string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE robots SET secret_hash = $1 WHERE name = $2 AND secret_hash = $3`, newHash, name, oldHash)
	if err != nil {
		return false, fmt.Errorf("meta: replace robot hash: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// BcryptHashes names the users and robots whose hash is still bcrypt (written before
// Berth hashed with PBKDF2), at most limit of each: FIPS 140-3 mode refuses them.
func (s *Store) BcryptHashes(ctx context.Context, limit int) (users, robots []string, err error) {
	for _, q := range []struct {
		sql string
		out *[]string
	}{
		{`SELECT name FROM users WHERE password_hash LIKE '$2%' ORDER BY name LIMIT $1`, &users},
		{`SELECT name FROM robots WHERE secret_hash LIKE '$2%' ORDER BY name LIMIT $1`, &robots},
	} {
		rows, err := s.r.QueryContext(ctx, q.sql, limit)
		if err != nil {
			return nil, nil, fmt.Errorf("meta: bcrypt hashes: %w", err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("meta: bcrypt hashes: %w", err)
			}
			*q.out = append(*q.out, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("meta: bcrypt hashes: %w", err)
		}
	}
	return users, robots, nil
}
