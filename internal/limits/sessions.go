package limits

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

// SessionLimits bound open upload sessions; 0 switches a bound off.
type SessionLimits struct {
	PerClient, PerRepository, PerProject int
	// BytesPerProject bounds the bytes a project's open sessions hold. It is its own
	// limit, not part of the project quota: the quota counts distinct committed blobs,
	// and a session's bytes become one at completion, where counting both would refuse
	// a push the quota allows.
	BytesPerProject int64
	RetryAfter      time.Duration
}

// SessionCounts is what the upload rows say an upload start is about to add to.
type SessionCounts struct {
	Client, Repository, Project int
	ProjectBytes                int64
}

// SessionStore counts open sessions (the uploads rows, migration 00015).
type SessionStore struct{ db *meta.DB }

// NewSessionStore returns the store.
func NewSessionStore(db *meta.DB) *SessionStore { return &SessionStore{db: db} }

// Counts reads, in one round trip over indexed columns, the sessions owner, repo and
// its project hold.
func (s *SessionStore) Counts(ctx context.Context, owner, repo string) (SessionCounts, error) {
	var c SessionCounts
	err := s.db.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM uploads WHERE owner = $1),
		(SELECT COUNT(*) FROM uploads u JOIN repositories r ON r.id = u.repository_id WHERE r.name = $2),
		(SELECT COUNT(*) FROM uploads WHERE project = $3),
		(SELECT COALESCE(SUM(size), 0) FROM uploads WHERE project = $3)`, owner, repo, oci.Project(repo)).
		Scan(&c.Client, &c.Repository, &c.Project, &c.ProjectBytes)
	if err != nil {
		return c, fmt.Errorf("limits: count upload sessions: %w", err)
	}
	return c, nil
}

// counter is what Sessions needs from the store (a fake in tests).
type counter interface {
	Counts(ctx context.Context, owner, repo string) (SessionCounts, error)
}

// Sessions admits or refuses new upload sessions (registry.SessionGuard). Concurrent
// starts may each see the count below the bound, so a burst can pass it by the number
// of starts in flight at that moment; the next start sees them all.
type Sessions struct {
	lim      SessionLimits
	store    counter
	refusals *Refusals
}

// NewSessions returns the guard.
func NewSessions(lim SessionLimits, store counter, refusals *Refusals) *Sessions {
	if lim.RetryAfter <= 0 {
		lim.RetryAfter = 10 * time.Second
	}
	return &Sessions{lim: lim, store: store, refusals: refusals}
}

// RetryAfterError is a refusal that tells the client when to come back.
type RetryAfterError struct {
	Err   *errcode.Error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// AdmitSession refuses a new session of owner in repo past a bound.
func (s *Sessions) AdmitSession(ctx context.Context, owner, repo string) error {
	c, err := s.store.Counts(ctx, owner, repo)
	if err != nil {
		return err
	}
	l := s.lim
	project := oci.Project(repo)
	var limit, msg string
	switch {
	case l.PerClient > 0 && owner != "" && c.Client >= l.PerClient:
		limit, msg = "sessions_client", "this client holds "+strconv.Itoa(c.Client)+" open upload sessions, the limit (throttle.uploads.perClient) is "+strconv.Itoa(l.PerClient)
	case l.PerRepository > 0 && c.Repository >= l.PerRepository:
		limit, msg = "sessions_repository", "repository "+repo+" has "+strconv.Itoa(c.Repository)+" open upload sessions, the limit (throttle.uploads.perRepository) is "+strconv.Itoa(l.PerRepository)
	case l.PerProject > 0 && c.Project >= l.PerProject:
		limit, msg = "sessions_project", "project "+project+" has "+strconv.Itoa(c.Project)+" open upload sessions, the limit (throttle.uploads.perProject) is "+strconv.Itoa(l.PerProject)
	case l.BytesPerProject > 0 && c.ProjectBytes >= l.BytesPerProject:
		limit, msg = "session_bytes_project", "project "+project+"'s open upload sessions hold "+strconv.FormatInt(c.ProjectBytes, 10)+" bytes, the limit (throttle.uploads.bytesPerProject) is "+strconv.FormatInt(l.BytesPerProject, 10)
	default:
		return nil
	}
	s.refusals.Refused(refusal{limit: limit, client: owner})
	return &RetryAfterError{
		Err:   errcode.TooManyRequests.New(msg + "; complete or cancel open uploads, or retry later"),
		After: l.RetryAfter,
	}
}

// RetryAfter is how long err (or what it wraps) asks the client to wait; 0 for none.
func RetryAfter(err error) time.Duration {
	var e *RetryAfterError
	if errors.As(err, &e) {
		return e.After
	}
	return 0
}
