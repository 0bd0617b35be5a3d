package distribution

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

func (a *API) blob(w http.ResponseWriter, r *http.Request, name, ref string) {
	dgst, err := registry.ParseDigest(ref)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		a.getBlob(w, r, name, dgst)
	case http.MethodDelete:
		if err := a.reg.DeleteBlob(r.Context(), name, dgst); err != nil {
			a.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
	default:
		methodNotAllowed(w, r, a, "GET, HEAD, DELETE")
	}
}

// osFiler is implemented by blobs backed by a local file; serving the *os.File itself
// lets the kernel copy it to the socket (sendfile).
type osFiler interface{ OSFile() *os.File }

func (a *API) getBlob(w http.ResponseWriter, r *http.Request, name string, dgst oci.Digest) {
	h := w.Header()
	if r.Method == http.MethodHead {
		b, err := a.reg.StatBlob(r.Context(), name, dgst)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		setBlobHeaders(h, dgst, b.Size)
		w.WriteHeader(http.StatusOK)
		return
	}
	if u, err := a.reg.BlobRedirect(r.Context(), name, dgst); err != nil {
		a.fail(w, r, err)
		return
	} else if u != "" {
		w.Header().Set("Docker-Content-Digest", string(dgst))
		http.Redirect(w, r, u, http.StatusTemporaryRedirect)
		return
	}
	blob, err := a.reg.OpenBlob(r.Context(), name, dgst)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer blob.Close()
	a.serveBlob(w, r, dgst, blob)
}

// serveBlob answers a blob GET from stored content, honouring a single Range.
func (a *API) serveBlob(w http.ResponseWriter, r *http.Request, dgst oci.Digest, blob blobstore.Blob) {
	h := w.Header()
	size := blob.Size()
	var content io.ReadSeeker = blob
	if f, ok := blob.(osFiler); ok {
		content = f.OSFile()
	}
	start, length, partial, ok := a.blobRange(w, r, dgst, size)
	if !ok {
		return
	}
	setBlobHeaders(h, dgst, size)
	if !partial {
		w.WriteHeader(http.StatusOK)
		copyBlob(w, io.LimitReader(content, size), content)
		return
	}
	if _, err := content.Seek(start, io.SeekStart); err != nil {
		a.fail(w, r, errcode.Internal.Wrap(err, ""))
		return
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+length-1, 10)+"/"+strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusPartialContent)
	copyBlob(w, io.LimitReader(content, length), content)
}

// blobBuffers serve blobs that are not local files.
var blobBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// writerOnly hides the ResponseWriter's ReadFrom, which would copy in 32 KiB steps.
type writerOnly struct{ io.Writer }

// copyBlob sends a blob body: a local file goes through ReadFrom (sendfile); anything
// else (object storage) in 1 MiB reads instead of net/http's 32 KiB loop.
func copyBlob(w http.ResponseWriter, body io.Reader, content io.ReadSeeker) {
	if _, ok := content.(*os.File); ok {
		_, _ = io.Copy(w, body)
		return
	}
	bp := blobBuffers.Get().(*[]byte)
	defer blobBuffers.Put(bp)
	_, _ = io.CopyBuffer(writerOnly{w}, body, *bp)
}

func setBlobHeaders(h http.Header, dgst oci.Digest, size int64) {
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Docker-Content-Digest", string(dgst))
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", `"`+string(dgst)+`"`)
	// Content-addressed: the bytes behind this URL never change.
	h.Set("Cache-Control", "max-age=31536000, immutable")
}

// blobRange interprets the request's Range for a blob of size bytes; ok is false when an
// error was already answered.
func (a *API) blobRange(w http.ResponseWriter, r *http.Request, dgst oci.Digest, size int64) (start, length int64, partial, ok bool) {
	start, length, partial, err := oci.ParseRange(r.Header.Get("Range"), size)
	if errors.Is(err, oci.ErrRangeUnsatisfiable) {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		a.fail(w, r, errcode.RangeInvalid)
		return 0, 0, false, false
	}
	if partial && r.Header.Get("If-Range") != "" && r.Header.Get("If-Range") != `"`+string(dgst)+`"` {
		partial = false
	}
	return start, length, partial, true
}
