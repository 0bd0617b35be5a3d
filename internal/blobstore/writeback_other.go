//go:build !linux

package blobstore

import "os"

// startWriteback does nothing where sync_file_range(2) does not exist (macOS, for the
// release archives): the fsync when the upload completes still makes the blob durable,
// it only has more to write then.
func startWriteback(*os.File, int64, int64) {}
