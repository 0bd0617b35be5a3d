package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// StoredBlob is committed bytes found in the store, whatever the database says of them.
type StoredBlob struct {
	Location string
	// Handle is the upload session that wrote it (a location is unique per session).
	Handle   string
	Size     int64
	Modified time.Time
}

// BlobLister is implemented by drivers that can enumerate their committed bytes, so the
// garbage collector can find bytes no row names (a crash between writing and recording
// them, or between deleting a row and its bytes).
type BlobLister interface {
	// ListBlobs calls fn for every committed blob last modified before before.
	ListBlobs(ctx context.Context, before time.Time, fn func(StoredBlob) error) error
}

// ListBlobs implements BlobLister.
func (f *Filesystem) ListBlobs(ctx context.Context, before time.Time, fn func(StoredBlob) error) error {
	root := filepath.Join(f.root, "blobs")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // deleted while walking
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(f.root, path)
		if err != nil {
			return err
		}
		location := filepath.ToSlash(rel)
		if _, err := f.blobPath(location); err != nil {
			return nil // not something Commit wrote
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() || !info.ModTime().Before(before) {
			return nil
		}
		_, handle, _ := strings.Cut(filepath.Base(location), "-")
		return fn(StoredBlob{Location: location, Handle: handle, Size: info.Size(), Modified: info.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("blobstore: list blobs: %w", err)
	}
	return nil
}

// ListBlobs implements BlobLister. An object written by a multipart upload carries the
// upload's start as its modification time, so before must leave room for the longest
// upload (the collector's orphan grace period).
func (d *S3) ListBlobs(ctx context.Context, before time.Time, fn func(StoredBlob) error) error {
	prefix := d.prefix + "blobs/"
	p := s3.NewListObjectsV2Paginator(d.client, &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s3Err("list blobs", err)
		}
		for _, o := range page.Contents {
			location := strings.TrimPrefix(aws.ToString(o.Key), d.prefix)
			handle := handleOfLocation(location)
			if handle == "" || !aws.ToTime(o.LastModified).Before(before) {
				continue
			}
			b := StoredBlob{Location: location, Handle: handle, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}
			if err := fn(b); err != nil {
				return err
			}
		}
	}
	return nil
}
