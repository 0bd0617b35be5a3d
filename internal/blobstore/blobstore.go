// Package blobstore owns blob bytes: content-addressed storage of immutable blobs and the
// upload sessions that produce them. It knows nothing of repositories or metadata: the
// registry decides which blob is visible where, and records each blob's location in the
// database once the bytes are durable. Drivers (filesystem now, S3 next) implement Driver
// and are proved by one shared test suite (storetest).
package blobstore

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/opencontainers/go-digest"
)

// ErrNotFound reports a location or upload handle the driver does not hold.
var ErrNotFound = errors.New("blobstore: not found")

// ErrUploadBusy reports an upload session another request is writing right now. A
// session has one writer at a time: two interleaved writers could leave bytes on disk
// that differ from the hash the winner recorded.
var ErrUploadBusy = errors.New("blobstore: upload is being written by another request")

// ErrUploadCorrupt reports an upload whose stored bytes are fewer than the recorded
// offset (for example the disk lost them); the upload cannot be resumed.
var ErrUploadCorrupt = errors.New("blobstore: upload data shorter than its recorded offset")

// Driver stores blob bytes. Locations and upload handles are opaque strings the driver
// chooses; the registry persists them in the database.
type Driver interface {
	// NewUpload starts an empty upload session.
	NewUpload(ctx context.Context) (Upload, error)
	// ResumeUpload reopens the session handle whose first offset bytes were acknowledged;
	// bytes past offset (written before a crash, never acknowledged) are discarded. The
	// returned Upload is the session's only writer until closed or committed; meanwhile
	// ResumeUpload fails with ErrUploadBusy.
	ResumeUpload(ctx context.Context, handle string, state []byte, offset int64) (Upload, error)
	// OpenUpload takes the session handle's single-writer hold (ErrUploadBusy when taken)
	// without touching its bytes; the caller then reads the acknowledged offset and state
	// under the hold and calls Rewind. This is what makes read-offset/truncate/write/record
	// atomic. Drivers whose sessions cannot be corrupted by a concurrent writer (because
	// each write lands in a new object named in State) may grant the hold to everyone.
	OpenUpload(ctx context.Context, handle string) (Upload, error)
	// AbortUpload discards a session and its bytes. Aborting an unknown handle is not an error.
	AbortUpload(ctx context.Context, handle string) error
	// Open returns the committed blob at location.
	Open(ctx context.Context, location string) (Blob, error)
	// Delete removes a committed blob. Deleting an unknown location is not an error.
	Delete(ctx context.Context, location string) error
}

// Upload is an open upload session. Writes append. An Upload is used by one goroutine.
type Upload interface {
	io.Writer
	// Handle identifies the session for ResumeUpload and AbortUpload.
	Handle() string
	// Size is the number of bytes written so far.
	Size() int64
	// Rewind returns the session to its acknowledged offset and driver state (the last
	// State recorded with that offset), discarding bytes written after it, and positions
	// writes there; ErrUploadCorrupt when fewer than offset bytes are stored.
	Rewind(offset int64, state []byte) error
	// State is driver-specific bookkeeping (e.g. the multipart parts written) that must be
	// recorded together with Size once Sync has made the bytes durable. Nil for drivers
	// that need none.
	State() []byte
	// Sync makes the bytes written so far durable (before they are acknowledged).
	Sync() error
	// Reader re-reads the bytes written so far (to hash with another algorithm).
	Reader(ctx context.Context) (io.ReadCloser, error)
	// Commit makes the bytes durable as the blob dgst (already verified by the caller)
	// and returns its location. The session is consumed.
	Commit(ctx context.Context, dgst digest.Digest) (location string, err error)
	// Close makes written bytes durable enough to resume and releases resources; the
	// session stays resumable.
	Close() error
	// Discard ends the session without keeping anything: resources are released and its
	// bytes deleted, with no last write first (a duplicate of a stored blob, a digest
	// mismatch).
	Discard(ctx context.Context) error
}

// Blob is a committed blob opened for reading. The filesystem driver returns an
// *os.File inside, so net/http can sendfile it.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
}

// Follower is implemented by uploads whose bytes can be read while they are still being
// written (the filesystem driver): a mirror's waiting clients then read the bytes where
// they are stored instead of from a second copy.
type Follower interface {
	// Follow opens a reader of the upload's bytes. Each byte is readable once Write has
	// returned it, and the reader keeps working after Commit, Discard and the blob's
	// deletion, until it is closed.
	Follow() (*os.File, error)
}

// UploadLister is implemented by drivers that can enumerate upload sessions, so sessions
// orphaned by a crash (bytes written, no database row) can be swept.
type UploadLister interface {
	// UploadsIdleSince lists handles of sessions not written to since before.
	UploadsIdleSince(ctx context.Context, before time.Time) ([]string, error)
}
