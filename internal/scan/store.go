package scan

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/internal/meta"
)

// ErrNotFound reports a report, SBOM or policy that does not exist.
var ErrNotFound = errors.New("scan: not found")

// Store holds SBOMs, reports, findings and policies (migration 00018). It is safe for
// concurrent use.
type Store struct{ db *meta.DB }

// NewStore returns the scan store over the shared SQL layer.
func NewStore(db *meta.DB) *Store { return &Store{db: db} }

// PutSBOM stores an image's inventory.
func (s *Store) PutSBOM(ctx context.Context, digest, repo string, sbom []byte) error {
	_, err := s.db.Exec(ctx, `INSERT INTO scan_sboms (digest, repository, sbom, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (digest) DO UPDATE SET repository = excluded.repository, sbom = excluded.sbom, created_at = excluded.created_at`,
		digest, repo, sbom, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("scan: store SBOM of %s: %w", digest, err)
	}
	return nil
}

// SBOM returns an image's inventory and the repository it was read from.
func (s *Store) SBOM(ctx context.Context, digest string) ([]byte, string, error) {
	var sbom []byte
	var repo string
	err := s.db.QueryRow(ctx, `SELECT sbom, repository FROM scan_sboms WHERE digest = $1`, digest).Scan(&sbom, &repo)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", ErrNotFound
	}
	if err != nil {
		return nil, "", fmt.Errorf("scan: SBOM of %s: %w", digest, err)
	}
	return sbom, repo, nil
}

// ReportHook runs inside the transaction that stores a report (an event for webhooks).
type ReportHook func(ctx context.Context, tx *sql.Tx, r Report) error

// PutReport replaces a manifest's report and findings in one transaction, in which
// hook (if any) runs too.
func (s *Store) PutReport(ctx context.Context, r Report, hook ReportHook) error {
	sum := Summarize(r.Findings)
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO scan_reports (digest, repository, engine, status, error, scanned_at, db_updated_at,
			critical, high, medium, low, unknown, fixable) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (digest) DO UPDATE SET repository = excluded.repository, engine = excluded.engine, status = excluded.status,
			error = excluded.error, scanned_at = excluded.scanned_at, db_updated_at = excluded.db_updated_at, critical = excluded.critical,
			high = excluded.high, medium = excluded.medium, low = excluded.low, unknown = excluded.unknown, fixable = excluded.fixable`,
			r.Digest, r.Repository, r.Engine, r.Status, r.Error, r.ScannedAt.UnixMilli(), r.DBUpdatedAt.UnixMilli(),
			sum.Critical, sum.High, sum.Medium, sum.Low, sum.Unknown, sum.Fixable)
		if err != nil {
			return fmt.Errorf("scan: store report of %s: %w", r.Digest, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM scan_findings WHERE digest = $1`, r.Digest); err != nil {
			return fmt.Errorf("scan: store report of %s: %w", r.Digest, err)
		}
		for _, f := range r.Findings {
			_, err := tx.ExecContext(ctx, `INSERT INTO scan_findings (digest, vuln_id, package, installed, fixed, severity, cvss, title, target, layer)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
				r.Digest, f.ID, f.Package, f.Installed, f.Fixed, int(f.Severity), f.CVSS, f.Title, f.Target, f.Layer)
			if err != nil {
				return fmt.Errorf("scan: store finding %s of %s: %w", f.ID, r.Digest, err)
			}
		}
		if hook != nil {
			r.Summary = sum
			return hook(ctx, tx, r)
		}
		return nil
	})
}

// Report returns a manifest's report with its findings, most severe first.
func (s *Store) Report(ctx context.Context, digest string) (Report, error) {
	r := Report{Digest: digest, Findings: []Finding{}}
	var scanned, dbUpdated int64
	err := s.db.QueryRow(ctx, `SELECT repository, engine, status, error, scanned_at, db_updated_at FROM scan_reports WHERE digest = $1`,
		digest).Scan(&r.Repository, &r.Engine, &r.Status, &r.Error, &scanned, &dbUpdated)
	if errors.Is(err, sql.ErrNoRows) {
		return Report{}, ErrNotFound
	}
	if err != nil {
		return Report{}, fmt.Errorf("scan: report of %s: %w", digest, err)
	}
	r.ScannedAt = time.UnixMilli(scanned).UTC()
	if dbUpdated > 0 {
		r.DBUpdatedAt = time.UnixMilli(dbUpdated).UTC()
	}
	rows, err := s.db.Query(ctx, `SELECT vuln_id, package, installed, fixed, severity, cvss, title, target, layer FROM scan_findings
		WHERE digest = $1 ORDER BY severity DESC, vuln_id, package`, digest)
	if err != nil {
		return Report{}, fmt.Errorf("scan: findings of %s: %w", digest, err)
	}
	defer rows.Close()
	for rows.Next() {
		var f Finding
		var sev int
		if err := rows.Scan(&f.ID, &f.Package, &f.Installed, &f.Fixed, &sev, &f.CVSS, &f.Title, &f.Target, &f.Layer); err != nil {
			return Report{}, fmt.Errorf("scan: findings of %s: %w", digest, err)
		}
		f.Severity = Severity(sev)
		r.Findings = append(r.Findings, f)
	}
	r.Summary = Summarize(r.Findings)
	return r, rows.Err()
}

// Affected is a manifest holding a vulnerability, in one repository.
type Affected struct {
	Repository string   `json:"repository"`
	Digest     string   `json:"digest"`
	Package    string   `json:"package"`
	Installed  string   `json:"installedVersion"`
	Fixed      string   `json:"fixedVersion,omitempty"`
	Severity   Severity `json:"severity"`
}

// Affected lists every stored manifest, in every repository holding it, whose last
// report has the vulnerability id.
func (s *Store) Affected(ctx context.Context, id string, limit int) ([]Affected, error) {
	rows, err := s.db.Query(ctx, `SELECT r.name, f.digest, f.package, f.installed, f.fixed, f.severity
		FROM scan_findings f JOIN manifests m ON m.digest = f.digest JOIN repositories r ON r.id = m.repository_id
		WHERE f.vuln_id = $1 ORDER BY r.name, f.digest, f.package LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("scan: images with %s: %w", id, err)
	}
	defer rows.Close()
	out := []Affected{}
	for rows.Next() {
		var a Affected
		var sev int
		if err := rows.Scan(&a.Repository, &a.Digest, &a.Package, &a.Installed, &a.Fixed, &sev); err != nil {
			return nil, fmt.Errorf("scan: images with %s: %w", id, err)
		}
		a.Severity = Severity(sev)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ArtifactReport is the summary of one manifest's report, in one repository.
type ArtifactReport struct {
	Repository  string    `json:"repository"`
	Digest      string    `json:"digest"`
	Engine      string    `json:"engine"`
	Status      string    `json:"status"`
	ScannedAt   time.Time `json:"scannedAt"`
	DBUpdatedAt time.Time `json:"dbUpdatedAt,omitzero"`
	Summary     Summary   `json:"summary"`
}

// ProjectReports lists the reports of the manifests in project's repositories, worst
// first (critical, then high counts), at most limit.
func (s *Store) ProjectReports(ctx context.Context, project string, limit int) ([]ArtifactReport, error) {
	prefix := project + "/"
	rows, err := s.db.Query(ctx, `SELECT rp.name, r.digest, r.engine, r.status, r.scanned_at, r.db_updated_at,
			r.critical, r.high, r.medium, r.low, r.unknown, r.fixable
		FROM scan_reports r JOIN manifests m ON m.digest = r.digest JOIN repositories rp ON rp.id = m.repository_id
		WHERE substr(rp.name, 1, $1) = $2
		ORDER BY r.critical DESC, r.high DESC, r.medium DESC, rp.name, r.digest LIMIT $3`, len(prefix), prefix, limit)
	if err != nil {
		return nil, fmt.Errorf("scan: reports of project %s: %w", project, err)
	}
	defer rows.Close()
	out := []ArtifactReport{}
	for rows.Next() {
		var a ArtifactReport
		var scanned, dbUpdated int64
		sm := &a.Summary
		if err := rows.Scan(&a.Repository, &a.Digest, &a.Engine, &a.Status, &scanned, &dbUpdated,
			&sm.Critical, &sm.High, &sm.Medium, &sm.Low, &sm.Unknown, &sm.Fixable); err != nil {
			return nil, fmt.Errorf("scan: reports of project %s: %w", project, err)
		}
		a.ScannedAt = time.UnixMilli(scanned).UTC()
		if dbUpdated > 0 {
			a.DBUpdatedAt = time.UnixMilli(dbUpdated).UTC()
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// PutPolicy creates or replaces a project's policy.
func (s *Store) PutPolicy(ctx context.Context, project string, p Policy) error {
	spec, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("scan: encode policy: %w", err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO scan_policies (project, spec, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (project) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`, project, string(spec), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("scan: store policy of %s: %w", project, err)
	}
	return nil
}

// Policy returns a project's policy.
func (s *Store) Policy(ctx context.Context, project string) (Policy, error) {
	var spec string
	err := s.db.QueryRow(ctx, `SELECT spec FROM scan_policies WHERE project = $1`, project).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, ErrNotFound
	}
	if err != nil {
		return Policy{}, fmt.Errorf("scan: policy of %s: %w", project, err)
	}
	var p Policy
	if err := json.Unmarshal([]byte(spec), &p); err != nil {
		return Policy{}, fmt.Errorf("scan: policy of %s: %w", project, err)
	}
	return p, nil
}

// DeletePolicy removes a project's policy.
func (s *Store) DeletePolicy(ctx context.Context, project string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM scan_policies WHERE project = $1`, project)
	if err != nil {
		return fmt.Errorf("scan: delete policy of %s: %w", project, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// NewestDB returns the build time of the newest database any replica loaded (zero:
// none yet).
func (s *Store) NewestDB(ctx context.Context) (time.Time, error) {
	var at int64
	err := s.db.QueryRow(ctx, `SELECT updated_at FROM scan_db WHERE id = 1`).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("scan: database state: %w", err)
	}
	return time.UnixMilli(at).UTC(), nil
}

// RecordDB records a loaded database; it reports whether it is newer than any before.
func (s *Store) RecordDB(ctx context.Context, updated time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, `INSERT INTO scan_db (id, updated_at, loaded_at) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, loaded_at = excluded.loaded_at
		WHERE scan_db.updated_at < excluded.updated_at`, updated.UnixMilli(), time.Now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("scan: record database: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// staleSBOMsQuery selects the digests whose findings came from a database older than
// before and that have an SBOM to evaluate again (for jobs.Store.EnqueueQuery).
func staleSBOMsQuery(before time.Time) string {
	return fmt.Sprintf(`SELECT r.digest AS k FROM scan_reports r JOIN scan_sboms s ON s.digest = r.digest WHERE r.db_updated_at < %d`, before.UnixMilli())
}

// staleReportsQuery selects the digests of reports made with a database older than
// before: an adapter's, which only a new scan brings up to date.
func staleReportsQuery(before time.Time) string {
	return fmt.Sprintf(`SELECT digest AS k FROM scan_reports WHERE db_updated_at < %d`, before.UnixMilli())
}

// oldReportsQuery selects the digests of reports scanned before at.
func oldReportsQuery(at time.Time) string {
	return fmt.Sprintf(`SELECT digest AS k FROM scan_reports WHERE scanned_at < %d`, at.UnixMilli())
}

// HolderRepository returns a repository holding the manifest.
func (s *Store) HolderRepository(ctx context.Context, digest string) (string, error) {
	var repo string
	err := s.db.QueryRow(ctx, `SELECT r.name FROM manifests m JOIN repositories r ON r.id = m.repository_id
		WHERE m.digest = $1 ORDER BY r.name LIMIT 1`, digest).Scan(&repo)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("scan: repositories of %s: %w", digest, err)
	}
	return repo, nil
}

// ReportRepository returns the repository a manifest's report was made from.
func (s *Store) ReportRepository(ctx context.Context, digest string) (string, error) {
	var repo string
	err := s.db.QueryRow(ctx, `SELECT repository FROM scan_reports WHERE digest = $1`, digest).Scan(&repo)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("scan: report of %s: %w", digest, err)
	}
	return repo, nil
}
