package registry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"testing/iotest"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/registry"
)

// recordingTap is a registry.Tap that checks, at every report, that what it was told
// is stored is readable and right.
type recordingTap struct {
	t        *testing.T
	content  []byte
	followed *os.File
	stored   int64
	reports  int
	copied   bytes.Buffer
	writeErr error
}

func (r *recordingTap) Follow(f *os.File) {
	if r.stored > 0 || r.copied.Len() > 0 {
		r.t.Error("Follow came after bytes were reported")
	}
	r.followed = f
}

func (r *recordingTap) Stored(n int64) {
	if r.followed == nil {
		r.t.Fatal("Stored without Follow")
	}
	got := make([]byte, n)
	if _, err := r.followed.ReadAt(got, r.stored); err != nil {
		r.t.Fatalf("reading bytes %d+%d reported stored: %v", r.stored, n, err)
	}
	if !bytes.Equal(got, r.content[r.stored:r.stored+n]) {
		r.t.Fatalf("bytes %d+%d reported stored differ from the body", r.stored, n)
	}
	r.stored += n
	r.reports++
}

func (r *recordingTap) Write(p []byte) (int, error) {
	if r.writeErr != nil {
		return 0, r.writeErr
	}
	r.reports++
	return r.copied.Write(p)
}

// unfollowable hides the filesystem driver's Follower, as a driver without one (S3).
type unfollowable struct{ blobstore.Driver }

func (u unfollowable) NewUpload(ctx context.Context) (blobstore.Upload, error) {
	up, err := u.Driver.NewUpload(ctx)
	return struct{ blobstore.Upload }{up}, err
}

func TestPutBlobTap(t *testing.T) {
	content := make([]byte, 12<<20+333) // large enough for the pipelined copy
	rand.Read(content)
	dgst := sha256Of(content)
	for _, follow := range []bool{true, false} {
		name := map[bool]string{true: "follows the upload", false: "gets a copy"}[follow]
		t.Run(name, func(t *testing.T) {
			e := newRegEnv(t, registry.Options{})
			reg := e.reg
			if !follow {
				reg = registry.New(e.store, unfollowable{e.drv}, e.opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
			}
			tap := &recordingTap{t: t, content: content}
			// Reads of odd sizes, as from a socket: each is reported once stored.
			c := registry.Chunk{Body: iotest.HalfReader(bytes.NewReader(content)), Start: -1, Length: int64(len(content)), Tap: tap}
			if _, err := reg.PutBlob(t.Context(), "app", dgst, c); err != nil {
				t.Fatal(err)
			}
			if follow {
				if tap.followed == nil || tap.copied.Len() != 0 {
					t.Fatalf("on the filesystem the tap followed=%v and got %d copied bytes; want it to follow, with no copy", tap.followed != nil, tap.copied.Len())
				}
				defer tap.followed.Close()
				if tap.stored != int64(len(content)) {
					t.Fatalf("reported %d bytes stored, want %d", tap.stored, len(content))
				}
			} else if tap.followed != nil || !bytes.Equal(tap.copied.Bytes(), content) {
				t.Fatalf("without a Follower the tap followed=%v and got %d copied bytes; want a copy of all %d", tap.followed != nil, tap.copied.Len(), len(content))
			}
			// An eager copy: far more reports than 1 MiB buffers.
			if tap.reports < 2*len(content)>>20 {
				t.Errorf("%d reports for %d bytes: the tap waited for whole buffers", tap.reports, len(content))
			}
			readBlob(t, e.reg, "app", dgst, content)
		})
	}

	t.Run("follower reads on after a wrong digest", func(t *testing.T) {
		e := newRegEnv(t, registry.Options{})
		tap := &recordingTap{t: t, content: content}
		wrong := sha256Of([]byte("other"))
		_, err := e.reg.PutBlob(t.Context(), "app", wrong, registry.Chunk{Body: bytes.NewReader(content), Start: -1, Length: -1, Tap: tap})
		wantCode(t, "PutBlob with a wrong digest", err, errcode.DigestInvalid)
		defer tap.followed.Close()
		// The flight cuts its readers short; the descriptor itself stays readable.
		if _, err := tap.followed.ReadAt(make([]byte, 10), 0); err != nil {
			t.Fatalf("followed upload after the failed put: %v", err)
		}
		if files := e.files("uploads"); len(files) != 0 {
			t.Fatalf("a refused put left upload files %v", files)
		}
	})

	t.Run("a failing copy fails the put", func(t *testing.T) {
		e := newRegEnv(t, registry.Options{})
		reg := registry.New(e.store, unfollowable{e.drv}, e.opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
		tap := &recordingTap{t: t, content: content, writeErr: errors.New("spool disk full")}
		_, err := reg.PutBlob(t.Context(), "app", dgst, registry.Chunk{Body: bytes.NewReader(content), Start: -1, Length: int64(len(content)), Tap: tap})
		wantCode(t, "PutBlob with a failing tap", err, errcode.Internal)
		if _, err := reg.StatBlob(t.Context(), "app", dgst); err == nil {
			t.Fatal("the blob was stored although its waiting clients could not follow it")
		}
	})
}
