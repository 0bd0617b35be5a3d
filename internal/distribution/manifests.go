package distribution

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

func (a *API) manifest(w http.ResponseWriter, r *http.Request, name, refStr string) {
	ref, err := registry.ParseReference(refStr)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		m, err := a.reg.GetManifest(ctx, name, ref, r.Method == http.MethodGet)
		if err == nil {
			err = a.checkPull(w, r, name, "", ref, m)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeManifest(w, r, m)
	case http.MethodPut:
		a.putManifest(w, r, name, ref)
	case http.MethodDelete:
		if err := a.reg.DeleteManifest(ctx, name, ref); err != nil {
			a.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
	default:
		methodNotAllowed(w, r, a, "GET, HEAD, PUT, DELETE")
	}
}

func (a *API) putManifest(w http.ResponseWriter, r *http.Request, name string, ref registry.Reference) {
	limit := a.opts.MaxManifestSize
	if r.ContentLength > limit {
		a.fail(w, r, errcode.ManifestTooLarge.New("manifest of "+strconv.FormatInt(r.ContentLength, 10)+" bytes exceeds the limit of "+strconv.FormatInt(limit, 10)))
		return
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		a.fail(w, r, errcode.ManifestInvalid.Wrap(err, "reading manifest body: "+err.Error()))
		return
	}
	if n > limit {
		a.fail(w, r, errcode.ManifestTooLarge.New("manifest exceeds the limit of "+strconv.FormatInt(limit, 10)+" bytes"))
		return
	}
	res, err := a.reg.PutManifest(r.Context(), name, ref, r.Header.Get("Content-Type"), buf.Bytes(), r.URL.Query()["tag"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.opts.Trust != nil {
		a.opts.Trust.Stored(r.Context(), name, res)
	}
	if a.opts.Scan != nil {
		a.opts.Scan.Pushed(r.Context(), name, string(res.Digest), string(res.Subject))
	}
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/manifests/"+string(res.Digest))
	h.Set("Docker-Content-Digest", string(res.Digest))
	if res.Subject != "" {
		h.Set("OCI-Subject", string(res.Subject))
	}
	if ref.Digest != "" && len(res.Tags) > 0 {
		h.Set("OCI-Tag", strings.Join(res.Tags, ", "))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (a *API) referrers(w http.ResponseWriter, r *http.Request, name, ref string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, a, "GET, HEAD")
		return
	}
	dgst, err := registry.ParseDigest(ref)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	artifactType := r.URL.Query().Get("artifactType")
	descs, err := a.reg.Referrers(r.Context(), name, dgst, artifactType)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if descs == nil {
		descs = []oci.Descriptor{}
	}
	body, err := json.Marshal(struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Manifests     []oci.Descriptor `json:"manifests"`
	}{2, oci.MediaTypeOCIIndex, descs})
	if err != nil {
		a.fail(w, r, errcode.Internal.Wrap(err, ""))
		return
	}
	h := w.Header()
	if artifactType != "" {
		h.Set("OCI-Filters-Applied", "artifactType")
	}
	h.Set("Content-Type", oci.MediaTypeOCIIndex)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

func writeManifest(w http.ResponseWriter, r *http.Request, m meta.Manifest) {
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	h.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	h.Set("Docker-Content-Digest", m.Digest)
	h.Set("ETag", `"`+m.Digest+`"`)
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, `"`+m.Digest+`"`) {
		h.Del("Content-Length")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(m.Payload)
	}
}
