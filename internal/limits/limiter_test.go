package limits

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
}

func serve(h http.Handler, method, path, remote string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = remote
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestLimiterRates(t *testing.T) {
	prefixes := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	base := Options{Read: Rate{PerSecond: 0.001, Burst: 2}, Write: Rate{PerSecond: 0.001, Burst: 1}, MaxClients: 100}
	type req struct {
		method, remote string
		hdr            map[string]string
		want           int
	}
	for _, tc := range []struct {
		name string
		opts func(Options) Options
		reqs []req
	}{
		{"reads past the burst are refused, others unaffected", nil, []req{
			{"GET", "10.0.0.1:1", nil, 200}, {"GET", "10.0.0.1:2", nil, 200}, {"GET", "10.0.0.1:3", nil, 429},
			{"GET", "10.0.0.2:1", nil, 200},
		}},
		{"reads and writes are separate budgets", nil, []req{
			{"PUT", "10.0.0.1:1", nil, 200}, {"PUT", "10.0.0.1:1", nil, 429}, {"GET", "10.0.0.1:1", nil, 200},
		}},
		{"trusted networks are exempt", func(o Options) Options { o.Trusted = prefixes("10.0.0.0/8"); return o }, []req{
			{"PUT", "10.0.0.1:1", nil, 200}, {"PUT", "10.0.0.1:1", nil, 200}, {"PUT", "192.0.2.1:1", nil, 200}, {"PUT", "192.0.2.1:1", nil, 429},
		}},
		{"X-Forwarded-For is ignored by default", nil, []req{
			{"PUT", "10.0.0.1:1", map[string]string{"X-Forwarded-For": "192.0.2.1"}, 200},
			{"PUT", "10.0.0.1:1", map[string]string{"X-Forwarded-For": "192.0.2.2"}, 429},
		}},
		{"a trusted proxy's X-Forwarded-For names the client", func(o Options) Options { o.Proxies = prefixes("10.0.0.1/32"); return o }, []req{
			{"PUT", "10.0.0.1:1", map[string]string{"X-Forwarded-For": "6.6.6.6, 192.0.2.1"}, 200},
			{"PUT", "10.0.0.1:1", map[string]string{"X-Forwarded-For": "7.7.7.7, 192.0.2.2"}, 200},
			// What the client itself wrote (left of the proxy's entry) changes nothing.
			{"PUT", "10.0.0.1:1", map[string]string{"X-Forwarded-For": "8.8.8.8, 192.0.2.1"}, 429},
		}},
		{"health endpoints are never limited", nil, []req{
			{"GET", "10.0.0.1:1", nil, 200}, {"GET", "10.0.0.1:1", nil, 200},
			{"GET", "10.0.0.1:1", nil, 200}, {"GET", "10.0.0.1:1", nil, 200}, {"GET", "10.0.0.1:1", nil, 429},
		}},
		{"credentials on the API are left to Charge", func(o Options) Options { o.API, o.DeferCredentials = "/v2/", true; return o }, []req{
			{"PUT", "10.0.0.1:1", map[string]string{"Authorization": "Bearer x"}, 200},
			{"PUT", "10.0.0.1:1", map[string]string{"Authorization": "Bearer x"}, 200},
			{"PUT", "10.0.0.1:1", nil, 200}, {"PUT", "10.0.0.1:1", nil, 429},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			if tc.opts != nil {
				o = tc.opts(o)
			}
			h := New(o).Middleware(okHandler())
			for i, rq := range tc.reqs {
				path := "/v2/x/manifests/y"
				if tc.name == "health endpoints are never limited" && i < 2 {
					path = "/healthz"
				}
				w := serve(h, rq.method, path, rq.remote, rq.hdr)
				if w.Code != rq.want {
					t.Fatalf("request %d (%s from %s): %d, want %d: %s", i, rq.method, rq.remote, w.Code, rq.want, w.Body)
				}
				if w.Code == 429 && (w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "TOOMANYREQUESTS")) {
					t.Fatalf("refusal without Retry-After or code: %v %s", w.Header(), w.Body)
				}
			}
		})
	}
}

func TestCharge(t *testing.T) {
	var refusedFor []string
	o := Options{Write: Rate{PerSecond: 0.001, Burst: 1}, MaxClients: 100, API: "/v2/", DeferCredentials: true}
	h := New(o).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.Header.Get("X-Principal")
		if err := Charge(w, r, p); err != nil {
			refusedFor = append(refusedFor, p)
			w.WriteHeader(429)
			return
		}
		if err := Charge(w, r, p); err != nil { // a second charge is free
			t.Error("charged twice")
		}
		w.WriteHeader(200)
	}))
	for _, p := range []string{"user:alice", "user:alice", "user:bob", "", ""} {
		serve(h, "PUT", "/v2/x/blobs/uploads/", "10.0.0.1:1", map[string]string{"Authorization": "Bearer t", "X-Principal": p})
	}
	if strings.Join(refusedFor, ",") != "user:alice," {
		t.Fatalf("refused %q; want alice's second and the address's second", refusedFor)
	}
}

func TestInFlight(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, 2)
	h := New(Options{MaxInFlight: 2}).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		entered <- struct{}{}
		<-release
	}))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { serve(h, "GET", "/v2/", "10.0.0.1:1", nil) })
	}
	<-entered
	<-entered
	w := serve(h, "GET", "/v2/", "10.0.0.9:1", nil)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("third request: %d %v", w.Code, w.Header())
	}
	if w := serve(h, "GET", "/readyz", "10.0.0.9:1", nil); w.Code == http.StatusServiceUnavailable {
		t.Fatal("readiness probe refused")
	}
	close(release)
	wg.Wait()
	go func() { <-entered }()
	if w := serve(h, "GET", "/v2/", "10.0.0.9:1", nil); w.Code != 200 {
		t.Fatalf("after the others finished: %d", w.Code)
	}
}
