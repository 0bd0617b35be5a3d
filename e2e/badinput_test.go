package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file holds TestBadInput (issue 2, "Bad input") and the small raw-HTTP helpers it
// shares with crash_test.go. Helpers are prefixed "bi" so they cannot collide with other
// files of the package.

// biHTTP never follows redirects: a redirect is an answer the test must see, not hide.
var biHTTP = &http.Client{
	Timeout:       60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// biSpecCodes are the error codes the distribution spec allows in an error body.
var biSpecCodes = map[string]bool{
	"BLOB_UNKNOWN": true, "BLOB_UPLOAD_INVALID": true, "BLOB_UPLOAD_UNKNOWN": true, "DIGEST_INVALID": true,
	"MANIFEST_BLOB_UNKNOWN": true, "MANIFEST_INVALID": true, "MANIFEST_UNKNOWN": true, "NAME_INVALID": true,
	"NAME_UNKNOWN": true, "SIZE_INVALID": true, "UNAUTHORIZED": true, "DENIED": true, "UNSUPPORTED": true,
	"TOOMANYREQUESTS": true,
}

const (
	biMTManifest = "application/vnd.oci.image.manifest.v1+json"
	biMTIndex    = "application/vnd.oci.image.index.v1+json"
	biMTConfig   = "application/vnd.oci.image.config.v1+json"
	biMTLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// biResp is a response read in full.
type biResp struct {
	Status int
	Header http.Header
	Body   []byte
}

// biSHA returns the sha256 digest of b.
func biSHA(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// biURL builds a URL whose path is sent exactly as given (no cleaning, no re-escaping):
// the path goes into Opaque, which net/http writes verbatim as the request target.
func biURL(addr, rawPath string) *url.URL {
	p, q, _ := strings.Cut(rawPath, "?")
	return &url.URL{Scheme: "http", Host: addr, Opaque: p, RawQuery: q}
}

// biDo sends one request. A nil body sends Content-Length 0 for methods with a body;
// chunked sends the body without Content-Length (Transfer-Encoding: chunked).
func biDo(t testing.TB, client *http.Client, addr, method, rawPath string, hdr map[string]string, body []byte, chunked bool) biResp {
	t.Helper()
	r, err := biTry(client, addr, method, rawPath, hdr, body, chunked)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	return r
}

func biTry(client *http.Client, addr, method, rawPath string, hdr map[string]string, body []byte, chunked bool) (biResp, error) {
	if client == nil {
		client = biHTTP
	}
	req := &http.Request{Method: method, URL: biURL(addr, rawPath), Header: http.Header{}, Host: addr}
	switch {
	case chunked:
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = -1
	case body != nil:
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return biResp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return biResp{}, fmt.Errorf("reading body: %w", err)
	}
	return biResp{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// biErrCode returns the first error code of an OCI error body, or "" when the body is
// not one.
func biErrCode(body []byte) string {
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// biPushBlob pushes a blob with a single POST ?digest= and fails the test unless 201.
func biPushBlob(t testing.TB, addr, repo string, data []byte) string {
	t.Helper()
	d := biSHA(data)
	r := biDo(t, nil, addr, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d,
		map[string]string{"Content-Type": "application/octet-stream"}, data, false)
	if r.Status != http.StatusCreated {
		t.Fatalf("push blob %s to %s: %d %s", d, repo, r.Status, r.Body)
	}
	return d
}

// biStartUpload opens an upload session and returns its location path.
func biStartUpload(t testing.TB, addr, repo string) string {
	t.Helper()
	r := biDo(t, nil, addr, "POST", "/v2/"+repo+"/blobs/uploads/", nil, []byte{}, false)
	loc := r.Header.Get("Location")
	if r.Status != http.StatusAccepted || loc == "" {
		t.Fatalf("start upload in %s: %d %s", repo, r.Status, r.Body)
	}
	if u, err := url.Parse(loc); err == nil && u.Host != "" {
		loc = u.RequestURI()
	}
	return loc
}

// biWithQuery appends a query parameter to a location that may already have a query.
func biWithQuery(loc, kv string) string {
	if strings.Contains(loc, "?") {
		return loc + "&" + kv
	}
	return loc + "?" + kv
}

// biPatch uploads data as the chunk starting at off and fails unless 202.
func biPatch(t testing.TB, addr, loc string, off int64, data []byte) string {
	t.Helper()
	r := biDo(t, nil, addr, "PATCH", loc, map[string]string{
		"Content-Type":  "application/octet-stream",
		"Content-Range": fmt.Sprintf("%d-%d", off, off+int64(len(data))-1),
	}, data, false)
	if r.Status != http.StatusAccepted {
		t.Fatalf("PATCH %s at %d: %d %s", loc, off, r.Status, r.Body)
	}
	if l := r.Header.Get("Location"); l != "" {
		if u, err := url.Parse(l); err == nil && u.Host != "" {
			l = u.RequestURI()
		}
		return l
	}
	return loc
}

// biUploadOffset parses the Range header of an upload status ("0-<end>") into the number
// of bytes the registry holds. "0-0" is read as 0 when zeroAmbiguous (the registry answers
// it for an empty session; callers that never upload a 1-byte prefix can tell).
func biUploadOffset(rng string) (int64, error) {
	a, b, ok := strings.Cut(rng, "-")
	if !ok || a != "0" {
		return 0, fmt.Errorf("malformed upload Range %q", rng)
	}
	end, err := strconv.ParseInt(b, 10, 64)
	if err != nil || end < 0 {
		return 0, fmt.Errorf("malformed upload Range %q", rng)
	}
	if end == 0 {
		return 0, nil
	}
	return end + 1, nil
}

// biManifest builds an OCI image manifest.
func biManifest(config string, configSize int, layers map[string]int, extra map[string]any) []byte {
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     biMTManifest,
		"config":        map[string]any{"mediaType": biMTConfig, "digest": config, "size": configSize},
	}
	ls := []any{}
	for d, n := range layers {
		ls = append(ls, map[string]any{"mediaType": biMTLayer, "digest": d, "size": n})
	}
	m["layers"] = ls
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// biRaw writes a request by hand on a fresh TCP connection: head, then body (which may be
// shorter than the Content-Length the head declares). With halfClose the write side is
// shut and the response read; otherwise the connection is closed at once and no response
// is read (status 0).
func biRaw(t testing.TB, addr, head string, body []byte, halfClose bool) biResp {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	if !halfClose {
		return biResp{}
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response to truncated request: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return biResp{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// biAlive checks the server still answers the ping.
func biAlive(t testing.TB, addr string) {
	t.Helper()
	r, err := biTry(nil, addr, "GET", "/v2/", nil, nil, false)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("server no longer serving GET /v2/: status %d, err %v", r.Status, err)
	}
}

// biAbsent checks that GET path answers 404 (nothing stored under it).
func biAbsent(t testing.TB, addr, path string) {
	t.Helper()
	r, err := biTry(nil, addr, "GET", path, nil, nil, false)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return
	}
	if r.Status != http.StatusNotFound {
		t.Errorf("partial state stored: GET %s = %d (want 404) %.100q", path, r.Status, r.Body)
	}
}

// biCase is one bad request: what is sent, what must come back, and what must not be
// stored afterwards.
type biCase struct {
	name    string
	method  string
	path    string
	header  map[string]string
	body    []byte
	chunked bool
	client  *http.Client // nil: biHTTP (no redirects)
	// prep runs before the request (setup requests); it may fill path/body.
	prep func(t *testing.T, c *biCase)
	// raw replaces the net/http request with a hand-written one (truncated bodies).
	raw func(t *testing.T, c *biCase) biResp

	status  int    // expected status; 0 with raw means "no response expected"
	code    string // expected error code; "" for HEAD and non-JSON answers; "*" any spec code
	header2 map[string]string
	body2   []byte // expected body (206)

	absent []string // GET paths that must be 404 afterwards
	after  func(t *testing.T, c *biCase, r biResp)
}

// TestBadInput sends malformed, inconsistent and hostile requests and checks each is
// refused with the spec's status and error code, the server keeps serving, and nothing
// partial is stored.
func TestBadInput(t *testing.T) {
	b := startBerth(t, BerthOptions{})
	addr := b.Addr
	const known, other = "bad/known", "bad/other"

	// Fixtures: a 100-byte blob and a config in bad/known, a manifest tagged v1; a blob
	// visible only in bad/other.
	blob100 := make([]byte, 100)
	for i := range blob100 {
		blob100[i] = byte(i*7 + 3)
	}
	d100 := biPushBlob(t, addr, known, blob100)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	dConfig := biPushBlob(t, addr, known, config)
	v1 := biManifest(dConfig, len(config), map[string]int{d100: 100}, nil)
	dV1 := biSHA(v1)
	if r := biDo(t, nil, addr, "PUT", "/v2/"+known+"/manifests/v1", map[string]string{"Content-Type": biMTManifest}, v1, false); r.Status != http.StatusCreated {
		t.Fatalf("push fixture manifest: %d %s", r.Status, r.Body)
	}
	otherBlob := []byte("visible only in bad/other")
	dOther := biPushBlob(t, addr, other, otherBlob)

	x := make([]byte, 1000) // an upload payload
	for i := range x {
		x[i] = byte(i*31 + 17)
	}
	dX := biSHA(x)
	z := []byte("pushed through a path that names another repository")
	dZ := biSHA(z)
	dWrong := biSHA([]byte("not the content"))
	dMissing := biSHA([]byte("a blob nobody pushed"))
	unknownID := "0123456789abcdef0123456789abcdef"
	blobPath := func(repo, d string) string { return "/v2/" + repo + "/blobs/" + d }
	manPath := func(repo, ref string) string { return "/v2/" + repo + "/manifests/" + ref }
	octet := map[string]string{"Content-Type": "application/octet-stream"}
	ctManifest := map[string]string{"Content-Type": biMTManifest}

	// An upload session holding the first 100 bytes of x.
	session100 := func(t *testing.T) string {
		loc := biStartUpload(t, addr, known)
		return biPatch(t, addr, loc, 0, x[:100])
	}
	wantOffset := func(t *testing.T, loc string, want int64) {
		t.Helper()
		r := biDo(t, nil, addr, "GET", loc, nil, nil, false)
		if r.Status != http.StatusNoContent {
			t.Errorf("upload status %s: %d %s", loc, r.Status, r.Body)
			return
		}
		if got, _ := biUploadOffset(r.Header.Get("Range")); got != want {
			t.Errorf("upload status Range = %q, want %d bytes: a refused chunk changed the session", r.Header.Get("Range"), want)
		}
	}

	// Manifest bodies.
	okManifest := func(extra map[string]any) []byte {
		return biManifest(dConfig, len(config), map[string]int{d100: 100}, extra)
	}
	fat := func(size int) []byte { // a valid manifest of exactly size bytes
		base := okManifest(map[string]any{"annotations": map[string]string{"pad": ""}})
		pad := strings.Repeat("a", size-len(base))
		return okManifest(map[string]any{"annotations": map[string]string{"pad": pad}})
	}
	index := func(children ...string) []byte {
		ms := []any{}
		for _, c := range children {
			ms = append(ms, map[string]any{"mediaType": biMTManifest, "digest": c, "size": 500})
		}
		b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": biMTIndex, "manifests": ms})
		return b
	}
	name255 := strings.Repeat("a", 127) + "/" + strings.Repeat("b", 127) // 255 characters
	name256 := name255 + "c"

	cases := []biCase{
		// ---- uploads: wrong digests ----
		{name: "monolithic POST with wrong digest", method: "POST", path: "/v2/" + known + "/blobs/uploads/?digest=" + dWrong,
			header: octet, body: x, status: 400, code: "DIGEST_INVALID",
			absent: []string{blobPath(known, dWrong), blobPath(known, dX)}},
		{name: "monolithic POST with wrong digest into a new repository", method: "POST", path: "/v2/bad/fresh/blobs/uploads/?digest=" + dWrong,
			header: octet, body: x, status: 400, code: "DIGEST_INVALID",
			absent: []string{blobPath("bad/fresh", dWrong), blobPath("bad/fresh", dX), "/v2/bad/fresh/tags/list"}},
		{name: "POST then PUT with wrong digest", method: "PUT", header: octet, body: x,
			prep: func(t *testing.T, c *biCase) {
				c.path = biWithQuery(biStartUpload(t, addr, known), "digest="+dWrong)
			},
			status: 400, code: "DIGEST_INVALID", absent: []string{blobPath(known, dWrong), blobPath(known, dX)}},
		{name: "POST, PATCH, PUT with wrong digest", method: "PUT",
			prep: func(t *testing.T, c *biCase) {
				loc := biPatch(t, addr, biStartUpload(t, addr, known), 0, x)
				c.path = biWithQuery(loc, "digest="+dWrong)
			},
			status: 400, code: "DIGEST_INVALID", absent: []string{blobPath(known, dWrong), blobPath(known, dX)}},
		{name: "PUT with sha512 digest that does not match", method: "PUT", header: octet, body: x,
			prep: func(t *testing.T, c *biCase) {
				c.path = biWithQuery(biStartUpload(t, addr, known), "digest=sha512:"+strings.Repeat("ab", 64))
			},
			status: 400, code: "DIGEST_INVALID", absent: []string{blobPath(known, "sha512:"+strings.Repeat("ab", 64)), blobPath(known, dX)}},
		{name: "PUT without digest parameter", method: "PUT", header: octet, body: x,
			prep:   func(t *testing.T, c *biCase) { c.path = biStartUpload(t, addr, known) },
			status: 400, code: "DIGEST_INVALID", absent: []string{blobPath(known, dX)}},

		// ---- uploads: truncated bodies ----
		{name: "truncated monolithic POST (half-closed)", method: "POST", status: 400, code: "BLOB_UPLOAD_INVALID",
			raw: func(t *testing.T, c *biCase) biResp {
				head := fmt.Sprintf("POST /v2/%s/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", known, dX, addr, len(x))
				return biRaw(t, addr, head, x[:len(x)/2], true)
			},
			absent: []string{blobPath(known, dX)}},
		{name: "truncated monolithic POST (connection closed)",
			raw: func(t *testing.T, c *biCase) biResp {
				head := fmt.Sprintf("POST /v2/%s/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", known, dX, addr, len(x))
				return biRaw(t, addr, head, x[:len(x)/2], false)
			},
			absent: []string{blobPath(known, dX)}},
		{name: "truncated closing PUT (connection closed)",
			raw: func(t *testing.T, c *biCase) biResp {
				loc := biStartUpload(t, addr, known)
				head := fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", biWithQuery(loc, "digest="+dX), addr, len(x))
				return biRaw(t, addr, head, x[:len(x)/2], false)
			},
			absent: []string{blobPath(known, dX)}},
		{name: "truncated PATCH (half-closed)", method: "PATCH", status: 400, code: "BLOB_UPLOAD_INVALID",
			raw: func(t *testing.T, c *biCase) biResp {
				c.path = biStartUpload(t, addr, known)
				head := fmt.Sprintf("PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Range: 0-%d\r\nContent-Length: %d\r\n\r\n", c.path, addr, len(x)-1, len(x))
				return biRaw(t, addr, head, x[:500], true)
			},
			absent: []string{blobPath(known, dX)},
			after: func(t *testing.T, c *biCase, _ biResp) {
				// The session survives, holding at most the bytes that arrived.
				r := biDo(t, nil, addr, "GET", c.path, nil, nil, false)
				off, err := biUploadOffset(r.Header.Get("Range"))
				if r.Status != http.StatusNoContent || err != nil || off > 500 {
					t.Errorf("upload status after a truncated PATCH: %d Range %q", r.Status, r.Header.Get("Range"))
				}
			}},
		// ---- uploads: out-of-order chunks ----
		{name: "PATCH with a gap after the current offset", method: "PATCH", body: x[200:300],
			header: map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "200-299"},
			prep:   func(t *testing.T, c *biCase) { c.path = session100(t) },
			status: 416, code: "BLOB_UPLOAD_INVALID", absent: []string{blobPath(known, dX)},
			after: func(t *testing.T, c *biCase, _ biResp) { wantOffset(t, c.path, 100) }},
		{name: "PATCH overlapping acknowledged bytes", method: "PATCH", body: x[50:150],
			header: map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "50-149"},
			prep:   func(t *testing.T, c *biCase) { c.path = session100(t) },
			status: 416, code: "BLOB_UPLOAD_INVALID", absent: []string{blobPath(known, dX)},
			after: func(t *testing.T, c *biCase, _ biResp) { wantOffset(t, c.path, 100) }},
		// ---- uploads: a chunk whose body does not match its Content-Range (chunked) ----
		{name: "chunked PATCH longer than its Content-Range", method: "PATCH", body: x[100:250], chunked: true,
			header: map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "100-199"},
			prep:   func(t *testing.T, c *biCase) { c.path = session100(t) },
			status: 400, code: "SIZE_INVALID", absent: []string{blobPath(known, dX)},
			after: func(t *testing.T, c *biCase, _ biResp) { wantOffset(t, c.path, 100) }},
		{name: "chunked PATCH shorter than its Content-Range", method: "PATCH", body: x[100:150], chunked: true,
			header: map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "100-199"},
			prep:   func(t *testing.T, c *biCase) { c.path = session100(t) },
			status: 400, code: "SIZE_INVALID", absent: []string{blobPath(known, dX)},
			after: func(t *testing.T, c *biCase, _ biResp) { wantOffset(t, c.path, 100) }},
		// end-start+1 overflows to a negative length, which must not read as "unknown".
		{name: "PATCH with a Content-Range that overflows int64", method: "PATCH", body: x[:100], chunked: true,
			header: map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "0-9223372036854775807"},
			prep:   func(t *testing.T, c *biCase) { c.path = biStartUpload(t, addr, known) },
			status: 416, code: "BLOB_UPLOAD_INVALID", absent: []string{blobPath(known, dX)},
			after: func(t *testing.T, c *biCase, _ biResp) { wantOffset(t, c.path, 0) }},
		{name: "first PATCH not starting at 0", method: "PATCH", body: x[100:200],
			header: map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "100-199"},
			prep:   func(t *testing.T, c *biCase) { c.path = biStartUpload(t, addr, known) },
			status: 416, code: "BLOB_UPLOAD_INVALID", absent: []string{blobPath(known, dX)},
			after: func(t *testing.T, c *biCase, _ biResp) { wantOffset(t, c.path, 0) }},
		{name: "closing PUT with a Content-Range gap", method: "PUT", body: x[150:250],
			header: map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "150-249"},
			prep:   func(t *testing.T, c *biCase) { c.path = biWithQuery(session100(t), "digest="+dX) },
			status: 416, code: "BLOB_UPLOAD_INVALID", absent: []string{blobPath(known, dX)},
			after: func(t *testing.T, c *biCase, _ biResp) {
				loc, _, _ := strings.Cut(c.path, "?digest=")
				wantOffset(t, loc, 100)
			}},

		// ---- uploads: unknown, malformed and foreign session ids ----
		{name: "GET unknown upload", method: "GET", path: "/v2/" + known + "/blobs/uploads/" + unknownID, status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "PATCH unknown upload", method: "PATCH", path: "/v2/" + known + "/blobs/uploads/" + unknownID,
			header: map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "0-999"}, body: x,
			status: 404, code: "BLOB_UPLOAD_UNKNOWN", absent: []string{blobPath(known, dX)}},
		{name: "PUT unknown upload", method: "PUT", path: "/v2/" + known + "/blobs/uploads/" + unknownID + "?digest=" + dX,
			header: octet, body: x, status: 404, code: "BLOB_UPLOAD_UNKNOWN", absent: []string{blobPath(known, dX)}},
		{name: "DELETE unknown upload", method: "DELETE", path: "/v2/" + known + "/blobs/uploads/" + unknownID, status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "GET malformed upload id", method: "GET", path: "/v2/" + known + "/blobs/uploads/not-an-upload-id", status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "GET upload id with upper-case hex", method: "GET", path: "/v2/" + known + "/blobs/uploads/" + strings.ToUpper(unknownID), status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "PATCH over-long upload id", method: "PATCH", path: "/v2/" + known + "/blobs/uploads/" + unknownID + "0",
			header: octet, body: x, status: 404, code: "BLOB_UPLOAD_UNKNOWN"},
		{name: "PUT malformed upload id", method: "PUT", path: "/v2/" + known + "/blobs/uploads/%00%01?digest=" + dX,
			header: octet, body: x, status: 404, code: "BLOB_UPLOAD_UNKNOWN", absent: []string{blobPath(known, dX)}},
	}

	// An upload session of bad/known used under bad/other: every method is 404, and the
	// session itself is untouched.
	for _, m := range []string{"GET", "PATCH", "PUT", "DELETE"} {
		m := m
		var loc string
		c := biCase{name: m + " upload id under another repository", method: m, status: 404, code: "BLOB_UPLOAD_UNKNOWN",
			absent: []string{blobPath(other, dX), blobPath(known, dX)}}
		c.prep = func(t *testing.T, c *biCase) {
			loc = session100(t)
			c.path = strings.Replace(loc, "/v2/"+known+"/", "/v2/"+other+"/", 1)
			switch m {
			case "PATCH":
				c.header = map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "100-999"}
				c.body = x[100:]
			case "PUT":
				c.path = biWithQuery(c.path, "digest="+dX)
				c.header = map[string]string{"Content-Type": "application/octet-stream", "Content-Range": "100-999"}
				c.body = x[100:]
			}
		}
		c.after = func(t *testing.T, _ *biCase, _ biResp) { wantOffset(t, loc, 100) }
		cases = append(cases, c)
	}

	cases = append(cases, []biCase{
		// ---- manifests ----
		{name: "invalid JSON manifest", method: "PUT", path: manPath(known, "badjson"), header: ctManifest,
			body: []byte(`{"schemaVersion": 2, "config": {`), status: 400, code: "MANIFEST_INVALID", absent: []string{manPath(known, "badjson")}},
		{name: "manifest that is not JSON at all", method: "PUT", path: manPath(known, "notjson"), header: ctManifest,
			body: []byte("hello, registry"), status: 400, code: "MANIFEST_INVALID", absent: []string{manPath(known, "notjson")}},
		{name: "empty manifest body", method: "PUT", path: manPath(known, "empty"), header: ctManifest,
			body: []byte{}, status: 400, code: "MANIFEST_INVALID", absent: []string{manPath(known, "empty")}},
		{name: "manifest with schemaVersion 1", method: "PUT", path: manPath(known, "schema1"), header: ctManifest,
			body: okManifest(map[string]any{"schemaVersion": 1}), status: 400, code: "MANIFEST_INVALID", absent: []string{manPath(known, "schema1")}},
		{name: "manifest without config", method: "PUT", path: manPath(known, "noconfig"), header: ctManifest,
			body:   []byte(`{"schemaVersion":2,"mediaType":"` + biMTManifest + `","layers":[{"mediaType":"` + biMTLayer + `","digest":"` + d100 + `","size":100}]}`),
			status: 400, code: "MANIFEST_INVALID", absent: []string{manPath(known, "noconfig")}},
		{name: "manifest with a malformed layer digest", method: "PUT", path: manPath(known, "baddesc"), header: ctManifest,
			body:   biManifest(dConfig, len(config), map[string]int{"sha256:xyz": 100}, nil),
			status: 400, code: "MANIFEST_INVALID", absent: []string{manPath(known, "baddesc")}},
		{name: "manifest with an upper-case config digest", method: "PUT", path: manPath(known, "badcfg"), header: ctManifest,
			body:   biManifest(strings.ToUpper(dConfig[:7])+strings.ToUpper(dConfig[7:]), len(config), map[string]int{d100: 100}, nil),
			status: 400, code: "MANIFEST_INVALID", absent: []string{manPath(known, "badcfg")}},
		{name: "manifest referencing a missing blob", method: "PUT", path: manPath(known, "missing"), header: ctManifest,
			body:   biManifest(dConfig, len(config), map[string]int{dMissing: 10}, nil),
			status: 400, code: "MANIFEST_BLOB_UNKNOWN", absent: []string{manPath(known, "missing"), manPath(known, biSHA(biManifest(dConfig, len(config), map[string]int{dMissing: 10}, nil)))}},
		{name: "manifest referencing a blob of another repository", method: "PUT", path: manPath(known, "foreign"), header: ctManifest,
			body:   biManifest(dConfig, len(config), map[string]int{dOther: len(otherBlob)}, nil),
			status: 400, code: "MANIFEST_BLOB_UNKNOWN", absent: []string{manPath(known, "foreign")}},
		{name: "index referencing a missing child manifest", method: "PUT", path: manPath(known, "idx"),
			header: map[string]string{"Content-Type": biMTIndex}, body: index(dV1, dMissing),
			status: 400, code: "MANIFEST_BLOB_UNKNOWN", absent: []string{manPath(known, "idx"), manPath(known, biSHA(index(dV1, dMissing)))}},
		{name: "manifest PUT by a digest the body does not hash to", method: "PUT", path: manPath(known, dWrong), header: ctManifest,
			body: okManifest(map[string]any{"annotations": map[string]string{"k": "bydigest"}}), status: 400, code: "DIGEST_INVALID",
			absent: []string{manPath(known, dWrong), manPath(known, biSHA(okManifest(map[string]any{"annotations": map[string]string{"k": "bydigest"}})))}},
		{name: "Content-Type disagreeing with the body's mediaType", method: "PUT", path: manPath(known, "ctmismatch"),
			header: map[string]string{"Content-Type": biMTIndex}, body: okManifest(map[string]any{"annotations": map[string]string{"k": "ct"}}),
			status: 400, code: "MANIFEST_INVALID", absent: []string{manPath(known, "ctmismatch")}},
		{name: "oversize manifest (4 MiB + 1) with Content-Length", method: "PUT", path: manPath(known, "huge"), header: ctManifest,
			body: fat(4<<20 + 1), status: 413, code: "MANIFEST_INVALID", absent: []string{manPath(known, "huge"), manPath(known, biSHA(fat(4<<20+1)))}},
		{name: "oversize manifest (4 MiB + 1) chunked", method: "PUT", path: manPath(known, "hugechunked"), header: ctManifest,
			body: fat(4<<20 + 1), chunked: true, status: 413, code: "MANIFEST_INVALID",
			absent: []string{manPath(known, "hugechunked"), manPath(known, biSHA(fat(4<<20+1)))}},
		{name: "invalid tag in ?tag= of a push by digest", method: "PUT", header: ctManifest,
			body:   okManifest(map[string]any{"annotations": map[string]string{"k": "tagparam"}}),
			prep:   func(t *testing.T, c *biCase) { c.path = manPath(known, biSHA(c.body)) + "?tag=ok&tag=-bad" },
			status: 400, code: "MANIFEST_INVALID",
			absent: []string{manPath(known, "ok"), manPath(known, biSHA(okManifest(map[string]any{"annotations": map[string]string{"k": "tagparam"}})))}},

		// ---- invalid repository names ----
		{name: "upper-case repository name", method: "GET", path: manPath("Bad/Known", "v1"), status: 400, code: "NAME_INVALID"},
		{name: "upper-case repository name on push", method: "PUT", path: manPath("bad/Known", "v1"), header: ctManifest, body: v1,
			status: 400, code: "NAME_INVALID"},
		{name: "repository name with ..", method: "GET", path: manPath("bad/../known", "v1"), status: 400, code: "NAME_INVALID"},
		{name: "repository name with //", method: "GET", path: manPath("bad//known", "v1"), status: 400, code: "NAME_INVALID"},
		{name: "repository name with a trailing slash", method: "GET", path: manPath("bad/known/", "v1"), status: 400, code: "NAME_INVALID"},
		{name: "repository name with a leading slash", method: "GET", path: "/v2//bad/known/tags/list", status: 400, code: "NAME_INVALID"},
		{name: "repository name of 256 characters", method: "GET", path: manPath(name256, "v1"), status: 400, code: "NAME_INVALID"},
		{name: "repository name of 256 characters on upload", method: "POST", path: "/v2/" + name256 + "/blobs/uploads/", body: []byte{},
			status: 400, code: "NAME_INVALID"},
		{name: "repository name of 255 characters is valid (unknown)", method: "GET", path: manPath(name255, "v1"), status: 404, code: "NAME_UNKNOWN"},
		{name: "path traversal out of /v2/", method: "GET", path: "/v2/../../etc/passwd/manifests/latest", status: 400, code: "NAME_INVALID"},
		{name: "path traversal into another repository on push", method: "PUT", path: manPath("bad/x/../known", "evil"), header: ctManifest, body: v1,
			client: http.DefaultClient, // a client that follows redirects must not land in bad/known either
			status: 400, code: "NAME_INVALID", absent: []string{manPath(known, "evil")}},
		{name: "upload into a traversal name", method: "POST", path: "/v2/bad/x/../known/blobs/uploads/?digest=" + dZ, header: octet, body: z,
			client: http.DefaultClient,
			status: 400, code: "NAME_INVALID", absent: []string{blobPath(known, dZ)}},
		{name: "%2e%2e path traversal", method: "GET", path: "/v2/%2e%2e/%2e%2e/etc/passwd/manifests/latest", status: 400, code: "NAME_INVALID"},
		{name: "%2E%2E inside a name", method: "GET", path: "/v2/bad/%2E%2E/known/manifests/v1", status: 400, code: "NAME_INVALID"},
		{name: "%2f-encoded .. inside a name", method: "GET", path: "/v2/bad%2f..%2fknown/manifests/v1", status: 400, code: "NAME_INVALID"},
		{name: "repository name with a space", method: "GET", path: "/v2/bad%20known/tags/list", status: 400, code: "NAME_INVALID"},

		// ---- invalid digests and references ----
		{name: "blob digest sha256:xyz", method: "GET", path: blobPath(known, "sha256:xyz"), status: 400, code: "DIGEST_INVALID"},
		{name: "blob digest too short", method: "GET", path: blobPath(known, d100[:len(d100)-1]), status: 400, code: "DIGEST_INVALID"},
		{name: "blob digest too long", method: "GET", path: blobPath(known, d100+"0"), status: 400, code: "DIGEST_INVALID"},
		{name: "blob digest upper-case hex", method: "GET", path: blobPath(known, "sha256:"+strings.ToUpper(d100[7:])), status: 400, code: "DIGEST_INVALID"},
		{name: "blob digest md5", method: "GET", path: blobPath(known, "md5:d41d8cd98f00b204e9800998ecf8427e"), status: 400, code: "DIGEST_INVALID"},
		{name: "blob digest unsupported algorithm", method: "GET", path: blobPath(known, "sha384:"+strings.Repeat("a", 96)), status: 400, code: "DIGEST_INVALID"},
		{name: "blob digest without algorithm", method: "GET", path: blobPath(known, d100[7:]), status: 400, code: "DIGEST_INVALID"},
		{name: "blob digest empty hex", method: "GET", path: blobPath(known, "sha256:"), status: 400, code: "DIGEST_INVALID"},
		{name: "HEAD blob with invalid digest", method: "HEAD", path: blobPath(known, "sha256:xyz"), status: 400},
		{name: "DELETE blob with invalid digest", method: "DELETE", path: blobPath(known, "sha256:xyz"), status: 400, code: "DIGEST_INVALID"},
		{name: "manifest digest sha256:xyz", method: "GET", path: manPath(known, "sha256:xyz"), status: 400, code: "DIGEST_INVALID"},
		{name: "manifest digest upper-case hex", method: "GET", path: manPath(known, "sha256:"+strings.ToUpper(dV1[7:])), status: 400, code: "DIGEST_INVALID"},
		{name: "manifest digest md5", method: "GET", path: manPath(known, "md5:d41d8cd98f00b204e9800998ecf8427e"), status: 400, code: "DIGEST_INVALID"},
		{name: "manifest digest wrong length", method: "HEAD", path: manPath(known, dV1[:70]), status: 400},
		{name: "manifest PUT by invalid digest", method: "PUT", path: manPath(known, "sha256:xyz"), header: ctManifest, body: v1, status: 400, code: "DIGEST_INVALID"},
		{name: "manifest DELETE by invalid digest", method: "DELETE", path: manPath(known, "sha1:"+strings.Repeat("a", 40)), status: 400, code: "DIGEST_INVALID"},
		{name: "upload ?digest=sha256:xyz", method: "POST", path: "/v2/" + known + "/blobs/uploads/?digest=sha256:xyz", header: octet, body: x,
			status: 400, code: "DIGEST_INVALID", absent: []string{blobPath(known, dX)}},
		{name: "upload ?digest=md5", method: "PUT", header: octet, body: x,
			prep: func(t *testing.T, c *biCase) {
				c.path = biWithQuery(biStartUpload(t, addr, known), "digest=md5:d41d8cd98f00b204e9800998ecf8427e")
			},
			status: 400, code: "DIGEST_INVALID", absent: []string{blobPath(known, dX)}},
		{name: "referrers of an invalid digest", method: "GET", path: "/v2/" + known + "/referrers/sha256:xyz", status: 400, code: "DIGEST_INVALID"},
		{name: "tag starting with -", method: "GET", path: manPath(known, "-bad"), status: 400, code: "MANIFEST_INVALID"},
		{name: "tag of 129 characters", method: "GET", path: manPath(known, strings.Repeat("t", 129)), status: 400, code: "MANIFEST_INVALID"},
		{name: "push to tag starting with -", method: "PUT", path: manPath(known, "-bad"), header: ctManifest, body: v1, status: 400, code: "MANIFEST_INVALID"},
		{name: "push to tag of 129 characters", method: "PUT", path: manPath(known, strings.Repeat("t", 129)), header: ctManifest, body: v1,
			status: 400, code: "MANIFEST_INVALID"},
		{name: "tag of 128 characters is valid (unknown)", method: "GET", path: manPath(known, strings.Repeat("t", 128)), status: 404, code: "MANIFEST_UNKNOWN"},

		// ---- ranges ----
		{name: "Range past the end", method: "GET", path: blobPath(known, d100), header: map[string]string{"Range": "bytes=5000-"},
			status: 416, code: "*", header2: map[string]string{"Content-Range": "bytes */100"}},
		{name: "Range starting at the size", method: "GET", path: blobPath(known, d100), header: map[string]string{"Range": "bytes=100-"},
			status: 416, code: "*", header2: map[string]string{"Content-Range": "bytes */100"}},
		{name: "Range with end before start", method: "GET", path: blobPath(known, d100), header: map[string]string{"Range": "bytes=50-10"},
			status: 416, code: "*", header2: map[string]string{"Content-Range": "bytes */100"}},
		{name: "valid Range", method: "GET", path: blobPath(known, d100), header: map[string]string{"Range": "bytes=10-19"},
			status: 206, header2: map[string]string{"Content-Range": "bytes 10-19/100", "Content-Length": "10"}, body2: blob100[10:20]},
		{name: "Range clamped to the size", method: "GET", path: blobPath(known, d100), header: map[string]string{"Range": "bytes=90-5000"},
			status: 206, header2: map[string]string{"Content-Range": "bytes 90-99/100", "Content-Length": "10"}, body2: blob100[90:]},
		{name: "suffix Range", method: "GET", path: blobPath(known, d100), header: map[string]string{"Range": "bytes=-5"},
			status: 206, header2: map[string]string{"Content-Range": "bytes 95-99/100", "Content-Length": "5"}, body2: blob100[95:]},

		// ---- unknown repositories and unknown content ----
		{name: "GET manifest in unknown repository", method: "GET", path: manPath("bad/nope", "latest"), status: 404, code: "NAME_UNKNOWN"},
		{name: "HEAD manifest in unknown repository", method: "HEAD", path: manPath("bad/nope", "latest"), status: 404},
		{name: "GET manifest by digest in unknown repository", method: "GET", path: manPath("bad/nope", dV1), status: 404, code: "NAME_UNKNOWN"},
		{name: "GET blob in unknown repository", method: "GET", path: blobPath("bad/nope", d100), status: 404, code: "NAME_UNKNOWN"},
		{name: "HEAD blob in unknown repository", method: "HEAD", path: blobPath("bad/nope", d100), status: 404},
		{name: "GET tags of unknown repository", method: "GET", path: "/v2/bad/nope/tags/list", status: 404, code: "NAME_UNKNOWN"},
		{name: "HEAD tags of unknown repository", method: "HEAD", path: "/v2/bad/nope/tags/list", status: 404},
		{name: "DELETE manifest in unknown repository", method: "DELETE", path: manPath("bad/nope", dV1), status: 404, code: "NAME_UNKNOWN"},
		{name: "GET unknown tag", method: "GET", path: manPath(known, "nosuchtag"), status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "HEAD unknown tag", method: "HEAD", path: manPath(known, "nosuchtag"), status: 404},
		{name: "GET unknown manifest digest", method: "GET", path: manPath(known, dMissing), status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "GET manifest that is only a blob", method: "GET", path: manPath(known, d100), status: 404, code: "MANIFEST_UNKNOWN"},
		{name: "GET unknown blob", method: "GET", path: blobPath(known, dMissing), status: 404, code: "BLOB_UNKNOWN"},
		{name: "HEAD unknown blob", method: "HEAD", path: blobPath(known, dMissing), status: 404},
		{name: "GET blob of another repository", method: "GET", path: blobPath(known, dOther), status: 404, code: "BLOB_UNKNOWN"},
		{name: "DELETE unknown blob", method: "DELETE", path: blobPath(known, dMissing), status: 404, code: "BLOB_UNKNOWN"},
		{name: "DELETE unknown tag", method: "DELETE", path: manPath(known, "nosuchtag"), status: 404, code: "MANIFEST_UNKNOWN"},

		// ---- pagination ----
		{name: "tags n=-1", method: "GET", path: "/v2/" + known + "/tags/list?n=-1", status: 400, code: "*"},
		{name: "tags n=abc", method: "GET", path: "/v2/" + known + "/tags/list?n=abc", status: 400, code: "*"},
		{name: "tags n=1.5", method: "GET", path: "/v2/" + known + "/tags/list?n=1.5", status: 400, code: "*"},
		{name: "catalog n=-1", method: "GET", path: "/v2/_catalog?n=-1", status: 400, code: "*"},
		{name: "catalog n=abc", method: "GET", path: "/v2/_catalog?n=abc", status: 400, code: "*"},

		// ---- methods ----
		{name: "POST on a manifest", method: "POST", path: manPath(known, "v1"), header: ctManifest, body: v1, status: 405, code: "UNSUPPORTED",
			after: func(t *testing.T, _ *biCase, r biResp) {
				if r.Header.Get("Allow") == "" {
					t.Errorf("405 without an Allow header")
				}
			}},
		{name: "PATCH on a blob", method: "PATCH", path: blobPath(known, d100), header: octet, body: x, status: 405, code: "UNSUPPORTED"},
		{name: "PUT on a blob", method: "PUT", path: blobPath(known, dX), header: octet, body: x, status: 405, code: "UNSUPPORTED",
			absent: []string{blobPath(known, dX)}},
		{name: "PUT on tags/list", method: "PUT", path: "/v2/" + known + "/tags/list", body: []byte("{}"), status: 405, code: "UNSUPPORTED"},
		{name: "DELETE on /v2/", method: "DELETE", path: "/v2/", status: 405, code: "UNSUPPORTED"},
		{name: "GET on the upload collection", method: "GET", path: "/v2/" + known + "/blobs/uploads/", status: 405, code: "UNSUPPORTED"},

		// ---- headers ----
		{name: "request with over 64 KiB of headers", method: "GET", path: "/v2/",
			header: map[string]string{"X-Padding": strings.Repeat("p", 80<<10)}, status: 431},
	}...)

	var allAbsent []string
	for i := range cases {
		c := cases[i]
		t.Run(c.name, func(t *testing.T) {
			if c.prep != nil {
				c.prep(t, &c)
			}
			var r biResp
			if c.raw != nil {
				r = c.raw(t, &c)
			} else {
				var err error
				r, err = biTry(c.client, addr, c.method, c.path, c.header, c.body, c.chunked)
				if err != nil {
					t.Fatalf("%s %s: %v", c.method, c.path, err)
				}
			}
			if c.raw == nil || c.status != 0 {
				got := biErrCode(r.Body)
				switch {
				case r.Status != c.status:
					t.Errorf("%s %.120s: status %d (code %q), want %d %s; Location %q, body %.200q", c.method, c.path,
						r.Status, got, c.status, c.code, r.Header.Get("Location"), r.Body)
				case c.code == "*":
					if !biSpecCodes[got] {
						t.Errorf("error code %q is not a spec error code; body %.300q", got, r.Body)
					}
				case c.code != "":
					if got != c.code {
						t.Errorf("%s %.120s: error code %q, want %q; body %.300q", c.method, c.path, got, c.code, r.Body)
					}
					if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
						t.Errorf("error body Content-Type %q, want application/json", ct)
					}
				}
				if got != "" && !biSpecCodes[got] {
					t.Errorf("error code %q is not one of the spec's codes", got)
				}
				for k, v := range c.header2 {
					if g := r.Header.Get(k); g != v {
						t.Errorf("header %s = %q, want %q", k, g, v)
					}
				}
				if c.body2 != nil && !bytes.Equal(r.Body, c.body2) {
					t.Errorf("body %q, want %q", r.Body, c.body2)
				}
			}
			biAlive(t, addr)
			for _, p := range c.absent {
				biAbsent(t, addr, p)
			}
			if c.after != nil {
				c.after(t, &c, r)
			}
		})
		for _, p := range c.absent {
			if !slices.Contains(allAbsent, p) {
				allAbsent = append(allAbsent, p)
			}
		}
	}

	// A truncated PATCH leaves a session that resumes from the offset the registry
	// acknowledges, and only the complete, verified blob becomes visible.
	t.Run("truncated PATCH then resume", func(t *testing.T) {
		y := bytes.Repeat([]byte("resumable-"), 100) // 1000 bytes, distinct from x
		dY := biSHA(y)
		loc := biStartUpload(t, addr, known)
		head := fmt.Sprintf("PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Range: 0-%d\r\nContent-Length: %d\r\n\r\n", loc, addr, len(y)-1, len(y))
		biRaw(t, addr, head, y[:500], false)
		biAlive(t, addr)
		biAbsent(t, addr, blobPath(known, dY))
		// The server may still be reading when we ask; wait until it settled.
		var off int64 = -1
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			r := biDo(t, nil, addr, "GET", loc, nil, nil, false)
			if r.Status != http.StatusNoContent {
				t.Fatalf("upload status after truncated PATCH: %d %s", r.Status, r.Body)
			}
			o, err := biUploadOffset(r.Header.Get("Range"))
			if err != nil {
				t.Fatal(err)
			}
			if o == 500 || (o == 0 && time.Until(deadline) < 4*time.Second) {
				off = o
				break
			}
		}
		if off < 0 || off > 500 {
			t.Fatalf("upload offset after a truncated PATCH of 500 bytes: %d", off)
		}
		t.Logf("registry kept %d of the 500 bytes that arrived", off)
		loc = biPatch(t, addr, loc, off, y[off:])
		r := biDo(t, nil, addr, "PUT", biWithQuery(loc, "digest="+dY), nil, nil, false)
		if r.Status != http.StatusCreated {
			t.Fatalf("closing resumed upload: %d %s", r.Status, r.Body)
		}
		g := biDo(t, nil, addr, "GET", blobPath(known, dY), nil, nil, false)
		if g.Status != 200 || !bytes.Equal(g.Body, y) {
			t.Fatalf("resumed blob: %d, %d bytes, equal=%v", g.Status, len(g.Body), bytes.Equal(g.Body, y))
		}
	})

	// A manifest of exactly the limit is accepted: the 413s above are not off by one.
	t.Run("manifest of exactly 4 MiB is accepted", func(t *testing.T) {
		m := fat(4 << 20)
		r := biDo(t, nil, addr, "PUT", manPath(known, "fourmib"), ctManifest, m, false)
		if r.Status != http.StatusCreated {
			t.Fatalf("4 MiB manifest: %d %.300s", r.Status, r.Body)
		}
		if got := r.Header.Get("Docker-Content-Digest"); got != biSHA(m) {
			t.Errorf("digest %s, want %s", got, biSHA(m))
		}
	})

	// Everything refused stayed refused (some effects, e.g. of closed connections, could
	// only show late), and the fixtures are intact.
	t.Run("final sweep", func(t *testing.T) {
		for _, p := range allAbsent {
			biAbsent(t, addr, p)
		}
		r := biDo(t, nil, addr, "GET", manPath(known, "v1"), nil, nil, false)
		if r.Status != 200 || r.Header.Get("Docker-Content-Digest") != dV1 || !bytes.Equal(r.Body, v1) {
			t.Errorf("fixture manifest v1 changed: %d %s", r.Status, r.Header.Get("Docker-Content-Digest"))
		}
		r = biDo(t, nil, addr, "GET", blobPath(known, d100), nil, nil, false)
		if r.Status != 200 || !bytes.Equal(r.Body, blob100) {
			t.Errorf("fixture blob changed: %d", r.Status)
		}
		r = biDo(t, nil, addr, "GET", "/v2/"+known+"/tags/list", nil, nil, false)
		var tl struct {
			Tags []string `json:"tags"`
		}
		_ = json.Unmarshal(r.Body, &tl)
		for _, tag := range tl.Tags {
			if tag != "v1" && tag != "fourmib" {
				t.Errorf("refused push left tag %q in %s", tag, known)
			}
		}
		r = biDo(t, nil, addr, "GET", "/v2/_catalog", nil, nil, false)
		var cat struct {
			Repositories []string `json:"repositories"`
		}
		_ = json.Unmarshal(r.Body, &cat)
		for _, repo := range cat.Repositories {
			if repo == "bad/fresh" || repo == "bad/nope" || strings.Contains(repo, "etc") {
				t.Errorf("refused requests created repository %q", repo)
			}
		}
		biAlive(t, addr)
	})
}
