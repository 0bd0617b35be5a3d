package blobstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback starts asynchronous writeback of a finished range of an upload; it
// never blocks on I/O, and keeps the final fsync short.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
