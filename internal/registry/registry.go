// Package registry is Berth's domain: repositories, blobs, upload sessions, manifests,
// tags and referrers, with the rules that keep them consistent. It validates every input,
// decides what is visible where, and reports failures as errcode values. Bytes go to a
// blobstore.Driver, rows to the meta store; HTTP stays in package distribution.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

// Options tune the registry's rules.
type Options struct {
	// AllowSparseManifests accepts manifests whose layers, config or index children are
	// not in the repository (the spec lets registries choose). Off by default: a missing
	// reference is MANIFEST_BLOB_UNKNOWN.
	AllowSparseManifests bool
	// MaxBlobSize bounds one blob upload in bytes (0: no bound).
	MaxBlobSize int64
	// UploadTTL is how long an untouched upload session lives before it is purged.
	UploadTTL time.Duration
	// Sessions, when set, bounds open upload sessions (sessions.go).
	Sessions SessionGuard
	// RedirectBlobs answers blob GETs with a redirect to a short-lived presigned URL
	// when the blob driver can presign (S3), so bytes flow from object storage directly.
	RedirectBlobs bool
	// Quota, when set, refuses blobs past their project's byte quota (quota.go).
	Quota QuotaChecker
	// Tags, when set, protects immutable tags from being moved or deleted (immutable.go).
	Tags TagGuard
	// Space, when set, refuses new data under storage pressure (space.go).
	Space SpaceGuard
}

// Registry implements the distribution operations.
type Registry struct {
	meta  *meta.Store
	blobs blobstore.Driver
	opts  Options
	log   *slog.Logger
	// instance names this process as a lease holder among replicas.
	instance string
}

// New returns a registry over a metadata store and a blob driver.
func New(m *meta.Store, b blobstore.Driver, opts Options, log *slog.Logger) *Registry {
	if opts.UploadTTL <= 0 {
		opts.UploadTTL = 24 * time.Hour
	}
	host, _ := os.Hostname()
	instance := fmt.Sprintf("%s/%d/%s", host, os.Getpid(), newUploadID()[:8])
	return &Registry{meta: m, blobs: b, opts: opts, log: log, instance: instance}
}

// ValidateName checks a repository name, as an errcode.
func ValidateName(name string) error {
	if err := oci.ValidateName(name); err != nil {
		return errcode.NameInvalid.Wrap(err, err.Error())
	}
	return nil
}

// ParseDigest checks a digest, as an errcode.
func ParseDigest(s string) (oci.Digest, error) {
	d, err := oci.ParseDigest(s)
	if err != nil {
		return "", errcode.DigestInvalid.Wrap(err, err.Error())
	}
	return d, nil
}

// notFound maps a missing row to the most precise error: the repository itself, or the
// thing inside it.
func (r *Registry) notFound(ctx context.Context, repo string, what *errcode.Descriptor) error {
	ok, err := r.meta.RepositoryExists(ctx, repo)
	if err != nil {
		return err
	}
	if !ok {
		return errcode.NameUnknown.New(fmt.Sprintf("repository %s is not known to the registry", repo))
	}
	return what
}

func (r *Registry) internal(err error, msg string) error {
	if errcode.From(err) != nil {
		return err
	}
	if q := r.quotaRefusal(err); q != nil {
		return q
	}
	// Before unavailable: a full disk is not an outage to retry, and ENOSPC must never
	// surface as UNKNOWN (blob writes, SQLITE_FULL, PostgreSQL 53100 alike).
	if meta.IsDiskFull(err) {
		return r.storageFull(err)
	}
	if unavailable(err) {
		return errcode.Unavailable.Wrap(err, "a storage backend is unreachable; retry shortly")
	}
	if errors.Is(err, blobstore.ErrUploadCorrupt) {
		return errcode.BlobUploadUnknown.Wrap(err, "upload data is damaged; start a new upload")
	}
	return errcode.Internal.Wrap(err, msg)
}

// unavailable tells outages (database or object store unreachable, restarting) from
// failures: outages answer 503 so clients and load balancers retry.
func unavailable(err error) bool {
	var netErr net.Error
	return meta.IsUnavailable(err) || errors.Is(err, blobstore.ErrUnavailable) || errors.As(err, &netErr)
}

// Repositories lists repository names (the catalog) after last, at most n.
func (r *Registry) Repositories(ctx context.Context, last string, n int) ([]string, error) {
	names, err := r.meta.Repositories(ctx, last, n)
	if err != nil {
		return nil, r.internal(err, "")
	}
	return names, nil
}

// Tags lists the repository's tags after last, at most n.
func (r *Registry) Tags(ctx context.Context, repo, last string, n int) ([]string, error) {
	tags, err := r.meta.Tags(ctx, repo, last, n)
	if err != nil {
		return nil, r.internal(err, "")
	}
	if len(tags) == 0 {
		if ok, err := r.meta.RepositoryExists(ctx, repo); err != nil {
			return nil, r.internal(err, "")
		} else if !ok {
			return nil, errcode.NameUnknown.New(fmt.Sprintf("repository %s is not known to the registry", repo))
		}
	}
	return tags, nil
}

// DeleteRepository removes a repository and everything in it (an admin operation).
func (r *Registry) DeleteRepository(ctx context.Context, repo string) error {
	if err := r.guardDeleteRepository(ctx, repo); err != nil {
		return err
	}
	handles, err := r.meta.DeleteRepository(ctx, repo)
	if errors.Is(err, meta.ErrNotFound) {
		return errcode.NameUnknown
	}
	if err != nil {
		return r.internal(err, "")
	}
	for _, h := range handles {
		if err := r.blobs.AbortUpload(ctx, h); err != nil {
			r.log.Warn("discard upload of deleted repository", "repository", repo, "err", err)
		}
	}
	return nil
}

// TryLease takes or renews the named lease for this replica: work that must run on one
// replica at a time (background jobs, one upstream fetch per blob) runs only while held.
func (r *Registry) TryLease(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	ok, err := r.meta.TryLease(ctx, name, r.instance, ttl)
	if err != nil {
		return false, r.internal(err, "")
	}
	return ok, nil
}

// ReleaseLease gives up a lease this replica holds.
func (r *Registry) ReleaseLease(ctx context.Context, name string) {
	if err := r.meta.ReleaseLease(ctx, name, r.instance); err != nil {
		r.log.Warn("release lease", "lease", name, "err", err)
	}
}

// RepositoryExists tells whether a repository has been created.
func (r *Registry) RepositoryExists(ctx context.Context, repo string) (bool, error) {
	ok, err := r.meta.RepositoryExists(ctx, repo)
	if err != nil {
		return false, r.internal(err, "")
	}
	return ok, nil
}

// Ready reports whether the registry can serve: database reachable, and the blob store
// too when its driver can tell.
func (r *Registry) Ready(ctx context.Context) error {
	if err := r.meta.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if p, ok := r.blobs.(interface{ Ping(context.Context) error }); ok {
		if err := p.Ping(ctx); err != nil {
			return fmt.Errorf("blob store: %w", err)
		}
	}
	return nil
}
