package storagepressure

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
)

// reserve is a preallocated file on the database's file system, the room a full disk
// still has for the database to commit deletes, GC and the upload purge: the writes
// that free space. Refusing uploads at the watermark alone is not enough, because
// other writers (an in-flight upload admitted just above it, logs, another process)
// can still take the last byte. The file is released once free space falls below its
// size (the disk is about to be full) and re-created only when the free space would stay
// above both the watermark and twice the reserve with it in place, so the two never
// alternate. Its bytes count as used for the watermark either way (see judge).
type reserve struct {
	path string
	size int64
	held bool
}

func newReserve(path string, size int64) *reserve {
	r := &reserve{path: path, size: size}
	if st, err := os.Stat(path); err == nil && st.Size() >= size {
		r.held = true
	}
	return r
}

// adjust releases or re-creates the file for the measurement s and records the outcome
// in s (Free as it is afterwards, ReserveHeld).
func (r *reserve) adjust(s *Status, log *slog.Logger) {
	switch {
	case r.held && s.Free < r.size:
		if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Error("storage pressure: release the reserve file", "path", r.path, "err", err)
			break
		}
		r.held = false
		s.Free += r.size
		log.Warn("storage pressure: disk nearly full, reserve released so deletes and GC can commit", "path", r.path, "bytes", r.size)
	case !r.held && s.Free-r.size >= max(s.Watermark, r.size):
		if err := r.create(); err != nil {
			log.Warn("storage pressure: re-create the reserve file", "path", r.path, "err", err)
			break
		}
		r.held = true
		s.Free -= r.size
		log.Info("storage pressure: reserve file in place", "path", r.path, "bytes", r.size)
	}
	s.ReserveHeld = r.held
}

// create allocates the file's blocks (fallocate where the file system can, zeros
// otherwise), so the space is really taken, not a sparse promise.
func (r *reserve) create() error {
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create reserve: %w", err)
	}
	err = fallocate(f, r.size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, r.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("allocate reserve: %w", err)
	}
	return nil
}

func fallocate(f *os.File, size int64) error {
	err := sysFallocate(f, size)
	if !errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.ENOSYS) {
		return err
	}
	zeros := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, int64(len(zeros)))
		if _, err := f.Write(zeros[:n]); err != nil {
			return err
		}
		left -= n
	}
	return nil
}
