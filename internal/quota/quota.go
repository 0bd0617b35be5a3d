// Package quota enforces byte quotas per project (the first path component of repository
// names): how many bytes of distinct blobs a project's repositories may hold.
//
// Usage is kept by database triggers (migration 00013) in the same transaction as every
// change of the rows that put a blob in a project — links (upload, mount) and manifest
// references — so it is exact under concurrent pushes, deletes and GC, on every replica,
// and a blob shared by many repositories or manifests of a project counts once. The
// trigger that counts a blob new to a project refuses the change when it takes the
// project past its quota, so committed usage never exceeds the quota, however many
// pushes race; at most the bytes of uploads in flight are stored beyond it, and those
// are discarded when their commit is refused.
//
// Admit checks earlier, before a blob's bytes are received or committed, wherever its
// size is known (Content-Length of a monolithic upload or chunk, the upload's size at
// completion), so an over-quota push fails fast with 403 DENIED naming the quota and
// the usage. Mirrored repositories are not subject to quotas (their cache is bounded
// by the mirror's cacheSize); a quota cannot be set on a mirrored name.
package quota

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync/atomic"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/oci"
)

// ErrMirrored refuses a quota on a mirror's namespace.
var ErrMirrored = errors.New("quota: mirrored repositories are not subject to quotas")

// Options configure a Service.
type Options struct {
	// Mirrored tells whether a project name is a mirror's (an upstream name or prefix):
	// mirror caches are bounded by their own size limits, never by quotas.
	Mirrored func(project string) bool
}

// Service answers quota questions for the registry, the admin API and metrics.
type Service struct {
	store  *Store
	opts   Options
	denied atomic.Uint64
	// exceeded is told of each refusal (the quota.exceeded event); see OnExceeded.
	exceeded atomic.Pointer[func(project string, limit, used, size int64)]
}

// OnExceeded sets f to be told of every refusal (project, quota, usage, the blob's size).
// It runs on the refused request's goroutine and must not block.
func (s *Service) OnExceeded(f func(project string, limit, used, size int64)) { s.exceeded.Store(&f) }

// New returns the quota service over its store.
func New(store *Store, opts Options) *Service {
	return &Service{store: store, opts: opts}
}

func (s *Service) mirrored(project string) bool {
	return s.opts.Mirrored != nil && s.opts.Mirrored(project)
}

// Usage returns a project's quota and usage.
func (s *Service) Usage(ctx context.Context, project string) (Usage, error) {
	return s.store.Usage(ctx, project)
}

// All returns every project with a quota or usage, mirrored namespaces left out.
func (s *Service) All(ctx context.Context) ([]Usage, error) {
	all, err := s.store.All(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, u := range all {
		if !s.mirrored(u.Project) {
			out = append(out, u)
		}
	}
	return out, nil
}

// Set sets a project's quota in bytes; Unlimited removes it. A quota below the current
// usage is allowed: nothing is deleted, pushes that add bytes are refused until usage
// drops below it.
func (s *Service) Set(ctx context.Context, project string, limit int64) (Usage, error) {
	if s.mirrored(project) {
		return Usage{}, fmt.Errorf("%w: %s is a mirror's namespace (bound its cache with cacheSize)", ErrMirrored, project)
	}
	if err := s.store.SetLimit(ctx, project, limit); err != nil {
		return Usage{}, err
	}
	return s.store.Usage(ctx, project)
}

// Denied counts pushes refused by a quota since start (early checks and commits).
func (s *Service) Denied() uint64 { return s.denied.Load() }

// Admit refuses, with 403 DENIED, a blob of size bytes that would take repo's project
// past its quota. digest is "" when not known yet (a chunk): the blob is then assumed
// new to the project. A blob the project already holds adds nothing and is admitted.
func (s *Service) Admit(ctx context.Context, repo, digest string, size int64) error {
	project := oci.Project(repo)
	if size <= 0 || s.mirrored(project) {
		return nil
	}
	limit, used, counted, err := s.store.admission(ctx, project, digest)
	if err != nil {
		return err
	}
	if limit < 0 || counted || used+size <= limit {
		return nil
	}
	return s.refuse(project, limit, used, size)
}

// refusedRe matches the error the migration's trigger raises.
var refusedRe = regexp.MustCompile(`berth: project quota exceeded: project=(\S+) quota=(\d+) usage=(-?\d+) size=(\d+)`)

// Refusal returns the client's error when err is the database refusing a blob past a
// quota at commit (a push that raced others past the early check), nil otherwise.
func (s *Service) Refusal(err error) error {
	if err == nil {
		return nil
	}
	m := refusedRe.FindStringSubmatch(err.Error())
	if m == nil {
		return nil
	}
	limit, _ := strconv.ParseInt(m[2], 10, 64)
	used, _ := strconv.ParseInt(m[3], 10, 64)
	size, _ := strconv.ParseInt(m[4], 10, 64)
	return s.refuse(m[1], limit, used, size)
}

func (s *Service) refuse(project string, limit, used, size int64) error {
	s.denied.Add(1)
	if f := s.exceeded.Load(); f != nil {
		(*f)(project, limit, used, size)
	}
	msg := fmt.Sprintf("project %s is over its quota: quota %s, usage %s, this blob needs %s more (quota %d bytes, usage %d bytes)",
		project, HumanBytes(limit), HumanBytes(used), HumanBytes(size), limit, used)
	return &errcode.Error{Desc: errcode.QuotaExceeded, Message: msg, Detail: map[string]int64{"quota": limit, "usage": used, "size": size}}
}

// HumanBytes writes n in binary units (1.5 GiB), for messages and the CLI.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
