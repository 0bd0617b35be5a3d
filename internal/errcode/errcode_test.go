package errcode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		err       error
		status    int
		code, msg string
	}{
		{BlobUnknown, 404, "BLOB_UNKNOWN", "blob unknown to registry"},
		{fmt.Errorf("wrapped: %w", ManifestInvalid.New("bad json")), 400, "MANIFEST_INVALID", "bad json"},
		{ManifestTooLarge, 413, "MANIFEST_INVALID", "manifest exceeds the size limit"},
		{RangeInvalid, 416, "BLOB_UPLOAD_INVALID", "requested range is not satisfiable"},
		{errors.New("disk on fire"), 500, "UNKNOWN", "internal server error"},
		{Internal.Wrap(errors.New("secret detail"), ""), 500, "UNKNOWN", "internal server error"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		Write(rec, httptest.NewRequest(http.MethodGet, "/", nil), tt.err)
		if rec.Code != tt.status {
			t.Errorf("%v: status %d, want %d", tt.err, rec.Code, tt.status)
		}
		var body struct {
			Errors []struct{ Code, Message string }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
			t.Fatalf("%v: body %q", tt.err, rec.Body.String())
		}
		if body.Errors[0].Code != tt.code || body.Errors[0].Message != tt.msg {
			t.Errorf("%v: got %+v, want %s %q", tt.err, body.Errors[0], tt.code, tt.msg)
		}
	}
}

func TestHeadHasNoBody(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, httptest.NewRequest(http.MethodHead, "/", nil), NameUnknown)
	if rec.Code != 404 || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d %q", rec.Code, rec.Body.String())
	}
}

func TestIs(t *testing.T) {
	err := fmt.Errorf("ctx: %w", DigestInvalid.WithDetail("x"))
	if !errors.Is(err, DigestInvalid) || errors.Is(err, BlobUnknown) {
		t.Fatal("errors.Is does not match descriptors")
	}
	if From(errors.New("plain")) != nil {
		t.Fatal("From of a plain error")
	}
}

func TestDescriptorsHaveStatus(t *testing.T) {
	for _, d := range Descriptors() {
		if d.Status < 400 || d.Status > 599 || d.Code == "" || d.Message == "" {
			t.Errorf("descriptor %+v", d)
		}
	}
}
