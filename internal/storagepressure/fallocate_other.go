//go:build !linux

package storagepressure

import (
	"os"
	"syscall"
)

// sysFallocate reports ENOSYS where fallocate(2) does not exist (macOS, for the release
// archives), so the reserve file is written with zeros instead.
func sysFallocate(*os.File, int64) error { return syscall.ENOSYS }
