package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
)

func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	return io.CopyBuffer(dst, src, *bp)
}

// BlobInfo describes a blob visible in a repository.
type BlobInfo struct {
	Digest oci.Digest
	Size   int64
}

// StatBlob returns the blob if it is visible in repo.
func (r *Registry) StatBlob(ctx context.Context, repo string, dgst oci.Digest) (meta.Blob, error) {
	b, err := r.meta.RepositoryBlob(ctx, repo, string(dgst))
	if errors.Is(err, meta.ErrNotFound) {
		return meta.Blob{}, r.notFound(ctx, repo, errcode.BlobUnknown)
	}
	if err != nil {
		return meta.Blob{}, r.internal(err, "")
	}
	return b, nil
}

// OpenBlob opens the blob for reading if it is visible in repo.
func (r *Registry) OpenBlob(ctx context.Context, repo string, dgst oci.Digest) (blobstore.Blob, error) {
	b, err := r.StatBlob(ctx, repo, dgst)
	if err != nil {
		return nil, err
	}
	f, err := r.blobs.Open(ctx, b.Location)
	if errors.Is(err, blobstore.ErrNotFound) {
		// The row exists but the bytes are gone: storage was damaged or pruned by hand.
		r.log.Error("blob bytes missing for committed blob", "digest", dgst, "location", b.Location)
		return nil, errcode.BlobUnknown
	}
	if err != nil {
		return nil, r.internal(err, "")
	}
	return f, nil
}

// presigner is implemented by drivers whose blobs clients can fetch directly.
type presigner interface {
	PresignGet(ctx context.Context, location string, ttl time.Duration) (string, error)
}

// redirectTTL is how long a presigned blob URL stays valid.
const redirectTTL = 10 * time.Minute

// BlobRedirect returns a presigned URL for the blob when redirects are enabled and the
// driver supports them ("" otherwise); visibility is checked first, as for OpenBlob.
func (r *Registry) BlobRedirect(ctx context.Context, repo string, dgst oci.Digest) (string, error) {
	p, ok := r.blobs.(presigner)
	if !r.opts.RedirectBlobs || !ok {
		return "", nil
	}
	b, err := r.StatBlob(ctx, repo, dgst)
	if err != nil {
		return "", err
	}
	u, err := p.PresignGet(ctx, b.Location, redirectTTL)
	if err != nil {
		return "", r.internal(err, "")
	}
	return u, nil
}

// DeleteBlob removes the blob from the repository's view.
func (r *Registry) DeleteBlob(ctx context.Context, repo string, dgst oci.Digest) error {
	err := r.meta.UnlinkBlob(ctx, repo, string(dgst))
	if errors.Is(err, meta.ErrNotFound) {
		return r.notFound(ctx, repo, errcode.BlobUnknown)
	}
	if err != nil {
		return r.internal(err, "")
	}
	return nil
}

// Mount makes a blob stored elsewhere visible in repo without moving bytes. from names
// the source repository; when empty, any repository the caller may read (canRead) that
// holds the blob will do. It reports false when the blob cannot be mounted: the caller
// then starts an ordinary upload, as the spec allows.
func (r *Registry) Mount(ctx context.Context, repo string, dgst oci.Digest, from string, canRead func(repo string) bool) (BlobInfo, bool, error) {
	if from != "" {
		if err := oci.ValidateName(from); err != nil {
			return BlobInfo{}, false, nil
		}
		if !canRead(from) {
			return BlobInfo{}, false, nil
		}
		if _, err := r.meta.RepositoryBlob(ctx, from, string(dgst)); errors.Is(err, meta.ErrNotFound) {
			return BlobInfo{}, false, nil
		} else if err != nil {
			return BlobInfo{}, false, r.internal(err, "")
		}
	} else {
		repos, err := r.meta.RepositoriesWithBlob(ctx, string(dgst), 100)
		if err != nil {
			return BlobInfo{}, false, r.internal(err, "")
		}
		readable := false
		for _, candidate := range repos {
			if canRead(candidate) {
				readable = true
				break
			}
		}
		if !readable {
			return BlobInfo{}, false, nil
		}
	}
	b, err := r.meta.LinkBlob(ctx, repo, string(dgst))
	if errors.Is(err, meta.ErrNotFound) {
		return BlobInfo{}, false, nil
	}
	if err != nil {
		return BlobInfo{}, false, r.internal(err, "")
	}
	return BlobInfo{Digest: dgst, Size: b.Size}, true, nil
}

// UploadStatus is where an upload session stands.
type UploadStatus struct {
	ID   string
	Size int64
}

func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func marshalHash(h hash.Hash) ([]byte, error) {
	return h.(encoding.BinaryMarshaler).MarshalBinary()
}

func unmarshalSHA256(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if len(state) > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// StartUpload opens an upload session in repo for by.
func (r *Registry) StartUpload(ctx context.Context, repo string, by Uploader) (UploadStatus, error) {
	if err := r.admitSpace(); err != nil {
		return UploadStatus{}, err
	}
	if err := r.admitSession(ctx, repo, by); err != nil {
		return UploadStatus{}, err
	}
	up, err := r.blobs.NewUpload(ctx)
	if err != nil {
		return UploadStatus{}, r.internal(err, "")
	}
	if err := up.Close(); err != nil {
		return UploadStatus{}, r.internal(err, "")
	}
	state, err := marshalHash(sha256.New())
	if err != nil {
		return UploadStatus{}, r.internal(err, "")
	}
	id := newUploadID()
	if err := r.meta.CreateUpload(ctx, meta.Upload{ID: id, Repository: repo, Handle: up.Handle(), HashState: state, DriverState: up.State(), Owner: by.Owner}); err != nil {
		_ = r.blobs.AbortUpload(ctx, up.Handle())
		return UploadStatus{}, r.internal(err, "")
	}
	return UploadStatus{ID: id}, nil
}

func (r *Registry) getUpload(ctx context.Context, repo, id string) (meta.Upload, error) {
	u, err := r.meta.GetUpload(ctx, repo, id)
	if errors.Is(err, meta.ErrNotFound) {
		return meta.Upload{}, errcode.BlobUploadUnknown
	}
	if err != nil {
		return meta.Upload{}, r.internal(err, "")
	}
	return u, nil
}

// GetUpload reports an upload session's progress.
func (r *Registry) GetUpload(ctx context.Context, repo, id string) (UploadStatus, error) {
	u, err := r.getUpload(ctx, repo, id)
	if err != nil {
		return UploadStatus{}, err
	}
	return UploadStatus{ID: id, Size: u.Size}, nil
}

// CancelUpload ends a session and discards its bytes.
func (r *Registry) CancelUpload(ctx context.Context, repo, id string) error {
	u, err := r.getUpload(ctx, repo, id)
	if err != nil {
		return err
	}
	if err := r.meta.DeleteUpload(ctx, u.ID); errors.Is(err, meta.ErrNotFound) {
		return errcode.BlobUploadUnknown
	} else if err != nil {
		return r.internal(err, "")
	}
	if err := r.blobs.AbortUpload(ctx, u.Handle); err != nil {
		r.log.Warn("discard cancelled upload", "upload", id, "err", err)
	}
	return nil
}

// Chunk is a piece of upload body. Start is the offset the client claims it begins at
// (from Content-Range), or -1 when the client did not say; Length is the expected byte
// count, or -1 when unknown (streamed).
type Chunk struct {
	Body   io.Reader
	Start  int64
	Length int64
	// Tap, when set, follows the bytes as PutBlob stores them.
	Tap Tap
}

// Tap follows a blob while PutBlob stores it, for clients that cannot wait for the
// commit (a mirror's waiting clients). When the driver's upload can be read while it is
// written (blobstore.Follower), Follow receives that reader and Stored reports each
// stored write; otherwise Write receives a copy of every stored byte. Either way a tap
// sees a byte only after the store took it.
type Tap interface {
	io.Writer
	// Follow hands over the reader (the tap closes it); it comes before any Stored.
	Follow(r *os.File)
	Stored(n int64)
}

// session is an upload opened for writing.
type session struct {
	row meta.Upload
	up  blobstore.Upload
	h   hash.Hash
	// released: the session and its bytes were discarded (releaseSession).
	released bool
}

// openSession takes the upload's single-writer hold, then reads the acknowledged size
// and hash under it and discards any bytes past that size. Reading the row only after
// the hold is what keeps a concurrent request from truncating acknowledged bytes or
// leaving bytes on disk that differ from the recorded hash.
func (r *Registry) openSession(ctx context.Context, repo, id string) (*session, error) {
	row, err := r.getUpload(ctx, repo, id)
	if err != nil {
		return nil, err
	}
	up, err := r.blobs.OpenUpload(ctx, row.Handle)
	switch {
	case errors.Is(err, blobstore.ErrUploadBusy):
		return nil, errcode.RangeInvalid.New("the upload is being written by another request")
	case errors.Is(err, blobstore.ErrNotFound):
		// The bytes are gone (a crash after committing them but before recording the
		// blob, or damaged storage): the client must start over.
		_ = r.meta.DeleteUpload(context.WithoutCancel(ctx), row.ID)
		return nil, errcode.BlobUploadUnknown.Wrap(err, "upload data is gone; start a new upload")
	case err != nil:
		return nil, r.internal(err, "")
	}
	if row, err = r.getUpload(ctx, repo, id); err != nil {
		up.Close()
		return nil, err
	}
	if err := up.Rewind(row.Size, row.DriverState); err != nil {
		up.Close()
		if errors.Is(err, blobstore.ErrUploadCorrupt) {
			r.discardUpload(context.WithoutCancel(ctx), row)
			return nil, errcode.BlobUploadUnknown.Wrap(err, "upload data is damaged; start a new upload")
		}
		return nil, r.internal(err, "")
	}
	h, err := unmarshalSHA256(row.HashState)
	if err != nil {
		up.Close()
		return nil, r.internal(err, "corrupt upload hash state")
	}
	return &session{row: row, up: up, h: h}, nil
}

// appendChunk appends the chunk, makes it durable and records the new size and hash
// state, all under the session's hold. Bytes that did arrive are recorded even when the
// body fails midway, so the client can ask for the offset and resume.
func (r *Registry) appendChunk(ctx context.Context, s *session, c Chunk) error {
	if c.Start >= 0 && c.Start != s.row.Size {
		return errcode.RangeInvalid.WithDetail(map[string]any{"expectedStart": s.row.Size, "start": c.Start})
	}
	if c.Body == nil {
		return r.checkLength(c, 0)
	}
	if r.opts.MaxBlobSize > 0 && c.Length > r.opts.MaxBlobSize-s.row.Size {
		return errcode.SizeInvalid.New(fmt.Sprintf("blob exceeds the limit of %d bytes", r.opts.MaxBlobSize))
	}
	// Read at most one byte past what the chunk declares (or past the size limit): a
	// longer body is refused without reading it all, and nothing it carried is kept.
	limit := int64(-1)
	if c.Length >= 0 {
		limit = c.Length + 1
	}
	if room := r.opts.MaxBlobSize - s.row.Size + 1; r.opts.MaxBlobSize > 0 && (limit < 0 || room < limit) {
		limit = room
	}
	body := c.Body
	if limit >= 0 {
		body = io.LimitReader(body, limit)
	}
	sw := r.newStoreWriter(s.up)
	n, copyErr := copyHashed(sw, s.h, body, c.Length, false)
	if sw.err != nil {
		// The store could not take the bytes (a full disk, an I/O error): unlike a body
		// that ended early, nothing here is worth resuming, so the bytes go now.
		r.releaseSession(ctx, s)
		return r.internal(sw.err, "")
	}
	// A client that disconnects cancels ctx; what did arrive is still recorded.
	ctx = context.WithoutCancel(ctx)
	if n == 0 && copyErr == nil {
		return r.checkLength(c, n)
	}
	// Refusals below are not recorded: the session's size and hash state stay where
	// they were and the next writer rewinds these bytes away.
	if r.opts.MaxBlobSize > 0 && s.row.Size+n > r.opts.MaxBlobSize {
		return errcode.SizeInvalid.New(fmt.Sprintf("blob exceeds the limit of %d bytes", r.opts.MaxBlobSize))
	}
	if copyErr == nil {
		// A body that ended cleanly but not at its declared length is a wrong chunk,
		// not an interrupted one: keeping part of it would corrupt the blob.
		if err := r.checkLength(c, n); err != nil {
			return err
		}
	}
	if err := s.up.Sync(); err != nil {
		return r.internal(err, "")
	}
	state, err := marshalHash(s.h)
	if err != nil {
		return r.internal(err, "")
	}
	next := s.row
	next.Size += n
	next.HashState = state
	next.DriverState = s.up.State()
	if err := r.meta.AdvanceUpload(ctx, next, s.row.Size); errors.Is(err, meta.ErrConflict) {
		return errcode.RangeInvalid.New("the upload was advanced concurrently")
	} else if err != nil {
		return r.internal(err, "")
	}
	s.row = next
	if copyErr != nil {
		return errcode.BlobUploadInvalid.Wrap(copyErr, "upload body ended early: "+copyErr.Error())
	}
	return r.checkLength(c, n)
}

func (r *Registry) checkLength(c Chunk, n int64) error {
	if c.Length >= 0 && n != c.Length {
		return errcode.SizeInvalid.New(fmt.Sprintf("received %d bytes, expected %d", n, c.Length))
	}
	return nil
}

// AppendUpload appends a chunk (PATCH).
func (r *Registry) AppendUpload(ctx context.Context, repo, id string, c Chunk) (UploadStatus, error) {
	if c.Body != nil {
		if err := r.admitSpace(); err != nil {
			return UploadStatus{}, err
		}
	}
	s, err := r.openSession(ctx, repo, id)
	if err != nil {
		return UploadStatus{}, err
	}
	defer s.up.Close()
	if err := r.appendChunk(ctx, s, c); err != nil {
		return UploadStatus{}, err
	}
	return UploadStatus{ID: id, Size: s.row.Size}, nil
}

// FinishUpload appends an optional last chunk, verifies the whole content against dgst
// and commits the blob (PUT), all under one hold on the session. A mismatch discards
// the session.
func (r *Registry) FinishUpload(ctx context.Context, repo, id string, dgst oci.Digest, c Chunk) (BlobInfo, error) {
	// A completion without a body adds no bytes (they are stored already) and stays
	// admitted under pressure.
	if c.Body != nil {
		if err := r.admitSpace(); err != nil {
			return BlobInfo{}, err
		}
	}
	s, err := r.openSession(ctx, repo, id)
	if err != nil {
		return BlobInfo{}, err
	}
	// A monolithic PUT (POST, then the whole blob in the PUT) that fails leaves nothing a
	// client resumes: clients start such an upload over, so its bytes go at once.
	monolithic := s.row.Size == 0 && c.Body != nil
	if err := r.admitChunk(ctx, repo, string(dgst), s, c); err != nil {
		r.discardRefused(ctx, s.up, s.row.ID)
		return BlobInfo{}, err
	}
	if err := r.appendChunk(ctx, s, c); err != nil {
		if monolithic {
			r.releaseSession(ctx, s)
		}
		s.up.Close()
		return BlobInfo{}, err
	}
	sum, err := r.sumUpload(ctx, s.up, dgst, s.h)
	if errors.Is(err, errors.ErrUnsupported) {
		// The driver cannot re-read an upload in progress (S3 multipart): verify the
		// committed object instead, before it is recorded anywhere.
		return r.commit(ctx, repo, s.up, dgst, s.row.ID, func(location string) error {
			return r.verifyStored(ctx, location, dgst)
		})
	}
	if err != nil {
		s.up.Close()
		return BlobInfo{}, err
	}
	if sum != dgst {
		s.up.Close()
		r.discardUpload(ctx, s.row)
		return BlobInfo{}, errcode.DigestInvalid.WithDetail(map[string]string{"expected": string(dgst), "computed": string(sum)})
	}
	return r.commit(ctx, repo, s.up, dgst, s.row.ID, nil)
}

// sumUpload computes the upload's digest in dgst's algorithm: sha256 comes from the
// persisted running hash; other algorithms re-read the bytes.
func (r *Registry) sumUpload(ctx context.Context, up blobstore.Upload, dgst oci.Digest, h hash.Hash) (oci.Digest, error) {
	if dgst.Algorithm() == oci.SHA256 {
		return oci.NewDigest(oci.SHA256, h), nil
	}
	rd, err := up.Reader(ctx)
	if errors.Is(err, errors.ErrUnsupported) {
		return "", err
	}
	if err != nil {
		return "", r.internal(err, "")
	}
	defer rd.Close()
	v := dgst.Algorithm().Digester()
	if _, err := copyBuffered(v.Hash(), rd); err != nil {
		return "", r.internal(err, "")
	}
	return v.Digest(), nil
}

// verifyStored hashes committed bytes with dgst's algorithm.
func (r *Registry) verifyStored(ctx context.Context, location string, dgst oci.Digest) error {
	b, err := r.blobs.Open(ctx, location)
	if err != nil {
		return r.internal(err, "")
	}
	defer b.Close()
	v := dgst.Algorithm().Digester()
	if _, err := copyBuffered(v.Hash(), b); err != nil {
		return r.internal(err, "")
	}
	if v.Digest() != dgst {
		return errcode.DigestInvalid.WithDetail(map[string]string{"expected": string(dgst), "computed": string(v.Digest())})
	}
	return nil
}

func (r *Registry) discardUpload(ctx context.Context, u meta.Upload) {
	if err := r.meta.DeleteUpload(ctx, u.ID); err != nil && !errors.Is(err, meta.ErrNotFound) {
		r.log.Warn("end failed upload", "upload", u.ID, "err", err)
	}
	if err := r.blobs.AbortUpload(ctx, u.Handle); err != nil {
		r.log.Warn("discard failed upload", "upload", u.ID, "err", err)
	}
}

// commit makes verified bytes a blob visible in repo.
// verify, when set, checks the committed bytes at location before they are recorded
// (for digests the running hash could not cover); an error deletes them.
func (r *Registry) commit(ctx context.Context, repo string, up blobstore.Upload, dgst oci.Digest, uploadID string, verify func(location string) error) (BlobInfo, error) {
	size := up.Size()
	if err := r.admit(ctx, repo, string(dgst), size); err != nil {
		r.discardRefused(ctx, up, uploadID)
		return BlobInfo{}, err
	}
	if existing, err := r.meta.Blob(ctx, string(dgst)); err == nil && existing.Size == size {
		// Already stored: keep one copy, just make it visible here — unless it is being
		// deleted right now, in which case these bytes become the copy.
		if _, err := r.meta.AdoptBlob(ctx, repo, string(dgst), uploadID); err == nil {
			if err := up.Discard(context.WithoutCancel(ctx)); err != nil {
				r.log.Warn("discard duplicate upload", "digest", dgst, "err", err)
			}
			return BlobInfo{Digest: dgst, Size: size}, nil
		} else if q := r.quotaRefusal(err); q != nil {
			r.discardRefused(ctx, up, uploadID)
			return BlobInfo{}, q
		} else if !errors.Is(err, meta.ErrNotFound) {
			return BlobInfo{}, r.internal(err, "")
		}
	}
	location, err := up.Commit(ctx, dgst)
	if errors.Is(err, blobstore.ErrUploadCorrupt) {
		// A racing writer clobbered part of the session: nothing trustworthy to keep.
		_ = up.Discard(context.WithoutCancel(ctx))
		if uploadID != "" {
			_ = r.meta.DeleteUpload(context.WithoutCancel(ctx), uploadID)
		}
		return BlobInfo{}, errcode.BlobUploadUnknown.Wrap(err, "upload data is damaged; start a new upload")
	}
	if err != nil {
		return BlobInfo{}, r.internal(err, "")
	}
	if verify != nil {
		if err := verify(location); err != nil {
			if derr := r.blobs.Delete(context.WithoutCancel(ctx), location); derr != nil {
				r.log.Warn("delete unverified blob", "location", location, "err", derr)
			}
			if uploadID != "" {
				_ = r.meta.DeleteUpload(context.WithoutCancel(ctx), uploadID)
			}
			return BlobInfo{}, err
		}
	}
	stored, err := r.meta.CommitBlob(ctx, repo, meta.Blob{Digest: string(dgst), Size: size, Location: location}, uploadID)
	if q := r.quotaRefusal(err); q != nil {
		r.refusedCommit(ctx, location, uploadID)
		return BlobInfo{}, q
	}
	if err != nil {
		return BlobInfo{}, r.internal(err, "")
	}
	if stored.Location != location {
		// A concurrent upload of the same content won; drop this copy.
		if err := r.blobs.Delete(ctx, location); err != nil {
			r.log.Warn("discard duplicate blob", "digest", dgst, "err", err)
		}
	}
	return BlobInfo{Digest: dgst, Size: size}, nil
}

// PutBlob stores a whole blob in one request (POST ?digest= or a mount fallback).
func (r *Registry) PutBlob(ctx context.Context, repo string, dgst oci.Digest, c Chunk) (BlobInfo, error) {
	if err := r.admit(ctx, repo, string(dgst), c.Length); err != nil {
		return BlobInfo{}, err
	}
	if err := r.admitSpace(); err != nil {
		return BlobInfo{}, err
	}
	up, err := r.blobs.NewUpload(ctx)
	if err != nil {
		return BlobInfo{}, r.internal(err, "")
	}
	v := dgst.Algorithm().Digester()
	body := c.Body
	if body == nil {
		body = strings.NewReader("") // an empty blob
	}
	if r.opts.MaxBlobSize > 0 {
		body = io.LimitReader(body, r.opts.MaxBlobSize+1)
	}
	sw := r.newStoreWriter(up)
	if c.Tap != nil {
		sw.follow(up, c.Tap)
	}
	n, copyErr := copyHashed(sw, v.Hash(), body, c.Length, c.Tap != nil)
	fail := func(e error) (BlobInfo, error) {
		up.Close()
		_ = r.blobs.AbortUpload(context.WithoutCancel(ctx), up.Handle())
		r.remeasure()
		return BlobInfo{}, e
	}
	switch {
	case sw.err != nil:
		return fail(r.internal(sw.err, ""))
	case copyErr != nil:
		return fail(errcode.BlobUploadInvalid.Wrap(copyErr, "upload body ended early: "+copyErr.Error()))
	case r.opts.MaxBlobSize > 0 && n > r.opts.MaxBlobSize:
		return fail(errcode.SizeInvalid.New(fmt.Sprintf("blob exceeds the limit of %d bytes", r.opts.MaxBlobSize)))
	case c.Length >= 0 && n != c.Length:
		return fail(errcode.SizeInvalid.New(fmt.Sprintf("received %d bytes, expected %d", n, c.Length)))
	case v.Digest() != dgst:
		return fail(errcode.DigestInvalid.WithDetail(map[string]string{"expected": string(dgst), "computed": string(v.Digest())}))
	}
	return r.commit(ctx, repo, up, dgst, "", nil)
}

// PurgeUploads discards sessions untouched for longer than the upload TTL, and upload
// files no session row knows (left by a crash between creating the file and the row);
// under storage pressure also the oldest sessions, until the pressure ends.
func (r *Registry) PurgeUploads(ctx context.Context) (int, error) {
	n, err := r.purgeStaleUploads(ctx)
	freed, perr := r.purgeForSpace(ctx)
	return n + freed, errors.Join(err, perr)
}

func (r *Registry) purgeStaleUploads(ctx context.Context) (int, error) {
	stale, err := r.meta.StaleUploads(ctx, time.Now().Add(-r.opts.UploadTTL), 1000)
	if err != nil {
		return 0, err
	}
	for _, u := range stale {
		r.discardUpload(ctx, u)
	}
	n := len(stale)
	lister, ok := r.blobs.(blobstore.UploadLister)
	if !ok {
		return n, nil
	}
	// A file idle this long has no request writing it; if no row names it, nobody will.
	idle, err := lister.UploadsIdleSince(ctx, time.Now().Add(-orphanUploadAge))
	if err != nil || len(idle) == 0 {
		return n, err
	}
	known, err := r.meta.UploadHandles(ctx)
	if err != nil {
		return n, err
	}
	for _, h := range idle {
		if !known[h] {
			if err := r.blobs.AbortUpload(ctx, h); err == nil {
				n++
			}
		}
	}
	return n, nil
}

// orphanUploadAge is how long an upload file with no session row is left alone.
const orphanUploadAge = time.Hour

// EvictManifest removes a cached manifest (with its tags) and the blobs only it made
// visible in the repository, deleting their bytes when no repository can see them any
// more. Mirrors use it to keep a cache within its size limit.
func (r *Registry) EvictManifest(ctx context.Context, repo, digest string) (freed int64, err error) {
	if err := r.meta.DeleteManifest(ctx, repo, digest); err != nil && !errors.Is(err, meta.ErrNotFound) {
		return 0, r.internal(err, "")
	}
	orphans, err := r.meta.UnreferencedBlobs(ctx, repo)
	if err != nil {
		return 0, r.internal(err, "")
	}
	for _, d := range orphans {
		if err := r.meta.UnlinkBlob(ctx, repo, d); err != nil && !errors.Is(err, meta.ErrNotFound) {
			return freed, r.internal(err, "")
		}
		location, deleted, err := r.meta.DeleteBlobIfUnused(ctx, d)
		if err != nil {
			r.log.Debug("blob still in use", "digest", d, "err", err)
			continue
		}
		if !deleted {
			continue
		}
		if b, err := r.blobs.Open(ctx, location); err == nil {
			freed += b.Size()
			b.Close()
		}
		if err := r.blobs.Delete(ctx, location); err != nil {
			r.log.Warn("delete evicted blob bytes", "digest", d, "location", location, "err", err)
		}
	}
	return freed, nil
}

// MarkPulled records a pull of the manifest (for least-recently-pulled eviction).
func (r *Registry) MarkPulled(ctx context.Context, repo, digest string) error {
	return r.meta.MarkPulled(ctx, repo, digest)
}

// PrefixCacheSize is the bytes of distinct blobs visible under a repository prefix.
func (r *Registry) PrefixCacheSize(ctx context.Context, prefix string) (int64, error) {
	return r.meta.PrefixCacheSize(ctx, prefix)
}

// LeastRecentlyPulled lists eviction candidates under a repository prefix.
func (r *Registry) LeastRecentlyPulled(ctx context.Context, prefix string, before time.Time, n int) ([]meta.Manifest, error) {
	return r.meta.LeastRecentlyPulled(ctx, prefix, before, n)
}
