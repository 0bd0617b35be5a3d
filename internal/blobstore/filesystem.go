package blobstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Filesystem stores blobs under root:
//
//	root/blobs/<alg>/<first two hex>/<hex>   committed, immutable, content-addressed
//	root/uploads/<handle>                    in-progress upload sessions
//
// A blob appears under blobs/ only by an atomic rename after fsync, so a reader never sees
// a partial blob, and a crash leaves at worst an orphaned upload file.
type Filesystem struct {
	root string
	// durableDirs holds the blob directories whose entries up to blobs/ this process
	// has fsynced: a commit into one then syncs only that directory (for its rename),
	// not its parents again — two fsyncs fewer per small blob.
	durableDirs sync.Map // path → struct{}
}

// NewFilesystem prepares root for use.
func NewFilesystem(root string) (*Filesystem, error) {
	for _, dir := range []string{"blobs", "uploads"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o750); err != nil {
			return nil, fmt.Errorf("blobstore: create %s: %w", dir, err)
		}
	}
	return &Filesystem{root: root}, nil
}

func (f *Filesystem) uploadPath(handle string) (string, error) {
	if len(handle) != 32 || strings.Trim(handle, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: upload handle %q", ErrNotFound, handle)
	}
	return filepath.Join(f.root, "uploads", handle), nil
}

func (f *Filesystem) blobPath(location string) (string, error) {
	// Locations are produced by Commit; refuse anything else so a corrupted row can never
	// name a path outside the store.
	parts := strings.Split(location, "/")
	if filepath.Clean(location) != location || len(parts) != 4 || parts[0] != "blobs" ||
		len(parts[2]) != 2 || !strings.HasPrefix(parts[3], parts[2]) || strings.Contains(location, "..") {
		return "", fmt.Errorf("%w: location %q", ErrNotFound, location)
	}
	clean := location
	return filepath.Join(f.root, clean), nil
}

// NewUpload implements Driver.
func (f *Filesystem) NewUpload(ctx context.Context) (Upload, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	handle := hex.EncodeToString(b[:])
	path, _ := f.uploadPath(handle)
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("blobstore: create upload: %w", err)
	}
	if err := unix.Flock(int(file.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		file.Close()
		return nil, fmt.Errorf("blobstore: lock upload: %w", err)
	}
	return &fsUpload{fs: f, handle: handle, path: path, file: file}, nil
}

// ResumeUpload implements Driver.
func (f *Filesystem) ResumeUpload(ctx context.Context, handle string, state []byte, offset int64) (Upload, error) {
	up, err := f.OpenUpload(ctx, handle)
	if err != nil {
		return nil, err
	}
	if err := up.Rewind(offset, state); err != nil {
		up.Close()
		return nil, err
	}
	return up, nil
}

// OpenUpload implements Driver.
func (f *Filesystem) OpenUpload(ctx context.Context, handle string) (Upload, error) {
	path, err := f.uploadPath(handle)
	if err != nil {
		return nil, err
	}
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: upload %s", ErrNotFound, handle)
	}
	if err != nil {
		return nil, fmt.Errorf("blobstore: open upload: %w", err)
	}
	// One writer per session, across processes on this host; the kernel drops the lock
	// when the writer closes or dies, so a crash never leaves a session stuck.
	if err := unix.Flock(int(file.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		file.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrUploadBusy, handle)
		}
		return nil, fmt.Errorf("blobstore: lock upload: %w", err)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		// Committed or aborted between our open and our lock.
		file.Close()
		return nil, fmt.Errorf("%w: upload %s", ErrNotFound, handle)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, err
	}
	return &fsUpload{fs: f, handle: handle, path: path, file: file, size: st.Size(), synced: st.Size()}, nil
}

// AbortUpload implements Driver.
func (f *Filesystem) AbortUpload(ctx context.Context, handle string) error {
	path, err := f.uploadPath(handle)
	if err != nil {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: remove upload: %w", err)
	}
	return nil
}

// Open implements Driver.
func (f *Filesystem) Open(ctx context.Context, location string) (Blob, error) {
	path, err := f.blobPath(location)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, location)
	}
	if err != nil {
		return nil, fmt.Errorf("blobstore: open blob: %w", err)
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, err
	}
	return &FileBlob{File: file, size: st.Size()}, nil
}

// Delete implements Driver.
func (f *Filesystem) Delete(ctx context.Context, location string) error {
	path, err := f.blobPath(location)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: delete blob: %w", err)
	}
	return nil
}

// FileBlob is a committed blob on the local filesystem. The embedded *os.File lets
// http.ServeContent use sendfile.
type FileBlob struct {
	*os.File
	size int64
}

// Size implements Blob.
func (b *FileBlob) Size() int64 { return b.size }

// writebackChunk is how much dirty data an upload accumulates before it asks the kernel
// to start writing it back, so the fsync at commit has little left to do.
const writebackChunk = 8 << 20

type fsUpload struct {
	fs     *Filesystem
	handle string
	path   string
	file   *os.File
	size   int64
	synced int64 // bytes already handed to writeback
	dirty  bool  // written or truncated since the last fsync
}

func (u *fsUpload) Handle() string { return u.handle }
func (u *fsUpload) Size() int64    { return u.size }

func (u *fsUpload) Sync() error {
	if !u.dirty {
		return nil
	}
	if err := u.file.Sync(); err != nil {
		return err
	}
	u.dirty = false
	return nil
}

// State implements Upload: the file is its own state.
func (u *fsUpload) State() []byte { return nil }

func (u *fsUpload) Rewind(offset int64, _ []byte) error {
	if u.size < offset {
		return fmt.Errorf("%w: %s has %d bytes, %d acknowledged", ErrUploadCorrupt, u.handle, u.size, offset)
	}
	if u.size > offset {
		if err := u.file.Truncate(offset); err != nil {
			return fmt.Errorf("blobstore: truncate upload: %w", err)
		}
		u.dirty = true
	}
	if _, err := u.file.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	u.size, u.synced = offset, offset
	return nil
}

func (u *fsUpload) Write(p []byte) (int, error) {
	n, err := u.file.Write(p)
	u.size += int64(n)
	if n > 0 {
		u.dirty = true
	}
	if u.size-u.synced >= writebackChunk {
		// Start asynchronous writeback of the finished range; it never blocks on I/O.
		startWriteback(u.file, u.synced, u.size-u.synced)
		u.synced = u.size
	}
	return n, err
}

func (u *fsUpload) Reader(ctx context.Context) (io.ReadCloser, error) {
	f, err := os.Open(u.path)
	if err != nil {
		return nil, fmt.Errorf("blobstore: reopen upload: %w", err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, u.size), f}, nil
}

// Follow implements Follower: a second descriptor of the upload file sees every write at
// once (one page cache) and, being open, outlives the commit's rename and any unlink.
func (u *fsUpload) Follow() (*os.File, error) {
	f, err := os.Open(u.path)
	if err != nil {
		return nil, fmt.Errorf("blobstore: follow upload: %w", err)
	}
	return f, nil
}

func (u *fsUpload) Close() error {
	if u.file == nil {
		return nil
	}
	err := u.Sync()
	if cerr := u.file.Close(); err == nil {
		err = cerr
	}
	u.file = nil
	return err
}

func (u *fsUpload) Discard(ctx context.Context) error {
	if u.file != nil {
		u.file.Close()
		u.file = nil
	}
	return u.fs.AbortUpload(ctx, u.handle)
}

func (u *fsUpload) Commit(ctx context.Context, dgst digest.Digest) (string, error) {
	if err := u.Close(); err != nil {
		return "", fmt.Errorf("blobstore: sync upload: %w", err)
	}
	// The location is unique per commit (digest plus session handle): deleting a blob's
	// bytes can then never remove a later commit of the same content.
	hexPart := dgst.Encoded()
	location := filepath.Join("blobs", string(dgst.Algorithm()), hexPart[:2], hexPart+"-"+u.handle)
	dst := filepath.Join(u.fs.root, location)
	dir := filepath.Dir(dst)
	// A known directory still there (Mkdir says it exists) needs no parent syncs; one
	// created now, by anyone, does.
	_, known := u.fs.durableDirs.Load(dir)
	if known && !errors.Is(os.Mkdir(dir, 0o750), fs.ErrExist) {
		known = false
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("blobstore: create blob dir: %w", err)
	}
	// Identical content under the same name: the rename atomically replaces equal bytes.
	if err := os.Rename(u.path, dst); err != nil {
		return "", fmt.Errorf("blobstore: commit blob: %w", err)
	}
	// The rename lives in dir, and MkdirAll may just have created dir and its parent: sync
	// each level up to blobs/ so the entry survives power loss once the row says it exists.
	for d := dir; ; d = filepath.Dir(d) {
		if err := syncDir(d); err != nil {
			return "", err
		}
		if known || d == filepath.Join(u.fs.root, "blobs") || d == filepath.Dir(d) {
			break
		}
	}
	u.fs.durableDirs.Store(dir, struct{}{})
	return location, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("blobstore: open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("blobstore: sync dir: %w", err)
	}
	return nil
}

// UploadsIdleSince implements UploadLister.
func (f *Filesystem) UploadsIdleSince(ctx context.Context, before time.Time) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(f.root, "uploads"))
	if err != nil {
		return nil, fmt.Errorf("blobstore: list uploads: %w", err)
	}
	var out []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if _, err := f.uploadPath(e.Name()); err == nil && info.ModTime().Before(before) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// OSFile exposes the file so HTTP can serve it with sendfile.
func (b *FileBlob) OSFile() *os.File { return b.File }
