package registry

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

// SpaceGuard refuses new data while storage is under pressure (package
// storagepressure): free space below the watermark or the byte budget spent. Reads,
// deletes and GC never ask it.
type SpaceGuard interface {
	// Admit returns the refusal (an errcode.StorageFull occurrence naming the condition)
	// while new data is refused, nil otherwise.
	Admit() error
	// Writer wraps an upload's writer: writes are counted against the free space, and one
	// that would cross the watermark fails with the refusal, so an upload admitted
	// above the watermark cannot fill the disk.
	Writer(w io.Writer) io.Writer
	// Pressured measures again and reports whether space must still be freed.
	Pressured(ctx context.Context) bool
	// Remeasure drops the guard's cached measurement: a write failed for lack of space,
	// or a failed upload just gave its bytes back.
	Remeasure()
}

// storageFull is the client's error for a write that failed for lack of space.
func (r *Registry) storageFull(err error) error {
	r.remeasure()
	return errcode.StorageFull.Wrap(err, "storage full: no space left for the write; writes are refused until space is freed (reads keep working)")
}

// admitSpace refuses new data under storage pressure.
func (r *Registry) admitSpace() error {
	if r.opts.Space == nil {
		return nil
	}
	return r.opts.Space.Admit()
}

// admitManifest refuses a manifest push under storage pressure unless the manifest is
// already stored in repo: re-tagging it adds a row, not data, and keeps a push of
// content the registry holds working.
func (r *Registry) admitManifest(ctx context.Context, repo string, dgst oci.Digest) error {
	refusal := r.admitSpace()
	if refusal == nil {
		return nil
	}
	if _, err := r.meta.GetManifest(ctx, repo, string(dgst), true, false); err == nil {
		return nil
	}
	return refusal
}

// storeWriter remembers the first error of the blob store side of a copy, so a failed
// write (which leaves nothing resumable) is told from a client body that ended early
// (whose bytes are kept for resumption).
type storeWriter struct {
	w   io.Writer
	err error
	tap Tap
	// live: the tap reads the upload itself and is told only how much was stored.
	live bool
}

func (r *Registry) newStoreWriter(up blobstore.Upload) *storeWriter {
	var w io.Writer = up
	if r.opts.Space != nil {
		w = r.opts.Space.Writer(up)
	}
	return &storeWriter{w: w}
}

// follow lets tap see every byte stored: through the upload itself when the driver
// allows, else as a copy.
func (s *storeWriter) follow(up blobstore.Upload, tap Tap) {
	s.tap = tap
	if f, ok := up.(blobstore.Follower); ok {
		if r, err := f.Follow(); err == nil {
			tap.Follow(r)
			s.live = true
		}
	}
}

func (s *storeWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil && s.err == nil {
		s.err = err
	}
	if n > 0 && s.tap != nil {
		if s.live {
			s.tap.Stored(int64(n))
		} else if _, terr := s.tap.Write(p[:n]); terr != nil {
			if s.err == nil {
				s.err = terr
			}
			return n, terr
		}
	}
	return n, err
}

// releaseSession ends a session that cannot be resumed usefully (its write failed, or a
// monolithic PUT failed): its bytes are deleted now rather than held until the purge,
// which matters most when the failure was a full disk.
func (r *Registry) releaseSession(ctx context.Context, s *session) {
	if s.released {
		return
	}
	s.released = true
	ctx = context.WithoutCancel(ctx)
	if err := s.up.Discard(ctx); err != nil {
		r.log.Warn("release failed upload", "upload", s.row.ID, "err", err)
	}
	if err := r.meta.DeleteUpload(ctx, s.row.ID); err != nil && !errors.Is(err, meta.ErrNotFound) {
		// The row alone holds no bytes; the TTL purge removes it.
		r.log.Warn("forget failed upload", "upload", s.row.ID, "err", err)
	}
	r.remeasure()
}

// remeasure tells the guard, if any, that free space just changed.
func (r *Registry) remeasure() {
	if r.opts.Space != nil {
		r.opts.Space.Remeasure()
	}
}

// pressureUploadIdle spares sessions written to this recently from the pressure purge:
// their client may be about to complete them (a completion without a body adds no
// bytes and is admitted under pressure).
const pressureUploadIdle = 30 * time.Second

// purgeForSpace discards upload sessions oldest first while storage is under pressure,
// until it is not: held bytes of abandoned pushes are the first thing to give back.
func (r *Registry) purgeForSpace(ctx context.Context) (int, error) {
	if r.opts.Space == nil || !r.opts.Space.Pressured(ctx) {
		return 0, nil
	}
	n := 0
	// A row whose delete failed (the database full too) comes back in the next batch:
	// seen ends the loop instead of spinning on it.
	seen := map[string]bool{}
	for {
		oldest, err := r.meta.StaleUploads(ctx, time.Now().Add(-pressureUploadIdle), 100)
		if err != nil {
			return n, err
		}
		fresh := 0
		for _, u := range oldest {
			if seen[u.ID] {
				continue
			}
			seen[u.ID] = true
			fresh++
			r.discardUpload(ctx, u)
			n++
			if !r.opts.Space.Pressured(ctx) {
				r.log.Info("storage pressure purge freed enough space", "uploads", n)
				return n, nil
			}
		}
		if fresh == 0 {
			return n, nil
		}
	}
}
