// Package storetest is the one test suite every blobstore.Driver (filesystem, S3) must
// pass. A driver test calls Run (or RunWith) with a function that returns a driver over
// empty storage.
//
// The suite uses sessions the way the registry does: the driver State is recorded with
// the acknowledged size after Sync or Close, and handed back to ResumeUpload and Rewind
// together with that size.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/opencontainers/go-digest"

	_ "crypto/sha512" // sha512 digests
)

// Options describe what a driver may do differently within the Driver contract.
type Options struct {
	// SharedHold: OpenUpload grants the hold to everyone, which the contract allows for
	// drivers whose writes land in new objects named in State (S3). The suite then does
	// not expect ErrUploadBusy, nor a Size from OpenUpload before Rewind, and checks
	// instead that writers racing from one recorded state cannot change what it describes.
	SharedHold bool
}

// Run runs the suite for a driver with the default Options. newDriver must return a
// driver over empty storage each time it is called; it is called from parallel subtests,
// so it must be safe for concurrent use.
func Run(t *testing.T, newDriver func(t *testing.T) blobstore.Driver) {
	RunWith(t, Options{}, newDriver)
}

// RunWith runs the suite with the driver's Options.
func RunWith(t *testing.T, opts Options, newDriver func(t *testing.T) blobstore.Driver) {
	cases := []struct {
		name string
		fn   func(*testing.T, blobstore.Driver)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyBlob", testEmptyBlob},
		{"SHA512", testSHA512},
		{"CommitSameDigestTwice", testCommitTwice},
		{"ResumeDiscardsUnacknowledged", testResumeDiscards},
		{"ResumeManyTimes", testResumeManyTimes},
		{"ResumeBeyondStoredSize", testResumeBeyond},
		{"UnknownHandle", testUnknownHandle},
		{"CommitConsumesSession", testCommitConsumes},
		{"AbortIdempotent", testAbort},
		{"DeleteIdempotent", testDelete},
		{"OpenUnknown", testOpenUnknown},
		{"ReaderRereads", testReader},
		{"LargeStreaming", testLarge},
		{"ConcurrentUploads", testConcurrent},
		{"SingleWriter", func(t *testing.T, d blobstore.Driver) { testSingleWriter(t, d, opts) }},
		{"ChunkedResumeAcrossParts", testChunkedAcrossParts},
		{"ReaderLargeOrUnsupported", testReaderLarge},
		{"SeekRanges", testSeekRanges},
		{"FollowWhileWriting", testFollow},
	}
	if opts.SharedHold {
		cases = append(cases, struct {
			name string
			fn   func(*testing.T, blobstore.Driver)
		}{"RacingWritersFromOneState", testRacingWriters})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newDriver(t))
		})
	}
}

// states holds the driver State recorded per session and acknowledged size, as the
// registry keeps it in the uploads table.
var states sync.Map // stateKey → []byte

type stateKey struct {
	handle string
	offset int64
}

// latest remembers the most recently recorded offset per handle.
var latest sync.Map // handle → int64

// record stores up's State for its current size, as the registry does after Sync.
func record(up blobstore.Upload) {
	states.Store(stateKey{up.Handle(), up.Size()}, up.State())
	latest.Store(up.Handle(), up.Size())
}

// stateFor is the state recorded with offset, or else the latest one recorded for the
// session (the registry hands Rewind whatever its row holds).
func stateFor(handle string, offset int64) []byte {
	if st, ok := states.Load(stateKey{handle, offset}); ok {
		return st.([]byte)
	}
	if off, ok := latest.Load(handle); ok {
		if st, ok := states.Load(stateKey{handle, off.(int64)}); ok {
			return st.([]byte)
		}
	}
	return nil
}

// ack makes the bytes written so far durable and records the state, as a PATCH does.
func ack(t *testing.T, up blobstore.Upload) {
	t.Helper()
	if err := up.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	record(up)
}

func newUpload(t *testing.T, d blobstore.Driver) blobstore.Upload {
	t.Helper()
	up, err := d.NewUpload(t.Context())
	if err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	if up.Handle() == "" {
		t.Fatal("NewUpload returned an empty handle")
	}
	if up.Size() != 0 {
		t.Fatalf("new upload Size = %d, want 0", up.Size())
	}
	record(up)
	return up
}

func write(t *testing.T, up blobstore.Upload, p []byte) {
	t.Helper()
	before := up.Size()
	n, err := up.Write(p)
	if err != nil || n != len(p) {
		t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
	}
	if got := up.Size(); got != before+int64(len(p)) {
		t.Fatalf("Size after writing %d bytes to %d = %d", len(p), before, got)
	}
}

func resume(t *testing.T, d blobstore.Driver, handle string, offset int64) blobstore.Upload {
	t.Helper()
	up, err := d.ResumeUpload(t.Context(), handle, stateFor(handle, offset), offset)
	if err != nil {
		t.Fatalf("ResumeUpload(%s, %d): %v", handle, offset, err)
	}
	if up.Handle() != handle {
		t.Fatalf("resumed Handle = %q, want %q", up.Handle(), handle)
	}
	if up.Size() != offset {
		t.Fatalf("resumed Size = %d, want %d", up.Size(), offset)
	}
	return up
}

func commit(t *testing.T, up blobstore.Upload, content []byte) string {
	t.Helper()
	loc, err := up.Commit(t.Context(), digest.FromBytes(content))
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if loc == "" {
		t.Fatal("Commit returned an empty location")
	}
	return loc
}

func closeUpload(t *testing.T, up blobstore.Upload) {
	t.Helper()
	if err := up.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	record(up)
}

// readBlob opens location and checks it holds exactly want.
func readBlob(t *testing.T, d blobstore.Driver, location string, want []byte) {
	t.Helper()
	b, err := d.Open(t.Context(), location)
	if err != nil {
		t.Fatalf("Open(%s): %v", location, err)
	}
	defer b.Close()
	if b.Size() != int64(len(want)) {
		t.Fatalf("Open(%s).Size() = %d, want %d", location, b.Size(), len(want))
	}
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("read %s: %v", location, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("blob %s holds %d bytes %.40q, want %d bytes %.40q", location, len(got), got, len(want), want)
	}
}

func readUpload(t *testing.T, up blobstore.Upload) []byte {
	t.Helper()
	r, err := up.Reader(t.Context())
	if err != nil {
		t.Fatalf("Reader: %v", err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read upload: %v", err)
	}
	return got
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func testRoundTrip(t *testing.T, d blobstore.Driver) {
	content := []byte("hello, content-addressed world\n")
	up := newUpload(t, d)
	write(t, up, content[:5])
	write(t, up, content[5:6])
	write(t, up, nil)
	write(t, up, content[6:])
	loc := commit(t, up, content)
	readBlob(t, d, loc, content)

	// A Blob is a ReadSeeker: serve ranges.
	b, err := d.Open(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Seek(7, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(rest, content[7:]) {
		t.Fatalf("read after Seek(7) = %q, %v", rest, err)
	}
	if end, err := b.Seek(0, io.SeekEnd); err != nil || end != int64(len(content)) {
		t.Fatalf("Seek(0, End) = %d, %v", end, err)
	}

	// Two readers at once are independent.
	b1, err := d.Open(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	b2, err := d.Open(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	p1, p2 := make([]byte, 5), make([]byte, 5)
	if _, err := io.ReadFull(b1, p1); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b2, p2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p1, content[:5]) || !bytes.Equal(p2, content[:5]) {
		t.Fatalf("concurrent readers read %q and %q", p1, p2)
	}
}

func testEmptyBlob(t *testing.T, d blobstore.Driver) {
	up := newUpload(t, d)
	loc := commit(t, up, nil)
	readBlob(t, d, loc, nil)
	// Also through a resumed, never-written session.
	up = newUpload(t, d)
	closeUpload(t, up)
	up = resume(t, d, up.Handle(), 0)
	if got := readUpload(t, up); len(got) != 0 {
		t.Fatalf("empty upload reads %q", got)
	}
	readBlob(t, d, commit(t, up, nil), nil)
}

func testSHA512(t *testing.T, d blobstore.Driver) {
	content := []byte("sha512 content")
	up := newUpload(t, d)
	write(t, up, content)
	loc, err := up.Commit(t.Context(), digest.SHA512.FromBytes(content))
	if err != nil {
		t.Fatal(err)
	}
	readBlob(t, d, loc, content)
	up = newUpload(t, d)
	write(t, up, content)
	loc256 := commit(t, up, content)
	if loc256 == loc {
		t.Fatalf("sha256 and sha512 blobs share location %s", loc)
	}
	readBlob(t, d, loc, content)
	readBlob(t, d, loc256, content)
}

func testCommitTwice(t *testing.T, d blobstore.Driver) {
	content := []byte("pushed twice")
	var locs []string
	for range 2 {
		up := newUpload(t, d)
		write(t, up, content)
		locs = append(locs, commit(t, up, content))
	}
	for _, loc := range locs {
		readBlob(t, d, loc, content)
	}
	// Two sessions committing the same digest at once both succeed.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	locs = make([]string, 8)
	for i := range errs {
		up := newUpload(t, d)
		write(t, up, content)
		wg.Add(1)
		go func() {
			defer wg.Done()
			locs[i], errs[i] = up.Commit(context.Background(), digest.FromBytes(content))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent commits of one digest: %v", err)
	}
	for _, loc := range locs {
		readBlob(t, d, loc, content)
	}
}

func testResumeDiscards(t *testing.T, d blobstore.Driver) {
	up := newUpload(t, d)
	write(t, up, []byte("hello"))
	ack(t, up)
	// Bytes written but never acknowledged (say the request died before the database
	// recorded the new offset).
	write(t, up, []byte(" unacknowledged garbage"))
	closeUpload(t, up)

	up = resume(t, d, up.Handle(), 5)
	if got := readUpload(t, up); string(got) != "hello" {
		t.Fatalf("resumed upload reads %q, want %q", got, "hello")
	}
	write(t, up, []byte(", world"))
	if got := readUpload(t, up); string(got) != "hello, world" {
		t.Fatalf("upload reads %q after resumed write", got)
	}
	want := []byte("hello, world")
	readBlob(t, d, commit(t, up, want), want)

	// Resuming at 0 discards everything.
	up = newUpload(t, d)
	write(t, up, []byte("all of this goes"))
	closeUpload(t, up)
	up = resume(t, d, up.Handle(), 0)
	write(t, up, []byte("fresh"))
	readBlob(t, d, commit(t, up, []byte("fresh")), []byte("fresh"))
}

func testResumeManyTimes(t *testing.T, d blobstore.Driver) {
	var want []byte
	up := newUpload(t, d)
	handle := up.Handle()
	closeUpload(t, up)
	for i := range 10 {
		up = resume(t, d, handle, int64(len(want)))
		chunk := bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
		write(t, up, chunk)
		want = append(want, chunk...)
		closeUpload(t, up)
	}
	up = resume(t, d, handle, int64(len(want)))
	if got := readUpload(t, up); !bytes.Equal(got, want) {
		t.Fatalf("upload after 10 resumes reads %d bytes, want %d", len(got), len(want))
	}
	readBlob(t, d, commit(t, up, want), want)
}

func testResumeBeyond(t *testing.T, d blobstore.Driver) {
	up := newUpload(t, d)
	write(t, up, []byte("12345"))
	closeUpload(t, up)
	_, err := d.ResumeUpload(t.Context(), up.Handle(), stateFor(up.Handle(), 6), 6)
	wantErr(t, "ResumeUpload past the stored bytes", err, blobstore.ErrUploadCorrupt)
	// The refusal did not damage the session.
	up = resume(t, d, up.Handle(), 5)
	write(t, up, []byte("6"))
	readBlob(t, d, commit(t, up, []byte("123456")), []byte("123456"))
}

func testUnknownHandle(t *testing.T, d blobstore.Driver) {
	ctx := t.Context()
	up := newUpload(t, d)
	closeUpload(t, up)
	if err := d.AbortUpload(ctx, up.Handle()); err != nil {
		t.Fatal(err)
	}
	_, err := d.ResumeUpload(ctx, up.Handle(), stateFor(up.Handle(), 0), 0)
	wantErr(t, "ResumeUpload of an aborted handle", err, blobstore.ErrNotFound)
	for _, h := range []string{"", "nope", "../../etc/passwd", "/etc/passwd", "uploads/x", up.Handle() + "0"} {
		_, err := d.ResumeUpload(ctx, h, nil, 0)
		wantErr(t, fmt.Sprintf("ResumeUpload(%q)", h), err, blobstore.ErrNotFound)
	}
}

func testCommitConsumes(t *testing.T, d blobstore.Driver) {
	up := newUpload(t, d)
	write(t, up, []byte("once"))
	loc := commit(t, up, []byte("once"))
	_, err := d.ResumeUpload(t.Context(), up.Handle(), stateFor(up.Handle(), 4), 4)
	wantErr(t, "ResumeUpload after Commit", err, blobstore.ErrNotFound)
	_, err = d.ResumeUpload(t.Context(), up.Handle(), nil, 0)
	wantErr(t, "ResumeUpload after Commit", err, blobstore.ErrNotFound)
	if err := d.AbortUpload(t.Context(), up.Handle()); err != nil {
		t.Fatalf("AbortUpload after Commit: %v", err)
	}
	readBlob(t, d, loc, []byte("once")) // aborting a committed session leaves the blob
}

func testAbort(t *testing.T, d blobstore.Driver) {
	ctx := t.Context()
	up := newUpload(t, d)
	write(t, up, []byte("discard me"))
	closeUpload(t, up)
	for i := range 3 {
		if err := d.AbortUpload(ctx, up.Handle()); err != nil {
			t.Fatalf("AbortUpload #%d: %v", i+1, err)
		}
	}
	_, err := d.ResumeUpload(ctx, up.Handle(), nil, 0)
	wantErr(t, "ResumeUpload after AbortUpload", err, blobstore.ErrNotFound)
	_, err = d.ResumeUpload(ctx, up.Handle(), stateFor(up.Handle(), 10), 10)
	wantErr(t, "ResumeUpload after AbortUpload", err, blobstore.ErrNotFound)
	for _, h := range []string{"", "nope", "../x"} {
		if err := d.AbortUpload(ctx, h); err != nil {
			t.Fatalf("AbortUpload(%q): %v", h, err)
		}
	}
	// Aborting one session leaves others alone.
	a, b := newUpload(t, d), newUpload(t, d)
	write(t, a, []byte("a"))
	write(t, b, []byte("b"))
	closeUpload(t, a)
	closeUpload(t, b)
	if err := d.AbortUpload(ctx, a.Handle()); err != nil {
		t.Fatal(err)
	}
	b = resume(t, d, b.Handle(), 1)
	readBlob(t, d, commit(t, b, []byte("b")), []byte("b"))
}

func testDelete(t *testing.T, d blobstore.Driver) {
	ctx := t.Context()
	up := newUpload(t, d)
	write(t, up, []byte("short-lived"))
	loc := commit(t, up, []byte("short-lived"))
	other := newUpload(t, d)
	write(t, other, []byte("stays"))
	otherLoc := commit(t, other, []byte("stays"))
	for i := range 3 {
		if err := d.Delete(ctx, loc); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	_, err := d.Open(ctx, loc)
	wantErr(t, "Open after Delete", err, blobstore.ErrNotFound)
	readBlob(t, d, otherLoc, []byte("stays"))
	// The same content can be stored again after a delete.
	up = newUpload(t, d)
	write(t, up, []byte("short-lived"))
	readBlob(t, d, commit(t, up, []byte("short-lived")), []byte("short-lived"))
}

func testOpenUnknown(t *testing.T, d blobstore.Driver) {
	ctx := t.Context()
	up := newUpload(t, d)
	write(t, up, []byte("x"))
	loc := commit(t, up, []byte("x"))
	if err := d.Delete(ctx, loc); err != nil {
		t.Fatal(err)
	}
	_, err := d.Open(ctx, loc)
	wantErr(t, "Open(deleted location)", err, blobstore.ErrNotFound)
	for _, l := range []string{"", "does-not-exist", "blobs/sha256/00/00"} {
		_, err := d.Open(ctx, l)
		wantErr(t, fmt.Sprintf("Open(%q)", l), err, blobstore.ErrNotFound)
	}
	// An upload in progress is not a blob.
	up = newUpload(t, d)
	write(t, up, []byte("in progress"))
	defer up.Close()
	for _, l := range []string{up.Handle(), "uploads/" + up.Handle()} {
		if b, err := d.Open(ctx, l); err == nil {
			b.Close()
			t.Fatalf("Open(%q) opened an upload in progress", l)
		}
	}
}

func testReader(t *testing.T, d blobstore.Driver) {
	up := newUpload(t, d)
	if got := readUpload(t, up); len(got) != 0 {
		t.Fatalf("new upload reads %q", got)
	}
	write(t, up, []byte("first"))
	ack(t, up)
	for range 2 { // re-readable any number of times
		if got := readUpload(t, up); string(got) != "first" {
			t.Fatalf("upload reads %q, want %q", got, "first")
		}
	}
	write(t, up, []byte(" second"))
	if got := readUpload(t, up); string(got) != "first second" {
		t.Fatalf("upload reads %q, want %q", got, "first second")
	}
	closeUpload(t, up)
	up = resume(t, d, up.Handle(), 5)
	if got := readUpload(t, up); string(got) != "first" {
		t.Fatalf("resumed upload reads %q, want %q", got, "first")
	}
	// A reader opened before more writes sees at least what was written when opened, and
	// the final content reads back whole.
	r, err := up.Reader(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	write(t, up, []byte("!"))
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.HasPrefix(got, []byte("first")) {
		t.Fatalf("early reader read %q, %v", got, err)
	}
	readBlob(t, d, commit(t, up, []byte("first!")), []byte("first!"))
}

// pattern fills p with pseudo-random bytes that are not periodic, cheaply.
func pattern(seed uint64, p []byte) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], r.Uint64())
	}
}

func testLarge(t *testing.T, d blobstore.Driver) {
	const size, chunk = 32 << 20, 1 << 20
	block := make([]byte, chunk)
	pattern(1, block)
	h := sha256.New()
	up := newUpload(t, d)
	for i := range size / chunk {
		binary.LittleEndian.PutUint64(block, uint64(i)) // every chunk differs
		h.Write(block)
		write(t, up, block)
	}
	dgst := digest.NewDigest(digest.SHA256, h)
	// Close and resume at the end, as a chunked upload's final PUT does.
	closeUpload(t, up)
	up = resume(t, d, up.Handle(), size)
	loc, err := up.Commit(t.Context(), dgst)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Open(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Size() != size {
		t.Fatalf("Size = %d, want %d", b.Size(), size)
	}
	v := digest.SHA256.Digester()
	n, err := io.Copy(v.Hash(), b)
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v; want %d", n, err, size)
	}
	if v.Digest() != dgst {
		t.Fatalf("32 MiB blob reads back as %s, want %s", v.Digest(), dgst)
	}
}

func testConcurrent(t *testing.T, d blobstore.Driver) {
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = uploadOne(d, i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// uploadOne writes a distinct blob in chunks, with a close and resume midway, and checks it
// reads back; it returns errors rather than failing, to run in its own goroutine.
func uploadOne(d blobstore.Driver, i int) error {
	ctx := context.Background()
	content := make([]byte, 64<<10+i*1000)
	pattern(uint64(100+i), content)
	up, err := d.NewUpload(ctx)
	if err != nil {
		return err
	}
	half := len(content) / 2
	for off := 0; off < half; off += 4096 {
		if _, err := up.Write(content[off:min(off+4096, half)]); err != nil {
			return err
		}
	}
	// Acknowledge half, write some bytes that will not be acknowledged, then resume at half.
	if err := up.Sync(); err != nil {
		return err
	}
	state := up.State()
	if _, err := up.Write([]byte("unacknowledged")); err != nil {
		return err
	}
	if err := up.Close(); err != nil {
		return err
	}
	up, err = d.ResumeUpload(ctx, up.Handle(), state, int64(half))
	if err != nil {
		return fmt.Errorf("upload %d: resume: %w", i, err)
	}
	if _, err := up.Write(content[half:]); err != nil {
		return err
	}
	loc, err := up.Commit(ctx, digest.FromBytes(content))
	if err != nil {
		return fmt.Errorf("upload %d: commit: %w", i, err)
	}
	b, err := d.Open(ctx, loc)
	if err != nil {
		return fmt.Errorf("upload %d: open: %w", i, err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, content) || b.Size() != int64(len(content)) {
		return fmt.Errorf("upload %d: read back %d bytes (Size %d), want %d", i, len(got), b.Size(), len(content))
	}
	return nil
}

// testSingleWriter: while one writer holds a session, a second open is refused with
// ErrUploadBusy; after the first closes, OpenUpload sees its bytes and Rewind trims
// unacknowledged ones. Drivers with a shared hold skip the ErrUploadBusy and pre-Rewind
// size checks (the contract lets them grant the hold to everyone).
func testSingleWriter(t *testing.T, d blobstore.Driver, opts Options) {
	ctx := t.Context()
	up := newUpload(t, d)
	if _, err := up.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	ack(t, up) // "hello" acknowledged
	if _, err := up.Write([]byte(" world")); err != nil {
		t.Fatal(err)
	}
	if !opts.SharedHold {
		if _, err := d.OpenUpload(ctx, up.Handle()); !errors.Is(err, blobstore.ErrUploadBusy) {
			t.Fatalf("OpenUpload while held by a new upload: %v, want ErrUploadBusy", err)
		}
	}
	if err := up.Close(); err != nil {
		t.Fatal(err)
	}
	state11 := up.State()
	held, err := d.OpenUpload(ctx, up.Handle())
	if err != nil {
		t.Fatal(err)
	}
	if !opts.SharedHold {
		if held.Size() != 11 {
			t.Fatalf("OpenUpload size %d, want 11", held.Size())
		}
		if _, err := d.ResumeUpload(ctx, up.Handle(), stateFor(up.Handle(), 5), 5); !errors.Is(err, blobstore.ErrUploadBusy) {
			t.Fatalf("ResumeUpload while held: %v, want ErrUploadBusy", err)
		}
	}
	if err := held.Rewind(20, state11); !errors.Is(err, blobstore.ErrUploadCorrupt) {
		t.Fatalf("Rewind past the stored bytes: %v, want ErrUploadCorrupt", err)
	}
	if err := held.Rewind(5, stateFor(up.Handle(), 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := held.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	if err := held.Sync(); err != nil {
		t.Fatal(err)
	}
	rd, err := held.Reader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rd)
	rd.Close()
	if string(got) != "hello!" {
		t.Fatalf("after rewind and write: %q, want %q", got, "hello!")
	}
	held.Close()
}

// testChunkedAcrossParts: a 20 MiB upload in alternating 1 MiB and 3 MiB chunks, each in
// its own session (resume, write, acknowledge, close), some followed by bytes that are
// never acknowledged, so chunks straddle multipart part boundaries (S3) on the way.
func testChunkedAcrossParts(t *testing.T, d blobstore.Driver) {
	const size = 20 << 20
	content := make([]byte, size)
	pattern(7, content)
	up := newUpload(t, d)
	handle := up.Handle()
	closeUpload(t, up)
	off := 0
	for i := 0; off < size; i++ {
		chunk := 1 << 20
		if i%2 == 1 {
			chunk = 3 << 20
		}
		chunk = min(chunk, size-off)
		up = resume(t, d, handle, int64(off))
		write(t, up, content[off:off+chunk])
		off += chunk
		ack(t, up)
		if i%3 == 2 {
			// The request died after writing more than it acknowledged.
			write(t, up, []byte("garbage that is never acknowledged"))
		}
		closeUpload(t, up)
	}
	up = resume(t, d, handle, size)
	readBlob(t, d, commit(t, up, content), content)
}

// testReaderLarge: re-reading an upload bigger than a multipart part either works
// exactly or is refused with errors.ErrUnsupported (S3 cannot read parts back before the
// upload completes; the registry then verifies after Commit).
func testReaderLarge(t *testing.T, d blobstore.Driver) {
	const size = 20<<20 + 4321
	content := make([]byte, size)
	pattern(11, content)
	up := newUpload(t, d)
	for off := 0; off < size; off += 1 << 20 {
		write(t, up, content[off:min(off+1<<20, size)])
	}
	check := func(up blobstore.Upload) {
		t.Helper()
		r, err := up.Reader(t.Context())
		if errors.Is(err, errors.ErrUnsupported) {
			t.Logf("Reader of a %d-byte upload: %v", size, err)
			return
		}
		if err != nil {
			t.Fatalf("Reader: %v", err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("Reader read %d bytes (%v), want the %d written", len(got), err, size)
		}
	}
	check(up)
	ack(t, up)
	closeUpload(t, up)
	up = resume(t, d, up.Handle(), size)
	check(up)
	readBlob(t, d, commit(t, up, content), content)
}

// testSeekRanges: a committed blob serves ranges through Seek (as HTTP Range requests do),
// across multipart part boundaries.
func testSeekRanges(t *testing.T, d blobstore.Driver) {
	const size = 20<<20 + 12345
	content := make([]byte, size)
	pattern(13, content)
	up := newUpload(t, d)
	for off := 0; off < size; off += 3 << 20 {
		write(t, up, content[off:min(off+3<<20, size)])
	}
	loc := commit(t, up, content)
	b, err := d.Open(t.Context(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	readAt := func(off int64, n int) {
		t.Helper()
		if pos, err := b.Seek(off, io.SeekStart); err != nil || pos != off {
			t.Fatalf("Seek(%d) = %d, %v", off, pos, err)
		}
		want := content[off:min(off+int64(n), size)]
		got := make([]byte, len(want))
		if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes at %d: %v, content differs: %v", n, off, err, !bytes.Equal(got, want))
		}
	}
	for _, off := range []int64{0, 1, 5<<20 - 1, 8<<20 - 3, 8 << 20, 16<<20 + 7, size - 100000, size - 1} {
		readAt(off, 100000)
	}
	// Backwards and relative seeks, reading only part of each range.
	readAt(12<<20, 10)
	readAt(4<<20, 4096)
	if pos, err := b.Seek(-5, io.SeekCurrent); err != nil || pos != 4<<20+4091 {
		t.Fatalf("Seek(-5, Current) = %d, %v", pos, err)
	}
	p := make([]byte, 5)
	if _, err := io.ReadFull(b, p); err != nil || !bytes.Equal(p, content[4<<20+4091:4<<20+4096]) {
		t.Fatalf("read after relative seek: %q, %v", p, err)
	}
	if pos, err := b.Seek(-10, io.SeekEnd); err != nil || pos != size-10 {
		t.Fatalf("Seek(-10, End) = %d, %v", pos, err)
	}
	rest, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(rest, content[size-10:]) {
		t.Fatalf("last 10 bytes: %q, %v", rest, err)
	}
	if _, err := b.Seek(size+10, io.SeekStart); err != nil {
		t.Fatalf("Seek past the end: %v", err)
	}
	if n, err := b.Read(p); n != 0 || err != io.EOF {
		t.Fatalf("Read past the end = %d, %v; want 0, EOF", n, err)
	}
	if _, err := b.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("Seek to a negative position succeeded")
	}
}

// testRacingWriters (shared-hold drivers): two writers resume from one recorded state and
// both write and sync; only one state is recorded (the registry's compare-and-swap), and
// the session then holds exactly what that state describes.
func testRacingWriters(t *testing.T, d blobstore.Driver) {
	ctx := t.Context()
	up := newUpload(t, d)
	write(t, up, []byte("base-"))
	ack(t, up)
	closeUpload(t, up)
	h := up.Handle()
	a := resume(t, d, h, 5)
	b := resume(t, d, h, 5)
	write(t, a, []byte("AAAA"))
	write(t, b, []byte("BBBBBBBB"))
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	won := a.State()
	if err := b.Sync(); err != nil { // b loses the compare-and-swap: its state is dropped
		t.Fatal(err)
	}
	closeUpload(t, a)
	closeUpload(t, b)
	c, err := d.ResumeUpload(ctx, h, won, 9)
	if err != nil {
		t.Fatal(err)
	}
	if got := readUpload(t, c); string(got) != "base-AAAA" {
		t.Fatalf("session after the race reads %q, want %q", got, "base-AAAA")
	}
	write(t, c, []byte("!"))
	readBlob(t, d, commit(t, c, []byte("base-AAAA!")), []byte("base-AAAA!"))
}

// testFollow checks a Follower's reader: it sees each write as soon as Write returns,
// and keeps reading the same bytes after the commit, after the blob's deletion, and after
// a discarded session's bytes are gone.
func testFollow(t *testing.T, d blobstore.Driver) {
	up := newUpload(t, d)
	fw, ok := up.(blobstore.Follower)
	if !ok {
		up.Discard(t.Context())
		t.Skip("this driver's uploads cannot be read while written; the mirror spools a copy instead")
	}
	r, err := fw.Follow()
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	defer r.Close()
	content := make([]byte, 3<<20+7)
	pattern(7, content)
	readAt := func(off, n int) {
		t.Helper()
		got := make([]byte, n)
		if _, err := r.ReadAt(got, int64(off)); err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
		}
		if !bytes.Equal(got, content[off:off+n]) {
			t.Fatalf("ReadAt(%d, %d) differs from the bytes written", off, n)
		}
	}
	for off := 0; off < len(content); off += 1 << 20 {
		end := min(off+1<<20, len(content))
		write(t, up, content[off:end])
		readAt(off, end-off) // what was just written, before any sync
	}
	loc := commit(t, up, content)
	readAt(0, len(content))
	if err := d.Delete(t.Context(), loc); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	readAt(len(content)-100, 100)

	gone := newUpload(t, d)
	write(t, gone, content[:1000])
	r2, err := gone.(blobstore.Follower).Follow()
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	defer r2.Close()
	if err := gone.Discard(t.Context()); err != nil {
		t.Fatalf("Discard: %v", err)
	}
	got := make([]byte, 1000)
	if _, err := r2.ReadAt(got, 0); err != nil || !bytes.Equal(got, content[:1000]) {
		t.Fatalf("a follower of a discarded session read %v, want the bytes written", err)
	}
}
