package registry

import (
	"context"

	"github.com/berth-registry/berth/internal/blobstore"
)

// QuotaChecker enforces project byte quotas (package quota). The database refuses a
// commit that takes a project past its quota whatever the registry does; the checker
// lets the registry refuse earlier, before bytes are received or committed, and turn
// the database's refusal into the client's error.
type QuotaChecker interface {
	// Admit refuses (as an errcode) a blob of size bytes that would take repo's project
	// past its quota; digest is "" when not known yet.
	Admit(ctx context.Context, repo, digest string, size int64) error
	// Refusal returns the client's error when err is the database refusing a blob past
	// a quota, nil for any other error.
	Refusal(err error) error
}

// admit asks the quota checker, if any, about a blob of size bytes (unknown: < 0).
func (r *Registry) admit(ctx context.Context, repo, digest string, size int64) error {
	if r.opts.Quota == nil || size <= 0 {
		return nil
	}
	if err := r.opts.Quota.Admit(ctx, repo, digest, size); err != nil {
		return r.internal(err, "")
	}
	return nil
}

// admitChunk asks before the last chunk of declared length is read (upload completion,
// digest known): the blob will be the session's bytes plus the chunk. A PATCH is not
// asked: its digest is unknown, and it may be a blob the project already holds (crane
// streams every upload), which adds nothing; its bytes stay in the session until the
// completion is checked.
func (r *Registry) admitChunk(ctx context.Context, repo, digest string, s *session, c Chunk) error {
	if c.Body == nil || c.Length <= 0 {
		return nil
	}
	return r.admit(ctx, repo, digest, s.row.Size+c.Length)
}

// quotaRefusal maps the database's quota refusal to the client's error (nil otherwise).
func (r *Registry) quotaRefusal(err error) error {
	if r.opts.Quota == nil {
		return nil
	}
	return r.opts.Quota.Refusal(err)
}

// refusedCommit cleans up after the database refused to record committed bytes because
// of a quota: the bytes and the upload session go, so nothing past the quota stays.
func (r *Registry) refusedCommit(ctx context.Context, location, uploadID string) {
	ctx = context.WithoutCancel(ctx)
	if err := r.blobs.Delete(ctx, location); err != nil {
		r.log.Warn("delete blob refused by quota", "location", location, "err", err)
	}
	if uploadID != "" {
		_ = r.meta.DeleteUpload(ctx, uploadID)
	}
}

// discardRefused ends an upload a quota refused before its bytes became a blob.
func (r *Registry) discardRefused(ctx context.Context, up blobstore.Upload, uploadID string) {
	ctx = context.WithoutCancel(ctx)
	if err := up.Discard(ctx); err != nil {
		r.log.Warn("discard upload refused by quota", "err", err)
	}
	if uploadID != "" {
		_ = r.meta.DeleteUpload(ctx, uploadID)
	}
}
