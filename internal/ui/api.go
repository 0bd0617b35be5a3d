package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// apiError is a refusal from the admin API, shown to the user as its message.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

// recorder collects an in-process API answer. Answers are small JSON documents (the
// API bounds its listings), so buffering is fine.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// call runs one admin API operation as the visit's user: path is relative to /api/v1,
// body (if not nil) is sent as JSON, and a 2xx answer is decoded into out (if not nil).
// It returns the answer's headers (the Link of the next page).
func (u *UI) call(r *http.Request, v *visit, method, path string, query url.Values, body, out any) (http.Header, error) {
	rec, err := u.do(r, v, method, path, query, body)
	if err != nil {
		return nil, err
	}
	if out != nil && rec.status != http.StatusNoContent {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return nil, fmt.Errorf("ui: %s %s: decode answer: %w", method, path, err)
		}
	}
	return rec.h, nil
}

// do runs the operation and returns the whole answer; a refusal is an *apiError.
func (u *UI) do(r *http.Request, v *visit, method, path string, query url.Values, body any) (*recorder, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	target := "/api/v1" + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(r.Context(), method, target, rd)
	if err != nil {
		return nil, err
	}
	req.RemoteAddr = r.RemoteAddr // the audit trail names the browser's address
	req.Host = r.Host
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{h: http.Header{}}
	u.d.API.ServeAs(rec, req, v.p)
	if rec.status < 200 || rec.status > 299 {
		var e struct {
			Errors []struct{ Code, Message string }
		}
		ae := &apiError{status: rec.status, message: http.StatusText(rec.status)}
		if json.Unmarshal(rec.body.Bytes(), &e) == nil && len(e.Errors) > 0 {
			ae.code, ae.message = e.Errors[0].Code, e.Errors[0].Message
		}
		return rec, ae
	}
	return rec, nil
}

// get is call for reads.
func (u *UI) get(r *http.Request, v *visit, path string, query url.Values, out any) (http.Header, error) {
	return u.call(r, v, http.MethodGet, path, query, nil, out)
}

// isStatus tells whether err is an API refusal with that status.
func isStatus(err error, status int) bool {
	ae, ok := err.(*apiError)
	return ok && ae.status == status
}

// nextParam returns the value of key in a Link: <…?key=value>; rel="next" header.
func nextParam(h http.Header, key string) string {
	l := h.Get("Link")
	if l == "" {
		return ""
	}
	start, end := bytes.IndexByte([]byte(l), '<'), bytes.IndexByte([]byte(l), '>')
	if start < 0 || end < start {
		return ""
	}
	u, err := url.Parse(l[start+1 : end])
	if err != nil {
		return ""
	}
	return u.Query().Get(key)
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
