package gc

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Plan is what a review of everything, now, would delete (`berth gc run --dry-run`):
// the same rules as the reviews, applied to the whole database at once, cascades
// included (an index going takes its untagged children with it).
type Plan struct {
	Manifests []string // repository@digest
	Links     int      // repository views of blobs that would go
	Blobs     []string // digests whose rows and bytes would go
	Bytes     int64
}

type planManifest struct {
	id, repo        int64
	digest, subject string
	created, pulled time.Time
}

type repoDigest struct {
	repo   int64
	digest string
}

// Plan computes the plan from one read of the rows (it changes nothing).
func (s *Store) Plan(ctx context.Context, r Rules) (Plan, error) {
	var p Plan
	names := map[int64]string{}
	if err := s.scan(ctx, `SELECT id, name FROM repositories`, func(rows *sql.Rows) error {
		var id int64
		var n string
		err := rows.Scan(&id, &n)
		names[id] = n
		return err
	}); err != nil {
		return p, err
	}
	var all []*planManifest
	byKey := map[repoDigest]*planManifest{}
	if err := s.scan(ctx, `SELECT id, repository_id, digest, COALESCE(subject_digest, ''), created_at, last_pulled_at FROM manifests`, func(rows *sql.Rows) error {
		m := &planManifest{}
		var c, pl int64
		if err := rows.Scan(&m.id, &m.repo, &m.digest, &m.subject, &c, &pl); err != nil {
			return err
		}
		m.created, m.pulled = time.UnixMilli(c), time.UnixMilli(pl)
		all = append(all, m)
		byKey[repoDigest{m.repo, m.digest}] = m
		return nil
	}); err != nil {
		return p, err
	}
	tagged := map[repoDigest]bool{}
	if err := s.scan(ctx, `SELECT repository_id, manifest_digest FROM tags`, func(rows *sql.Rows) error {
		var k repoDigest
		err := rows.Scan(&k.repo, &k.digest)
		tagged[k] = true
		return err
	}); err != nil {
		return p, err
	}
	type ref struct {
		digest string
		kind   int
	}
	refs := map[int64][]ref{}
	if err := s.scan(ctx, `SELECT manifest_id, digest, kind FROM manifest_references`, func(rows *sql.Rows) error {
		var id int64
		var rf ref
		err := rows.Scan(&id, &rf.digest, &rf.kind)
		refs[id] = append(refs[id], rf)
		return err
	}); err != nil {
		return p, err
	}
	policies := map[string]Policy{}
	list, err := s.Policies(ctx)
	if err != nil {
		return p, err
	}
	for _, pol := range list {
		policies[pol.Project] = pol
	}
	mirrored := func(repo int64) bool { return r.Mirrored != nil && r.Mirrored(names[repo]) }
	now := time.Now()
	protected := func(m *planManifest) bool {
		project, _, _ := strings.Cut(names[m.repo], "/")
		pol := policies[project]
		return m.created.Add(r.ReviewAfter).After(now) || m.created.Add(pol.UntaggedAfter).After(now) || m.pulled.Add(pol.KeepPulledWithin).After(now)
	}

	// Delete what nothing alive keeps until nothing changes: each round can only free
	// more (a deleted index frees its children, a deleted subject its referrers).
	alive := map[*planManifest]bool{}
	for _, m := range all {
		alive[m] = true
	}
	for changed := true; changed; {
		changed = false
		children := map[repoDigest]bool{}
		taggedReferrer := map[repoDigest]bool{}
		for m := range alive {
			for _, rf := range refs[m.id] {
				if rf.kind == 2 {
					children[repoDigest{m.repo, rf.digest}] = true
				}
			}
			if m.subject != "" && tagged[repoDigest{m.repo, m.digest}] {
				taggedReferrer[repoDigest{m.repo, m.subject}] = true
			}
		}
		for m := range alive {
			k := repoDigest{m.repo, m.digest}
			subject := byKey[repoDigest{m.repo, m.subject}]
			if mirrored(m.repo) || tagged[k] || children[k] || taggedReferrer[k] || (subject != nil && alive[subject]) || protected(m) {
				continue
			}
			delete(alive, m)
			changed = true
			p.Manifests = append(p.Manifests, names[m.repo]+"@"+m.digest)
		}
	}
	used := map[repoDigest]bool{} // blobs referenced by surviving manifests, per repository
	usedAnywhere := map[string]bool{}
	for m := range alive {
		for _, rf := range refs[m.id] {
			if rf.kind == 1 {
				used[repoDigest{m.repo, rf.digest}] = true
				usedAnywhere[rf.digest] = true
			}
		}
	}
	linked := map[string]bool{}
	if err := s.scan(ctx, `SELECT repository_id, digest, created_at FROM repository_blobs`, func(rows *sql.Rows) error {
		var k repoDigest
		var created int64
		if err := rows.Scan(&k.repo, &k.digest, &created); err != nil {
			return err
		}
		if mirrored(k.repo) || used[k] || time.UnixMilli(created).Add(r.ReviewAfter).After(now) {
			linked[k.digest] = true
		} else {
			p.Links++
		}
		return nil
	}); err != nil {
		return p, err
	}
	if err := s.scan(ctx, `SELECT digest, size FROM blobs`, func(rows *sql.Rows) error {
		var d string
		var size int64
		if err := rows.Scan(&d, &size); err != nil {
			return err
		}
		if !linked[d] && !usedAnywhere[d] {
			p.Blobs = append(p.Blobs, d)
			p.Bytes += size
		}
		return nil
	}); err != nil {
		return p, err
	}
	slices.Sort(p.Manifests)
	slices.Sort(p.Blobs)
	return p, nil
}

func (s *Store) scan(ctx context.Context, query string, fn func(*sql.Rows) error) error {
	rows, err := s.db.Query(ctx, query)
	if err != nil {
		return fmt.Errorf("gc: plan: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("gc: plan: %w", err)
		}
	}
	return rows.Err()
}
