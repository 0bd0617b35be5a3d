package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/config"
)

func TestInternalAddr(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		internal bool
	}{
		{"127.0.0.1", true},
		{"::1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"fe80::1", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"192.168.1.1", true},
		{"100.64.0.1", true},
		{"fd00::1", true},
		{"0.0.0.0", true},
		{"224.0.0.1", true},
		{"::ffff:127.0.0.1", true}, // IPv4-mapped loopback
		{"8.8.8.8", false},
		{"104.16.0.1", false},
		{"2606:4700::1", false},
	} {
		if got := internalAddr(netip.MustParseAddr(tc.addr)); got != tc.internal {
			t.Errorf("internalAddr(%s) = %v, want %v", tc.addr, got, tc.internal)
		}
	}
}

// TestUpstreamRedirects: the upstream (on 127.0.0.1) redirects blob GETs. A hop to
// another host name that resolves to loopback ("localhost") is refused by default and
// followed with allowPrivateRedirects; a hop on the upstream's own host is followed.
func TestUpstreamRedirects(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("credentials sent to the redirect target: %q", r.Header.Get("Authorization"))
		}
		_, _ = io.WriteString(w, "blob bytes")
	}))
	defer target.Close()
	targetPort := target.URL[strings.LastIndex(target.URL, ":")+1:]
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
			w.WriteHeader(http.StatusOK)
		case "/v2/lib/app/blobs/other-host":
			http.Redirect(w, r, "http://localhost:"+targetPort+"/b", http.StatusTemporaryRedirect)
		case "/v2/lib/app/blobs/same-host":
			http.Redirect(w, r, "http://127.0.0.1:"+targetPort+"/b", http.StatusFound)
		case "/v2/lib/app/blobs/loop":
			http.Redirect(w, r, r.URL.Path, http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()

	for _, tc := range []struct {
		name    string
		allow   bool
		suffix  string
		wantErr error // nil: the body arrives
		errText string
	}{
		{"other host on loopback refused", false, "blobs/other-host", errPrivateRedirect, ""},
		{"other host allowed by config", true, "blobs/other-host", nil, ""},
		{"same host followed", false, "blobs/same-host", nil, ""},
		{"redirect loop stopped", false, "blobs/loop", nil, "stopped after 10 redirects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := newUpstream(config.Upstream{Name: "up.test", URL: up.URL, AllowPrivateRedirects: tc.allow, Timeout: config.Duration(5e9)}, NewMetrics(prometheus.NewRegistry()))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := u.do(t.Context(), http.MethodGet, "lib/app", tc.suffix, nil)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want one saying %q", err, tc.errText)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if string(b) != "blob bytes" {
					t.Fatalf("body %q", b)
				}
			}
		})
	}
}
