package storagepressure

import (
	"os"
	"syscall"
)

// sysFallocate reserves size bytes for f without writing them.
func sysFallocate(f *os.File, size int64) error { return syscall.Fallocate(int(f.Fd()), 0, 0, size) }
