// Package meta owns Berth's metadata: repositories, blobs and where they are visible,
// manifests and their references, tags, referrers and upload sessions, as rows in SQL.
// One implementation serves the embedded SQLite database and PostgreSQL: the queries use
// only syntax both accept ($N placeholders, ON CONFLICT, RETURNING, keyset pagination);
// only the schema DDL differs, in migrations/<dialect>.
package meta

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-registry/berth/internal/metacache"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations
var migrations embed.FS

// ErrNotFound reports a row that does not exist.
var ErrNotFound = errors.New("meta: not found")

// Dialect names a supported database engine.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Options configure Open.
type Options struct {
	Dialect Dialect
	// DSN is a file path for SQLite and a connection URL for PostgreSQL.
	DSN string
	// SQLiteSynchronous is the SQLite synchronous pragma: FULL (default) makes every
	// acknowledged write survive power loss; NORMAL survives process crashes only.
	SQLiteSynchronous string
	// MaxOpenConns bounds the read pool (and the whole pool on PostgreSQL).
	MaxOpenConns int
	// CacheBytes bounds the in-process cache of manifest and blob lookups (cache.go);
	// 0 turns it off. SQLite only: on PostgreSQL other replicas write too.
	CacheBytes int64
}

// Store is the metadata database. It is safe for concurrent use.
type Store struct {
	dialect Dialect
	// sync is SQLite's synchronous setting for data (FULL, NORMAL or EXTRA).
	sync string
	// SQLite allows one writer: writes go through a single connection so they queue in
	// Go instead of failing with SQLITE_BUSY, and reads use their own pool under WAL.
	// On PostgreSQL both are the same pool.
	w *sql.DB
	r *sql.DB
	// stmts caches prepared read statements: on SQLite, parsing and planning a query
	// costs more than running it (a third of a manifest GET's CPU).
	stmts sync.Map // query string → *sql.Stmt on r
	// wstmts is stmts for the statements repeated inside write transactions (a
	// manifest's references, its tags): 200 layers are no prepare at all, not 200.
	wstmts sync.Map // query string → *sql.Stmt on w
	// tightened names SQLite files found readable by others and set to 0600 at open.
	tightened []string
	// hook sees every manifest and tag change inside its transaction (changes.go).
	hook hookSlot
	// rc caches hot reads on SQLite (cache.go); nil without one.
	rc *readCache
}

// Tightened lists the database files that were readable by group or others when the
// store opened and were set to 0600; callers warn about them (the key may have leaked).
func (s *Store) Tightened() []string { return s.tightened }

// Open connects, applies pending migrations and returns a ready store.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 8
	}
	s := &Store{dialect: o.Dialect}
	switch o.Dialect {
	case SQLite:
		if err := os.MkdirAll(filepath.Dir(o.DSN), 0o750); err != nil {
			return nil, fmt.Errorf("meta: create database dir: %w", err)
		}
		tightened, terr := securePrivateFiles(o.DSN)
		if terr != nil {
			return nil, terr
		}
		s.tightened = tightened
		sync := strings.ToUpper(o.SQLiteSynchronous)
		if sync == "" {
			sync = "FULL"
		}
		if sync != "FULL" && sync != "NORMAL" && sync != "EXTRA" {
			return nil, fmt.Errorf("meta: sqlite synchronous must be FULL, NORMAL or EXTRA, not %q", o.SQLiteSynchronous)
		}
		s.sync = sync
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+sync+")")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_txlock", "immediate")
		// The path goes into an SQLite URI: escape what would end it ('?', '#') or be
		// decoded ('%'), so any directory name opens the intended file.
		path := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(o.DSN)
		dsn := "file:" + path + "?" + q.Encode()
		var err error
		if s.w, err = sql.Open("sqlite", dsn); err != nil {
			return nil, fmt.Errorf("meta: open sqlite: %w", err)
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetConnMaxLifetime(0)
		if s.r, err = sql.Open("sqlite", dsn); err != nil {
			s.w.Close()
			return nil, fmt.Errorf("meta: open sqlite: %w", err)
		}
		s.r.SetMaxOpenConns(o.MaxOpenConns)
		s.r.SetMaxIdleConns(o.MaxOpenConns)
	case Postgres:
		db, err := sql.Open("pgx", o.DSN)
		if err != nil {
			return nil, fmt.Errorf("meta: open postgres: %w", err)
		}
		db.SetMaxOpenConns(o.MaxOpenConns)
		db.SetMaxIdleConns(o.MaxOpenConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s.w, s.r = db, db
	default:
		return nil, fmt.Errorf("meta: unknown dialect %q (want sqlite or postgres)", o.Dialect)
	}
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("meta: connect %s: %w", o.Dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepareWrites(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if o.CacheBytes > 0 && s.dialect == SQLite {
		s.rc = &readCache{c: metacache.New(o.CacheBytes), seen: -1}
		s.rc.dirty.Store(true) // the first read takes the count
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations/"+string(s.dialect))
	if err != nil {
		return err
	}
	// Capabilities own their migrations and numbers are handed out as work starts, so
	// a database may have applied a later number before an earlier one lands; each
	// capability's tables are its own, so applying the late one afterwards is safe.
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true)}
	dialect := goose.DialectSQLite3
	if s.dialect == Postgres {
		dialect = goose.DialectPostgres
		// Replicas starting together must not migrate at once.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.w, dir, opts...)
	if err != nil {
		return fmt.Errorf("meta: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("meta: migrate: %w", err)
	}
	return nil
}

// read runs a single-row read query through a cached prepared statement.
func (s *Store) read(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = s.readContext(ctx)
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	st, err := s.r.PrepareContext(ctx, query)
	if err != nil {
		return s.r.QueryRowContext(ctx, query, args...) // carries the error
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st.QueryRowContext(ctx, args...)
}

// ptx is a write transaction whose statements run through the writer's prepared
// statements when preparedWrites has them: every push runs them per blob and tag, and
// on SQLite parsing one costs more than running it.
type ptx struct {
	*sql.Tx
	s *Store
}

// prepared wraps tx for the push path's statements.
func (s *Store) prepared(tx *sql.Tx) ptx { return ptx{Tx: tx, s: s} }

func (p ptx) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := p.s.wstmts.Load(query); ok {
		return p.Tx.StmtContext(ctx, st.(*sql.Stmt))
	}
	return nil
}

func (p ptx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.Tx.ExecContext(ctx, query, args...)
}

func (p ptx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.Tx.QueryRowContext(ctx, query, args...)
}

// prepareWrites prepares preparedWrites on the writer. It runs at Open, before any
// transaction: on SQLite the writer is one connection, and preparing on it from inside
// a transaction would wait for that transaction forever.
func (s *Store) prepareWrites(ctx context.Context) error {
	for _, q := range preparedWrites {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("meta: prepare %.40s…: %w", q, err)
		}
		s.wstmts.Store(q, st)
	}
	return nil
}

// readRows is read for multi-row queries.
func (s *Store) readRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = s.readContext(ctx)
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt).QueryContext(ctx, args...)
	}
	st, err := s.r.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st.QueryContext(ctx, args...)
}

// readContext drops cancellation from SQLite reads: they take microseconds, and a
// cancellable context makes the driver start a watcher per query (a tenth of a manifest
// GET's CPU). PostgreSQL reads stay cancellable.
func (s *Store) readContext(ctx context.Context) context.Context {
	if s.dialect == SQLite {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// Close releases the database.
func (s *Store) Close() error {
	for _, m := range []*sync.Map{&s.stmts, &s.wstmts} {
		m.Range(func(_, v any) bool {
			v.(*sql.Stmt).Close()
			return true
		})
	}
	var err error
	if s.w != nil {
		err = s.w.Close()
	}
	if s.r != nil && s.r != s.w {
		if e := s.r.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Ping checks the database answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error { return s.r.PingContext(ctx) }

// Dialect reports which engine backs the store.
func (s *Store) Dialect() Dialect { return s.dialect }

func now() int64 { return time.Now().UnixMilli() }

// inTx runs fn in a write transaction.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("meta: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	err = tx.Commit()
	s.wrote() // also after a failed commit: whether it applied cannot be known
	if err != nil {
		return fmt.Errorf("meta: commit: %w", err)
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const upsertRepository = `INSERT INTO repositories (name, created_at, updated_at) VALUES ($1, $2, $2)
	ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at RETURNING id`

// ensureRepository returns the id of the named repository, creating it.
func ensureRepository(ctx context.Context, q querier, name string) (int64, error) {
	var id int64
	t := now()
	err := q.QueryRowContext(ctx, upsertRepository, name, t).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("meta: ensure repository %s: %w", name, err)
	}
	return id, nil
}

func repositoryID(ctx context.Context, q querier, name string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("meta: repository %s: %w", name, err)
	}
	return id, nil
}

// RepositoryExists tells whether the repository has been created.
func (s *Store) RepositoryExists(ctx context.Context, name string) (bool, error) {
	var id int64
	err := s.read(ctx, `SELECT id FROM repositories WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("meta: repository %s: %w", name, err)
	}
	return true, nil
}

// Repositories lists repository names after last in lexical order, at most n.
func (s *Store) Repositories(ctx context.Context, last string, n int) ([]string, error) {
	rows, err := s.readRows(ctx, `SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2`, last, n)
	if err != nil {
		return nil, fmt.Errorf("meta: list repositories: %w", err)
	}
	return scanStrings(rows)
}

// DeleteRepository removes a repository with its tags, manifests, blob links and uploads.
// Blob bytes stay until garbage collection finds them unreferenced. It returns the upload
// handles that were open so the caller can discard their bytes.
func (s *Store) DeleteRepository(ctx context.Context, name string) (uploadHandles []string, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// The repository row is locked first, as every push does (ensureRepository's
		// upsert): taken last, a push holding it and waiting for a link or manifest row
		// this delete holds deadlocks with it on PostgreSQL.
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = $1`+s.DB().ForUpdate(), name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("meta: lock repository %s: %w", name, err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT handle FROM uploads WHERE repository_id = $1`, id)
		if err != nil {
			return err
		}
		if uploadHandles, err = scanStrings(rows); err != nil {
			return err
		}
		if err := s.repositoryDeleted(ctx, tx, name, id); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM tags WHERE repository_id = $1`,
			`DELETE FROM manifest_references WHERE manifest_id IN (SELECT id FROM manifests WHERE repository_id = $1)`,
			`DELETE FROM manifests WHERE repository_id = $1`,
			`DELETE FROM repository_blobs WHERE repository_id = $1`,
			`DELETE FROM uploads WHERE repository_id = $1`,
			`DELETE FROM repositories WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("meta: delete repository %s: %w", name, err)
			}
		}
		return nil
	})
	return uploadHandles, err
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// IsUnavailable tells whether err means the database cannot be reached right now
// (connection refused or lost, server shutting down or starting) rather than that a
// statement failed: requests then answer 503 and work again once it is back.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 57 (operator intervention: admin/crash shutdown, cannot connect now)
		// and class 08 (connection exception).
		return strings.HasPrefix(pgErr.Code, "57P") || strings.HasPrefix(pgErr.Code, "08")
	}
	return pgconn.SafeToRetry(err)
}
