package blobstore_test

import (
	"bytes"
	"crypto/rand"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/internal/blobstore"
)

// TestS3PayloadSigning: requests carrying blob bytes go unsigned over TLS (no second
// SHA-256 pass; TLS protects them) and signed over plain HTTP, where the signature is
// their only protection. A reverse proxy in front of versitygw, with TLS or without,
// records each PUT's x-amz-content-sha256, and versitygw still verifies every request.
func TestS3PayloadSigning(t *testing.T) {
	hexHash := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, tc := range []struct {
		name     string
		tls      bool
		wantHash func(string) bool
	}{
		{"https: unsigned", true, func(h string) bool { return h == "UNSIGNED-PAYLOAD" }},
		{"http: signed", false, hexHash.MatchString},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, err := url.Parse(s3Endpoint(t))
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var hashes []string
			proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.Out.Host = r.In.Host                                       // SigV4 signed the host the client saw
				if r.In.Method == http.MethodPut && r.In.ContentLength > 0 { // bytes, not a bucket or marker
					mu.Lock()
					hashes = append(hashes, r.In.Header.Get("X-Amz-Content-Sha256"))
					mu.Unlock()
				}
			}}
			var srv *httptest.Server
			if tc.tls {
				srv = httptest.NewTLSServer(proxy)
			} else {
				srv = httptest.NewServer(proxy)
			}
			defer srv.Close()
			o := s3Options(t, "t-"+randomHex(6)+"/berth")
			o.Endpoint = srv.URL
			if tc.tls {
				o.CAFile = filepath.Join(t.TempDir(), "ca.pem")
				cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
				if err := os.WriteFile(o.CAFile, cert, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			d, err := blobstore.NewS3(t.Context(), o)
			if err != nil {
				t.Fatalf("NewS3: %v", err)
			}
			// Two full parts and a tail: UploadPart and PutObject (the tail segment at Sync).
			content := make([]byte, 2*blobstore.S3MinPartSize+12345)
			rand.Read(content)
			up, err := d.NewUpload(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := up.Write(content[:len(content)-1000]); err != nil {
				t.Fatal(err)
			}
			if err := up.Sync(); err != nil {
				t.Fatal(err)
			}
			if _, err := up.Write(content[len(content)-1000:]); err != nil {
				t.Fatal(err)
			}
			loc, err := up.Commit(t.Context(), digest.FromBytes(content))
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			b, err := d.Open(t.Context(), loc)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var got bytes.Buffer
			if _, err := got.ReadFrom(b); err != nil || !bytes.Equal(got.Bytes(), content) {
				t.Fatalf("read back %d bytes (%v), want the %d written", got.Len(), err, len(content))
			}
			mu.Lock()
			defer mu.Unlock()
			if len(hashes) < 3 {
				t.Fatalf("%d PUT requests seen, want parts and a tail segment", len(hashes))
			}
			for i, h := range hashes {
				if !tc.wantHash(h) {
					t.Errorf("PUT #%d: x-amz-content-sha256 %q", i+1, h)
				}
			}
		})
	}
}
