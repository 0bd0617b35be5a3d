package adminapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type openAPIOperation struct {
	OperationID string `json:"operationId"`
	Responses   map[string]any
}

// TestOpenAPIMatchesRoutes: every route the router serves is in the document, every
// documented operation is served, and the document's references resolve.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Servers []struct{ URL string }                `json:"servers"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") || len(doc.Servers) != 1 || doc.Servers[0].URL != Prefix {
		t.Fatalf("openapi %q servers %+v", doc.OpenAPI, doc.Servers)
	}
	documented := map[string]bool{}
	ids := map[string]bool{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			if op.OperationID == "" || ids[op.OperationID] || len(op.Responses) == 0 {
				t.Errorf("%s %s: operationId %q (unique, required) and responses required", method, path, op.OperationID)
			}
			ids[op.OperationID] = true
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range routes {
		served[rt.method+" "+rt.path] = true
		if !documented[rt.method+" "+rt.path] {
			t.Errorf("route %s %s is not in openapi.json", rt.method, rt.path)
		}
	}
	for op := range documented {
		if !served[op] {
			t.Errorf("openapi.json documents %s, which the router does not serve", op)
		}
	}

	// The router answers each documented operation itself: not its 404 or 405.
	a := New(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for op := range documented {
		method, path, _ := strings.Cut(op, " ")
		for _, p := range [][2]string{{"{project}", "team"}, {"{user}", "alice"}, {"{robot}", "ci"}, {"{principal}", "user:alice"}, {"{repository}", "tools%2Fapp"}, {"{tag}", "v1"}, {"{digest}", "sha256:" + strings.Repeat("a", 64)}} {
			path = strings.ReplaceAll(path, p[0], p[1])
		}
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(method, Prefix+path, nil))
		want := http.StatusUnauthorized
		if path == "/openapi.json" {
			want = http.StatusOK
		}
		if rec.Code != want {
			t.Errorf("%s %s: %d, want %d (served by the route)", method, path, rec.Code, want)
		}
	}

	// Every $ref resolves.
	var whole any
	if err := json.Unmarshal(openAPIDoc, &whole); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); k == "$ref" && ok {
					if !resolves(whole, s) {
						t.Errorf("unresolved $ref %s", s)
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(whole)
}

func resolves(doc any, ref string) bool {
	parts, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	cur := doc
	for _, p := range strings.Split(parts, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[p]; !ok {
			return false
		}
	}
	return true
}

func TestOpenAPIServed(t *testing.T) {
	a := New(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", Prefix+"/openapi.json", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("GET openapi.json: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}
