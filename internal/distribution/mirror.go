package distribution

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/registry"
)

// serveMirror answers a read of a mirrored repository: the cache when it can, the
// upstream when it must.
func (a *API) serveMirror(w http.ResponseWriter, r *http.Request, rt route, t *proxy.Target) {
	ctx := r.Context()
	switch rt.kind {
	case routeManifest:
		ref, err := registry.ParseReference(rt.ref)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		m, err := a.mirror.Manifest(ctx, t, ref, r.Method == http.MethodGet)
		if err == nil {
			err = a.checkPull(w, r, t.LocalRepo, t.Upstream.Name(), ref, m)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeManifest(w, r, m)
	case routeBlob:
		dgst, err := registry.ParseDigest(rt.ref)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if r.Method == http.MethodHead {
			size, err := a.mirror.StatBlob(ctx, t, dgst)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			setBlobHeaders(w.Header(), dgst, size)
			w.WriteHeader(http.StatusOK)
			return
		}
		blob, stream, err := a.mirror.OpenBlob(ctx, t, dgst)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if blob != nil {
			defer blob.Close()
			a.serveBlob(w, r, dgst, blob)
			return
		}
		defer stream.Close()
		a.serveStream(w, r, dgst, stream)
	case routeTags:
		body, err := a.mirror.Tags(ctx, t, r.URL.RawQuery)
		if err != nil {
			if errors.Is(err, errcode.UpstreamUnavailable) || errors.Is(err, errcode.TooManyRequests) {
				a.tags(w, r, t.LocalRepo) // what the cache knows
				return
			}
			a.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	case routeReferrers:
		a.referrers(w, r, t.LocalRepo, rt.ref)
	default:
		a.fail(w, r, errcode.Unsupported.New("not available for mirrored repositories"))
	}
}

// serveStream answers a blob GET while the blob is still arriving from the upstream.
func (a *API) serveStream(w http.ResponseWriter, r *http.Request, dgst oci.Digest, s *proxy.Stream) {
	size := s.Size()
	h := w.Header()
	if size < 0 {
		// Unknown length: the whole blob, chunked.
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Docker-Content-Digest", string(dgst))
		w.WriteHeader(http.StatusOK)
		_, _ = io.Copy(w, s.Reader(r.Context(), 0, -1))
		return
	}
	start, length, partial, ok := a.blobRange(w, r, dgst, size)
	if !ok {
		return
	}
	setBlobHeaders(h, dgst, size)
	if !partial {
		start, length = 0, size
		w.WriteHeader(http.StatusOK)
	} else {
		h.Set("Content-Length", strconv.FormatInt(length, 10))
		h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+length-1, 10)+"/"+strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusPartialContent)
	}
	if _, err := io.Copy(w, s.Reader(r.Context(), start, length)); err != nil {
		// Headers are out: cutting the connection short is how the client learns.
		a.log.WarnContext(r.Context(), "mirror stream ended early", "digest", dgst, "err", err)
		panic(http.ErrAbortHandler)
	}
}
