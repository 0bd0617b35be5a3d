package replication

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLimitTransport: bytes exchanged with the limited host are paced (uploads and
// downloads share one bucket); other hosts are not.
func TestLimitTransport(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 3<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if n == 0 {
			_, _ = w.Write(payload)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name    string
		limited string
		upload  bool
		min     time.Duration
		max     time.Duration
	}{
		{"upload limited", host, true, 1800 * time.Millisecond, 4 * time.Second},
		{"download limited", host, false, 1800 * time.Millisecond, 4 * time.Second},
		{"other host", "elsewhere.example", true, 0, time.Second},
	} {
		c := &http.Client{Transport: &limitTransport{next: http.DefaultTransport, host: tc.limited, l: newLimiter(1 << 20)}}
		start := time.Now()
		var res *http.Response
		var err error
		if tc.upload {
			res, err = c.Post(srv.URL, "application/octet-stream", bytes.NewReader(payload))
		} else {
			res, err = c.Get(srv.URL)
		}
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		took := time.Since(start)
		if took < tc.min || took > tc.max {
			t.Errorf("%s: 3 MiB at 1 MiB/s (1 s burst) took %v, want %v to %v (%d bytes back)", tc.name, took, tc.min, tc.max, n)
		}
	}
	r := Rule{Name: "b", Direction: Push, Remote: Remote{URL: "x"}, Repositories: []string{"a"}, BandwidthLimit: 1000}
	if err := r.validate(); err == nil {
		t.Error("a 1000 B/s limit is accepted")
	}
}
