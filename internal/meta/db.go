package meta

import (
	"context"
	"database/sql"
)

// DB is the shared SQL layer for capability stores (jobs, gc, quotas, …): each owns its
// tables and queries in its own package, while the connections, the dialect, write
// transactions and the one migration sequence (migrations/<dialect>) stay here. Reads go
// to the read pool through cached prepared statements, writes to the writer, exactly as
// the Store's own queries do, so capability stores get the same SQLite single-writer
// queueing and PostgreSQL pooling without reimplementing them.
type DB struct{ s *Store }

// DB returns the shared SQL layer over the store's connections.
func (s *Store) DB() *DB { return &DB{s: s} }

// Dialect reports which engine backs the database.
func (d *DB) Dialect() Dialect { return d.s.dialect }

// InTx runs fn in a write transaction: committed when fn returns nil, rolled back
// otherwise. On SQLite it begins IMMEDIATE, so the transaction holds the single write
// lock from its first statement and concurrent writers queue behind it.
func (d *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error { return d.s.inTx(ctx, fn) }

// QueryRow runs a single-row read on the read pool.
func (d *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return d.s.read(ctx, query, args...)
}

// Query runs a multi-row read on the read pool.
func (d *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.s.readRows(ctx, query, args...)
}

// Exec runs one write statement outside an explicit transaction.
func (d *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.s.exec(ctx, query, args...)
}

// ExecQueryRow runs one write statement returning a row (INSERT/UPDATE … RETURNING).
func (d *DB) ExecQueryRow(ctx context.Context, query string, args ...any) WriteRow {
	return d.s.execRow(ctx, query, args...)
}

// Changed hands c to the change hook inside tx, for capability stores that change a
// repository's tags or manifests in their own transactions (retention deleting tags): the
// event then commits with their change, as the registry's own writes do.
func (d *DB) Changed(ctx context.Context, tx *sql.Tx, c Change) error { return d.s.changed(ctx, tx, c) }

// ForUpdate is the row-lock clause for a SELECT inside a write transaction: PostgreSQL
// needs it to serialise with concurrent writers of the row; SQLite's one writer already
// excludes them, and it has no such clause.
func (d *DB) ForUpdate() string { return d.lockClause(" FOR UPDATE") }

// ForShare is ForUpdate for a lock that only keeps the row from being changed or deleted.
func (d *DB) ForShare() string { return d.lockClause(" FOR SHARE") }

// SkipLocked is ForUpdate that passes over rows another transaction holds (queue claims).
func (d *DB) SkipLocked() string { return d.lockClause(" FOR UPDATE SKIP LOCKED") }

func (d *DB) lockClause(c string) string {
	if d.s.dialect == Postgres {
		return c
	}
	return ""
}
