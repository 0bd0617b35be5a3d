package distribution

import (
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/limits"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

func (a *API) upload(w http.ResponseWriter, r *http.Request, name, id string) {
	if id == "" {
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, a, "POST")
			return
		}
		a.startUpload(w, r, name)
		return
	}
	if !validUploadID(id) {
		a.fail(w, r, errcode.BlobUploadUnknown)
		return
	}
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet:
		st, err := a.reg.GetUpload(ctx, name, id)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeUploadStatus(w, name, st, http.StatusNoContent)
	case http.MethodPatch:
		c, err := chunkOf(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		st, err := a.reg.AppendUpload(ctx, name, id, c)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeUploadStatus(w, name, st, http.StatusAccepted)
	case http.MethodPut:
		dgst, err := digestParam(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		c, err := chunkOf(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		b, err := a.reg.FinishUpload(ctx, name, id, dgst, c)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeBlobCreated(w, name, b.Digest)
	case http.MethodDelete:
		if err := a.reg.CancelUpload(ctx, name, id); err != nil {
			a.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
	default:
		methodNotAllowed(w, r, a, "GET, PATCH, PUT, DELETE")
	}
}

func (a *API) startUpload(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		dgst, err := registry.ParseDigest(mount)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		canRead := func(repo string) bool { return a.opts.CanRead(r, repo) }
		b, ok, err := a.reg.Mount(ctx, name, dgst, q.Get("from"), canRead)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if ok {
			writeBlobCreated(w, name, b.Digest)
			return
		}
		// Not mountable: fall back to an ordinary upload session, as the spec allows.
	} else if q.Has("digest") {
		dgst, err := digestParam(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		c, err := chunkOf(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		b, err := a.reg.PutBlob(ctx, name, dgst, c)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeBlobCreated(w, name, b.Digest)
		return
	}
	st, err := a.reg.StartUpload(ctx, name, uploader(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeUploadStatus(w, name, st, http.StatusAccepted)
}

// uploader names who starts a session, for the session limits: a principal by kind and
// name, an anonymous caller by client address (anonymous tokens name no one).
func uploader(r *http.Request) registry.Uploader {
	owner := "a:" + limits.Client(r)
	if c := callerOf(r); c != nil && c.budgetKey() != "" {
		owner = "p:" + c.budgetKey()
	}
	return registry.Uploader{Owner: owner, Exempt: limits.Exempt(r)}
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
			return false
		}
	}
	return true
}

func digestParam(r *http.Request) (oci.Digest, error) {
	v := r.URL.Query().Get("digest")
	if v == "" {
		return "", errcode.DigestInvalid.New("the digest query parameter is required")
	}
	return registry.ParseDigest(v)
}

// chunkOf describes the request body as an upload chunk: its claimed offset from
// Content-Range and its length from Content-Range or Content-Length.
func chunkOf(r *http.Request) (registry.Chunk, error) {
	c := registry.Chunk{Body: r.Body, Start: -1, Length: r.ContentLength}
	if r.ContentLength == 0 {
		c.Body = nil
	}
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, err := oci.ParseContentRange(cr)
		if err != nil {
			return c, errcode.RangeInvalid.New("malformed Content-Range " + strconv.Quote(cr))
		}
		n := end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != n {
			return c, errcode.RangeInvalid.New("Content-Range and Content-Length disagree")
		}
		c.Start, c.Length = start, n
	}
	return c, nil
}

func writeUploadStatus(w http.ResponseWriter, name string, st registry.UploadStatus, status int) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/uploads/"+st.ID)
	h.Set("Docker-Upload-UUID", st.ID)
	end := st.Size - 1
	if end < 0 {
		end = 0
	}
	h.Set("Range", "0-"+strconv.FormatInt(end, 10))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

func writeBlobCreated(w http.ResponseWriter, name string, dgst oci.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+string(dgst))
	h.Set("Docker-Content-Digest", string(dgst))
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
