// Package spool shares one download among every client that asks for the same content
// while it runs: readers follow the bytes as they are stored (in the upload file itself
// where the blob store allows, else in a copy spooled to an unlinked temporary file),
// and the last byte is held back until the downloader has verified the content. The
// image mirror (package proxy) and the Hugging Face mirror (package hf) both stream
// through it.
package spool

import (
	"context"
	"io"
	"os"
	"strconv"
	"sync"
)

// Flight is one upstream download shared by every client that asks for the content
// while it runs. Readers follow the stored bytes and block for bytes not yet there:
// the spool is the blob store's own upload file once Follow hands it over, else an
// unlinked temporary file that Write fills with a copy. The last byte is held back
// until the digest is verified, so no client ever receives a complete body that does not
// match its digest: on a mismatch the response is cut short and the client fails.
type Flight struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever state changes
	spool   *os.File      // guarded by mu: Follow replaces it
	size    int64         // from the upstream's Content-Length; -1 unknown
	started bool          // headers received (size known) or failed
	written int64
	done    bool
	err     error
	refs    int // readers plus the fetcher; the spool closes at zero
}

// New starts a flight spooling to spool (an unlinked temporary file) with one
// reference, the downloader's.
func New(spool *os.File) *Flight {
	return &Flight{changed: make(chan struct{}), spool: spool, size: -1, refs: 1}
}

func (f *Flight) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Start records the upstream's announced size.
func (f *Flight) Start(size int64) {
	f.mu.Lock()
	f.size, f.started = size, true
	f.broadcast()
	f.mu.Unlock()
}

// Follow makes r, a reader of the upload being stored, the spool readers read (the
// temporary spool is closed): from then on Stored, not Write, reports new bytes. It is
// called before any byte is written.
func (f *Flight) Follow(r *os.File) {
	f.mu.Lock()
	old := f.spool
	f.spool = r
	f.mu.Unlock()
	old.Close()
}

// Stored reports n more bytes readable through the followed upload.
func (f *Flight) Stored(n int64) {
	f.mu.Lock()
	f.written += n
	f.broadcast()
	f.mu.Unlock()
}

// Write appends downloaded bytes to the spool (when the upload cannot be followed).
func (f *Flight) Write(p []byte) (int, error) {
	n, err := f.spool.WriteAt(p, f.written)
	f.Stored(int64(n))
	return n, err
}

// Finish ends the flight and drops the downloader's reference; err nil means the
// content is verified (readers get the last byte), an error cuts every reader short.
func (f *Flight) Finish(err error) {
	f.mu.Lock()
	f.done, f.started, f.err = true, true, err
	f.broadcast()
	f.mu.Unlock()
	f.Release()
}

// Acquire adds a reference (a reader joining).
func (f *Flight) Acquire() {
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
}

// Release drops a reference; the spool closes with the last.
func (f *Flight) Release() {
	f.mu.Lock()
	f.refs--
	last, spool := f.refs == 0, f.spool
	f.mu.Unlock()
	if last {
		spool.Close()
	}
}

// WaitStarted blocks until the size is known or the flight failed.
func (f *Flight) WaitStarted(ctx context.Context) (int64, error) {
	for {
		f.mu.Lock()
		started, size, done, err, ch := f.started, f.size, f.done, f.err, f.changed
		f.mu.Unlock()
		if done && err != nil {
			return 0, err
		}
		if started {
			return size, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Stream is a client's view of content being fetched from an upstream.
type Stream struct {
	f *Flight
}

// Size is the blob's size, or -1 when the upstream did not announce it.
func (s *Stream) Size() int64 {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.f.size
}

// NewStream is a reader's view of the flight; the caller has Acquired a reference,
// which the stream's Close releases.
func (f *Flight) NewStream() *Stream { return &Stream{f: f} }

// Close releases the stream's hold on the spool.
func (s *Stream) Close() error {
	s.f.Release()
	return nil
}

// Reader returns the bytes [off, off+n) as they arrive; n < 0 reads to the end.
func (s *Stream) Reader(ctx context.Context, off, n int64) io.Reader {
	end := int64(-1)
	if n >= 0 {
		end = off + n
	}
	return &streamReader{ctx: ctx, f: s.f, off: off, end: end}
}

type streamReader struct {
	ctx context.Context
	f   *Flight
	off int64
	end int64 // exclusive; -1 for the end of the blob
}

// next waits until bytes past r.off may be read and returns the spool holding them and
// the end of the readable range; io.EOF at the end of the range or of the blob.
func (r *streamReader) next() (*os.File, int64, error) {
	if r.end >= 0 && r.off >= r.end {
		return nil, 0, io.EOF
	}
	for {
		f := r.f
		f.mu.Lock()
		avail, done, err, ch, spool := f.written, f.done, f.err, f.changed, f.spool
		f.mu.Unlock()
		if done && err != nil {
			return nil, 0, err
		}
		if !done {
			avail-- // hold back the last byte until verified
		}
		if r.off < avail {
			if r.end >= 0 && r.end < avail {
				avail = r.end
			}
			return spool, avail, nil
		}
		if done {
			return nil, 0, io.EOF
		}
		select {
		case <-ch:
		case <-r.ctx.Done():
			return nil, 0, r.ctx.Err()
		}
	}
}

func (r *streamReader) Read(p []byte) (int, error) {
	spool, limit, err := r.next()
	if err != nil {
		return 0, err
	}
	if int64(len(p)) > limit-r.off {
		p = p[:limit-r.off]
	}
	n, rerr := spool.ReadAt(p, r.off)
	r.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}

// WriteTo implements io.WriterTo so that io.Copy hands w whole stored ranges as a file:
// net/http's response then sends them with sendfile on a plain TCP connection, with no
// copy through user space. The spool's descriptor is shared, so the range is read
// through a descriptor of this reader's own, opened again through /proc (Linux); where
// that fails, bytes are copied through a buffer.
func (r *streamReader) WriteTo(w io.Writer) (int64, error) {
	var own, ownOf *os.File
	defer func() {
		if own != nil {
			own.Close()
		}
	}()
	var total int64
	for {
		spool, limit, err := r.next()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if ownOf != spool { // the first range, or Follow replaced the spool
			if own != nil {
				own.Close()
			}
			own, ownOf = reopen(spool), spool
		}
		if own == nil {
			n, err := io.Copy(w, struct{ io.Reader }{r}) // Read, through a buffer
			return total + n, err
		}
		var n int64
		if _, err = own.Seek(r.off, io.SeekStart); err == nil {
			n, err = io.Copy(w, io.LimitReader(own, limit-r.off))
		}
		r.off += n
		total += n
		if err != nil {
			return total, err
		}
	}
}

// reopen opens a second, independent file description of f (its own offset), or nil.
func reopen(f *os.File) *os.File {
	own, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return nil
	}
	return own
}
