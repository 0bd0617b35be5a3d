package storagepressure

import (
	"fmt"
	"syscall"
)

// StatFS measures the file system holding dir: the bytes an unprivileged writer may
// still use (f_bavail, what Berth can actually write) and its size.
func StatFS(dir string) FreeSpace {
	return func() (int64, int64, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
		}
		// Bsize is int64 on Linux and uint32 on macOS.
		return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
	}
}
