package inventory

import (
	"context"
	"fmt"
	"strings"
)

// Order is how Find sorts repositories.
type Order string

// Orders: by name, or newest push or pull first (ties by name).
const (
	ByName   Order = "name"
	ByPushed Order = "pushed"
	ByPulled Order = "pulled"
)

// ValidOrder tells whether o names an order.
func ValidOrder(o string) bool {
	switch Order(o) {
	case ByName, ByPushed, ByPulled:
		return true
	}
	return false
}

// Query selects repositories for Find.
type Query struct {
	// Project limits the search to one project; "" searches all.
	Project string
	// Contains keeps names holding this substring ("" keeps all).
	Contains string
	Order    Order
	Offset   int
	N        int
}

// pushedExpr is a repository's last push: its newest manifest or tag change.
const pushedExpr = `(SELECT CASE WHEN mx > tx THEN mx ELSE tx END FROM (SELECT
	(SELECT COALESCE(MAX(m.created_at), 0) FROM manifests m WHERE m.repository_id = r.id) AS mx,
	(SELECT COALESCE(MAX(t.updated_at), 0) FROM tags t WHERE t.repository_id = r.id) AS tx) p)`

// Find lists repositories matching q, one page of at most q.N after q.Offset.
func (s *Store) Find(ctx context.Context, q Query) ([]Repository, error) {
	where := []string{"1 = 1"}
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if q.Project != "" {
		where = append(where, fmt.Sprintf("((r.name > %s AND r.name < %s) OR r.name = %s)", arg(q.Project+"/"), arg(q.Project+"0"), arg(q.Project)))
	}
	if q.Contains != "" {
		where = append(where, `r.name LIKE `+arg("%"+likeEscape(q.Contains)+"%")+` ESCAPE '\'`)
	}
	order := "r.name"
	switch q.Order {
	case ByPushed:
		order = pushedExpr + " DESC, r.name"
	case ByPulled:
		order = "r.last_pulled_at DESC, r.name"
	}
	n := q.N
	if n <= 0 {
		n = 100
	}
	query := `SELECT ` + repositoryColumns + ` FROM repositories r WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ` + order + ` LIMIT ` + arg(n) + ` OFFSET ` + arg(max(q.Offset, 0))
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("inventory: find repositories: %w", err)
	}
	defer rows.Close()
	out := []Repository{}
	for rows.Next() {
		r, err := scanRepository(rows)
		if err != nil {
			return nil, fmt.Errorf("inventory: find repositories: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// likeEscape makes s match itself literally in a LIKE pattern (escape character \).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Count returns how many repositories a project holds (an index range scan).
func (s *Store) Count(ctx context.Context, project string) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM repositories r WHERE (r.name > $1 AND r.name < $2) OR r.name = $3`,
		project+"/", project+"0", project).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("inventory: count repositories of %s: %w", project, err)
	}
	return n, nil
}
