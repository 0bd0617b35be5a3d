// Package errcode owns the OCI distribution error codes and the HTTP status each one is
// answered with. Handlers return these typed values (optionally wrapped); only this package
// decides status codes, so the wire contract lives in one place.
package errcode

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Descriptor is one registered error code: the code string clients match on, a default
// message, and the HTTP status it maps to.
type Descriptor struct {
	Code    string
	Message string
	Status  int
}

// Registered descriptors. The codes are those of the OCI distribution spec; the extra
// descriptors reuse a spec code where the spec leaves the status open.
var (
	BlobUnknown         = register("BLOB_UNKNOWN", "blob unknown to registry", http.StatusNotFound)
	BlobUploadInvalid   = register("BLOB_UPLOAD_INVALID", "blob upload invalid", http.StatusBadRequest)
	BlobUploadUnknown   = register("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", http.StatusNotFound)
	DigestInvalid       = register("DIGEST_INVALID", "provided digest did not match uploaded content", http.StatusBadRequest)
	ManifestBlobUnknown = register("MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", http.StatusBadRequest)
	ManifestInvalid     = register("MANIFEST_INVALID", "manifest invalid", http.StatusBadRequest)
	ManifestUnknown     = register("MANIFEST_UNKNOWN", "manifest unknown to registry", http.StatusNotFound)
	NameInvalid         = register("NAME_INVALID", "invalid repository name", http.StatusBadRequest)
	NameUnknown         = register("NAME_UNKNOWN", "repository name not known to registry", http.StatusNotFound)
	SizeInvalid         = register("SIZE_INVALID", "provided length did not match content length", http.StatusBadRequest)
	Unauthorized        = register("UNAUTHORIZED", "authentication required", http.StatusUnauthorized)
	Denied              = register("DENIED", "requested access to the resource is denied", http.StatusForbidden)
	Unsupported         = register("UNSUPPORTED", "the operation is unsupported", http.StatusMethodNotAllowed)
	TooManyRequests     = register("TOOMANYREQUESTS", "too many requests", http.StatusTooManyRequests)

	// ManifestTooLarge is MANIFEST_INVALID answered with 413 so clients see both the spec
	// code and the reason.
	ManifestTooLarge = register("MANIFEST_INVALID", "manifest exceeds the size limit", http.StatusRequestEntityTooLarge)
	// RangeInvalid answers an out-of-order chunk or an unsatisfiable Range.
	RangeInvalid = register("BLOB_UPLOAD_INVALID", "requested range is not satisfiable", http.StatusRequestedRangeNotSatisfiable)
	// ReferenceInvalid is a malformed tag or digest in the path (the spec has no closer code).
	ReferenceInvalid = register("MANIFEST_INVALID", "invalid tag or digest reference", http.StatusBadRequest)
	// PaginationInvalid is a malformed n or last parameter.
	PaginationInvalid = register("UNSUPPORTED", "invalid pagination parameter", http.StatusBadRequest)
	// RequestTooLarge bounds request bodies that are not blob content.
	RequestTooLarge = register("SIZE_INVALID", "request body too large", http.StatusRequestEntityTooLarge)
	// RequestTimeout is a small request body (a token form) not received within its
	// deadline.
	RequestTimeout = register("UNSUPPORTED", "request body not received in time", http.StatusRequestTimeout)
	// QuotaExceeded is DENIED for a push that would take its project past its byte quota
	// (package quota); the message names the quota and the usage.
	QuotaExceeded = register("DENIED", "project quota exceeded", http.StatusForbidden)
	// StorageFull refuses a write (blob upload, manifest push) while the storage is under
	// pressure: free space below the watermark, the byte budget spent, or a write that
	// failed for lack of space (ENOSPC, SQLITE_FULL, PostgreSQL 53100). It is DENIED, a
	// spec code every client knows, answered with 507 Insufficient Storage (RFC 4918),
	// the status whose meaning this is, rather than 503: clients such as
	// go-containerregistry retry 503 at once and repeatedly, which only adds load while
	// the disk stays full. Reads keep working; the message names the condition.
	StorageFull = register("DENIED", "storage pressure: writes refused", http.StatusInsufficientStorage)
	// Unavailable reports that the service cannot serve right now (e.g. shutting down, database down).
	Unavailable = register("UNAVAILABLE", "service unavailable", http.StatusServiceUnavailable)
	// UpstreamUnavailable reports that a mirrored registry could not be reached or failed,
	// and nothing cached can stand in: 503 on GET and HEAD alike, the status clients
	// treat as "try another mirror or later".
	UpstreamUnavailable = register("UNAVAILABLE", "upstream registry unavailable", http.StatusServiceUnavailable)
	// Internal is any unexpected failure; its detail is logged, never sent.
	Internal = register("UNKNOWN", "internal server error", http.StatusInternalServerError)

	// The admin API (/api/v1) answers with the same error body; these codes are its own,
	// not the distribution spec's.

	// InvalidRequest is a malformed admin request: bad JSON, unknown field, invalid name.
	InvalidRequest = register("INVALID_REQUEST", "invalid request", http.StatusBadRequest)
	// NotFound is an admin resource (project, user, member, robot) or route that does not exist.
	NotFound = register("NOT_FOUND", "not found", http.StatusNotFound)
	// Conflict is an admin resource that already exists, or a change the current state refuses.
	Conflict = register("CONFLICT", "conflict with the current state", http.StatusConflict)
)

var registered []*Descriptor

func register(code, msg string, status int) *Descriptor {
	d := &Descriptor{Code: code, Message: msg, Status: status}
	registered = append(registered, d)
	return d
}

// Descriptors lists every registered descriptor (for documentation and tests).
func Descriptors() []*Descriptor { return append([]*Descriptor(nil), registered...) }

// Error is an occurrence of a descriptor with an optional message and detail.
type Error struct {
	Desc    *Descriptor
	Message string // overrides Desc.Message when set
	Detail  any    // sent to the client as "detail"
	cause   error  // logged, never sent
}

func (e *Error) Error() string {
	msg := e.Desc.Code + ": " + e.msg()
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *Error) msg() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Desc.Message
}

func (e *Error) Unwrap() error { return e.cause }

// Is lets errors.Is(err, errcode.BlobUnknown) work on any wrapped occurrence.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Descriptor:
		return t == e.Desc
	case *Error:
		return t.Desc == e.Desc && t.Message == "" && t.Detail == nil
	}
	return false
}

// Error makes a descriptor usable as a sentinel error itself.
func (d *Descriptor) Error() string { return d.Code + ": " + d.Message }

// New returns an occurrence of d with a specific message.
func (d *Descriptor) New(msg string) *Error { return &Error{Desc: d, Message: msg} }

// WithDetail returns an occurrence of d carrying detail for the client.
func (d *Descriptor) WithDetail(detail any) *Error { return &Error{Desc: d, Detail: detail} }

// Wrap returns an occurrence of d whose cause is err (kept for logs).
func (d *Descriptor) Wrap(err error, msg string) *Error {
	return &Error{Desc: d, Message: msg, cause: err}
}

// From finds the errcode occurrence in err's chain, or nil.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var d *Descriptor
	if errors.As(err, &d) {
		return &Error{Desc: d}
	}
	return nil
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// Write answers the request with err as an OCI error body. Errors that carry no
// descriptor become 500 UNKNOWN; it returns the occurrence written so the caller can log
// unexpected causes.
func Write(w http.ResponseWriter, r *http.Request, err error) *Error {
	e := From(err)
	if e == nil {
		e = Internal.Wrap(err, "")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	w.WriteHeader(e.Desc.Status)
	if r != nil && r.Method == http.MethodHead {
		return e
	}
	body := struct {
		Errors []wireError `json:"errors"`
	}{[]wireError{{Code: e.Desc.Code, Message: e.msg(), Detail: e.Detail}}}
	_ = json.NewEncoder(w).Encode(body)
	return e
}
