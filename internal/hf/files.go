package hf

import (
	"context"
	"crypto/sha1" //nolint:gosec // git blob ids are SHA-1; used to verify, not to secure
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/spool"
)

// fileMeta is what the Hub says about a file at a commit (its answer to the HEAD that
// huggingface_hub sends): size, ETag, whether it is an LFS file (X-Linked-*), and then
// its sha256.
type fileMeta struct {
	size   int64
	etag   string // unquoted
	linked bool
	sha256 string // hex, for LFS files
}

// headEntry is a file's metadata remembered between a client's HEAD and its GET.
type headEntry struct {
	m  fileMeta
	at time.Time
}

const (
	headTTL      = 10 * time.Minute
	maxHeads     = 10000
	fetchTimeout = 6 * time.Hour // one file download, however slow, while bytes flow
	leaseTTL     = 30 * time.Second
)

// normalizeETag is huggingface_hub's _normalize_etag: W/ and quotes dropped.
func normalizeETag(v string) string {
	return strings.Trim(strings.TrimPrefix(strings.TrimSpace(v), "W/"), `"`)
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// resolvePath is the Hub path of a file: /{repo}/resolve/{commit}/{path}, datasets
// under /datasets.
func resolvePath(repo Repo, commit, p string) string {
	return "/" + repo.String() + "/resolve/" + commit + "/" + escapePath(p)
}

// fileMeta asks the Hub for a file's metadata at a commit (coalesced, remembered
// briefly: at a commit it cannot change).
func (s *Service) fileMeta(ctx context.Context, repo Repo, commit, p string) (fileMeta, error) {
	key := repo.String() + "\x00" + commit + "\x00" + p
	s.mu.Lock()
	e, ok := s.heads[key]
	s.mu.Unlock()
	if ok && time.Since(e.at) < headTTL {
		return e.m, nil
	}
	v, err, _ := s.calls.Do("head\x00"+key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(s.cfg.Timeout))
		defer cancel()
		resp, err := s.up.do(ctx, http.MethodHead, resolvePath(repo, commit, p), nil, followRelative)
		if err != nil {
			return nil, s.upstreamFailed(err)
		}
		resp.Body.Close()
		h := resp.Header
		m := fileMeta{etag: normalizeETag(h.Get("X-Linked-Etag"))}
		m.linked = m.etag != ""
		if !m.linked {
			m.etag = normalizeETag(h.Get("ETag"))
		}
		size := h.Get("X-Linked-Size")
		if size == "" && (resp.StatusCode < 300 || resp.StatusCode >= 400) {
			size = h.Get("Content-Length")
		}
		n, perr := strconv.ParseInt(size, 10, 64)
		if m.etag == "" || perr != nil || n < 0 {
			return nil, &upstreamError{status: http.StatusBadGateway, message: "the Hub's file metadata lacks an ETag or a size"}
		}
		m.size = n
		if m.linked && isHex(strings.ToLower(m.etag), 64) {
			m.sha256 = strings.ToLower(m.etag)
		}
		s.mu.Lock()
		if len(s.heads) >= maxHeads {
			s.heads = map[string]headEntry{}
		}
		s.heads[key] = headEntry{m: m, at: time.Now()}
		s.mu.Unlock()
		return m, nil
	})
	if err != nil {
		return fileMeta{}, err
	}
	return v.(fileMeta), nil
}

// setFileHeaders writes the headers huggingface_hub and @huggingface/hub read: the
// commit, the ETag (the content's: sha256 for LFS files, git blob id otherwise), for
// LFS files X-Linked-Etag and X-Linked-Size. Nothing of the Hub's Xet headers is
// passed on, so clients download over plain HTTP from Berth.
func setFileHeaders(h http.Header, commit string, m fileMeta) {
	h.Set("X-Repo-Commit", commit)
	h.Set("ETag", `"`+m.etag+`"`)
	if m.linked {
		h.Set("X-Linked-Etag", `"`+m.etag+`"`)
		h.Set("X-Linked-Size", strconv.FormatInt(m.size, 10))
	}
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", "application/octet-stream")
}

func (s *Service) serveFile(w http.ResponseWriter, r *http.Request, rt route, local string) {
	ctx := r.Context()
	commit, _, err := s.commitOf(ctx, rt.repo, rt.revision)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if f, err := s.store.File(ctx, rt.repo, commit, rt.path); err == nil {
		if blob, err := s.reg.OpenBlob(ctx, f.LocalRepo, oci.Digest(f.Digest)); err == nil {
			defer blob.Close()
			s.metrics.served("file", "hit")
			w.Header().Set("X-Berth-Cache", "hit")
			s.serveCached(w, r, rt.repo, commit, f, blob)
			return
		}
	} else if !errors.Is(err, errMissing) {
		s.fail(w, r, err)
		return
	}
	m, err := s.fileMeta(ctx, rt.repo, commit, rt.path)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.Method == http.MethodHead {
		setFileHeaders(w.Header(), commit, m)
		w.Header().Set("Content-Length", strconv.FormatInt(m.size, 10))
		w.WriteHeader(http.StatusOK)
		return
	}
	blob, st, how, err := s.open(ctx, rt.repo, commit, rt.path, local, m)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("X-Berth-Cache", how)
	if blob != nil {
		defer blob.Close()
		s.serveCached(w, r, rt.repo, commit, File{Path: rt.path, Size: m.size, ETag: m.etag, Linked: m.linked}, blob)
		return
	}
	defer st.Close()
	setFileHeaders(w.Header(), commit, m)
	s.serveStream(w, r, st, m.size)
}

func (s *Service) serveCached(w http.ResponseWriter, r *http.Request, repo Repo, commit string, f File, blob blobstore.Blob) {
	setFileHeaders(w.Header(), commit, fileMeta{size: f.Size, etag: f.ETag, linked: f.Linked})
	if err := s.store.MarkPulled(r.Context(), repo, commit, f.Path); err != nil {
		s.log.WarnContext(r.Context(), "hf: record pull", "err", err)
	}
	http.ServeContent(w, r, "", time.Time{}, blob)
}

// serveStream answers a GET while the file is still arriving from the Hub: the whole
// file, or one byte range of it (resumed downloads, @huggingface/hub's probes).
func (s *Service) serveStream(w http.ResponseWriter, r *http.Request, st *spool.Stream, size int64) {
	h := w.Header()
	start, length, status := int64(0), size, http.StatusOK
	if rh := r.Header.Get("Range"); rh != "" {
		a, n, ok, satisfiable := parseRange(rh, size)
		if !satisfiable {
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			s.fail(w, r, &hubError{status: http.StatusRequestedRangeNotSatisfiable, msg: "requested range not satisfiable: " + clip(rh)})
			return
		}
		if ok {
			start, length, status = a, n, http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, a+n-1, size))
		}
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	if _, err := io.Copy(w, st.Reader(r.Context(), start, length)); err != nil {
		// Headers are out: cutting the connection is how the client learns; it never
		// receives the last byte of content that failed verification.
		s.log.WarnContext(r.Context(), "hf: download ended early", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// parseRange reads one "bytes=" range of a body of size bytes. ok is false for a range
// the answer may ignore (several ranges, another unit, malformed): the whole body is
// sent; satisfiable is false for a range that starts past the end.
func parseRange(h string, size int64) (start, length int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, true
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, true
	}
	if a == "" { // the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, true
		}
		if n == 0 {
			return 0, 0, false, false
		}
		n = min(n, size)
		return size - n, n, true, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 {
		return 0, 0, false, true
	}
	if first >= size {
		return 0, 0, false, false
	}
	last := size - 1
	if b != "" {
		l, err := strconv.ParseInt(b, 10, 64)
		if err != nil || l < first {
			return 0, 0, false, true
		}
		last = min(l, size-1)
	}
	return first, last - first + 1, true, true
}

// download is one file being fetched from the Hub for every client that wants it.
type download struct{ f *spool.Flight }

// open returns the stored file, or a stream of it being fetched from the Hub (joining
// a download in flight, here or, through a lease in the database, on another replica).
func (s *Service) open(ctx context.Context, repo Repo, commit, p, local string, m fileMeta) (blobstore.Blob, *spool.Stream, string, error) {
	key := local + "\x00" + commit + "\x00" + p
	s.mu.Lock()
	_, inFlight := s.flights[key]
	s.mu.Unlock()
	if !inFlight {
		if b, err := s.awaitLease(ctx, repo, commit, p, key); err != nil || b != nil {
			return b, nil, "coalesced", err
		}
	}
	how := "miss"
	s.mu.Lock()
	d, inFlight := s.flights[key]
	if inFlight {
		d.f.Acquire()
		s.mu.Unlock()
		s.metrics.served("file", "coalesced")
		how = "coalesced"
	} else {
		// A download may have committed since the cache was read: look again under the
		// lock, so no two downloads start.
		if b := s.stored(ctx, repo, commit, p); b != nil {
			s.mu.Unlock()
			s.reg.ReleaseLease(ctx, leaseName(key))
			return b, nil, "hit", nil
		}
		spoolFile, err := os.CreateTemp(s.spoolDir, "hf-*")
		if err != nil {
			s.mu.Unlock()
			return nil, nil, "", errcode.Internal.Wrap(err, "")
		}
		_ = os.Remove(spoolFile.Name()) // the open descriptors keep it alive
		d = &download{f: spool.New(spoolFile)}
		d.f.Acquire() // this caller's reference
		s.flights[key] = d
		s.mu.Unlock()
		s.metrics.served("file", "miss")
		go s.fetch(repo, commit, p, local, m, key, d, spoolFile)
	}
	if _, err := d.f.WaitStarted(ctx); err != nil {
		d.f.Release()
		return nil, nil, "", err
	}
	return nil, d.f.NewStream(), how, nil
}

// stored opens the file if it is cached.
func (s *Service) stored(ctx context.Context, repo Repo, commit, p string) blobstore.Blob {
	f, err := s.store.File(ctx, repo, commit, p)
	if err != nil {
		return nil
	}
	b, err := s.reg.OpenBlob(ctx, f.LocalRepo, oci.Digest(f.Digest))
	if err != nil {
		return nil
	}
	return b
}

// awaitLease takes the file's fetch lease (nil, nil: go ahead), or waits while another
// replica holds it and returns the file once that replica stored it.
func (s *Service) awaitLease(ctx context.Context, repo Repo, commit, p, key string) (blobstore.Blob, error) {
	b, _, err := spool.AwaitLease(ctx, s.reg, leaseName(key), leaseTTL,
		func() bool { // this replica downloads it: join
			s.mu.Lock()
			defer s.mu.Unlock()
			_, local := s.flights[key]
			return local
		},
		func() (blobstore.Blob, bool) {
			b := s.stored(ctx, repo, commit, p)
			if b == nil {
				return nil, false
			}
			s.metrics.served("file", "coalesced")
			return b, true
		})
	return b, err
}

// leaseName names a download's lease in the database (keys hold NUL separators, which
// PostgreSQL text refuses).
func leaseName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "hf-fetch:" + hex.EncodeToString(sum[:16])
}

// errCorrupt reports bytes from the Hub that do not match the file's metadata.
type errCorrupt struct{ msg string }

func (e *errCorrupt) Error() string { return e.msg }

// fetch downloads the file once, detached from any client, and ends the flight: with
// nil once the bytes are verified and stored (readers get the last byte), else with the
// failure (readers are cut short).
func (s *Service) fetch(repo Repo, commit, p, local string, m fileMeta, key string, d *download, spoolFile *os.File) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	release := spool.HoldLease(ctx, s.reg, leaseName(key), leaseTTL)
	err := s.fetchFile(ctx, repo, commit, p, local, m, d, spoolFile)
	if err != nil {
		var c *errCorrupt
		if errors.As(err, &c) {
			s.metrics.upstreamErrors.WithLabelValues("digest").Inc()
		}
		s.log.Warn("hf: file download failed", "repo", repo.String(), "commit", commit, "path", p, "err", err)
	}
	s.mu.Lock()
	delete(s.flights, key)
	s.mu.Unlock()
	release()
	d.f.Finish(err)
	if err == nil {
		s.afterFile(ctx, repo, commit)
		s.nudge()
	}
}

func (s *Service) fetchFile(ctx context.Context, repo Repo, commit, p, local string, m fileMeta, d *download, spoolFile *os.File) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := s.up.do(ctx, http.MethodGet, resolvePath(repo, commit, p), nil, followAll)
	if err != nil {
		return s.upstreamFailed(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &upstreamError{status: http.StatusBadGateway, message: fmt.Sprintf("the Hub answered a file download with %d", resp.StatusCode)}
	}
	if resp.ContentLength >= 0 && resp.ContentLength != m.size {
		return &errCorrupt{msg: fmt.Sprintf("the Hub sends %d bytes for a file of %d", resp.ContentLength, m.size)}
	}
	d.f.Start(m.size)
	// As long as bytes keep flowing the download may take hours; a Hub that goes silent
	// is given up after the timeout.
	timeout := time.Duration(s.cfg.Timeout)
	idle := time.AfterFunc(timeout, cancel)
	defer idle.Stop()
	sum, git := sha256.New(), sha1.New() //nolint:gosec // see the import
	fmt.Fprintf(git, "blob %d\x00", m.size)
	counted := &countingReader{r: resp.Body, onRead: func() { idle.Reset(timeout) }}
	var body io.Reader = io.LimitReader(counted, m.size+1)
	if m.sha256 == "" {
		// A regular file: hash here (the registry hashes an LFS file while storing it).
		body = io.TeeReader(body, io.MultiWriter(sum, git))
	}
	defer func() { s.metrics.upstreamBytes.Add(float64(counted.n)) }()
	var digest oci.Digest
	if m.sha256 != "" {
		// An LFS file names its sha256: store while streaming, the registry verifies it.
		digest = oci.Digest("sha256:" + m.sha256)
		_, err := s.reg.PutBlob(ctx, local, digest, registry.Chunk{Body: body, Start: -1, Length: m.size, Tap: d.f})
		switch {
		case errors.Is(err, errcode.DigestInvalid):
			return &errCorrupt{msg: "the Hub sent bytes whose sha256 is not the file's " + m.sha256}
		case errors.Is(err, errcode.SizeInvalid), errors.Is(err, errcode.BlobUploadInvalid):
			return &errCorrupt{msg: fmt.Sprintf("the Hub sent other than the file's %d bytes: %v", m.size, err)}
		case err != nil:
			return err
		}
	} else {
		// A regular file names its git blob id: spool, verify, then store.
		n, err := io.Copy(d.f, body)
		if err != nil {
			return &upstreamError{err: err}
		}
		if n != m.size {
			return &errCorrupt{msg: fmt.Sprintf("the Hub sent %d bytes for a file of %d", n, m.size)}
		}
		if got := hex.EncodeToString(git.Sum(nil)); isHex(m.etag, 40) && got != m.etag {
			return &errCorrupt{msg: "the Hub sent bytes whose git blob id " + got + " is not the file's " + m.etag}
		}
		digest = oci.Digest("sha256:" + hex.EncodeToString(sum.Sum(nil)))
		if _, err := s.reg.PutBlob(ctx, local, digest, registry.Chunk{Body: io.NewSectionReader(spoolFile, 0, n), Start: -1, Length: n}); err != nil {
			return err
		}
	}
	return s.store.PutFile(ctx, repo, commit, File{Path: p, LocalRepo: local, Digest: string(digest), Size: m.size, ETag: m.etag, Linked: m.linked})
}

type countingReader struct {
	r      io.Reader
	n      int64
	onRead func()
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		c.onRead()
	}
	return n, err
}
