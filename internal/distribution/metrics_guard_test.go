package distribution

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/auth"
)

// TestMetricsGuard: with auth on, /metrics is for system administrators and robots with
// the metrics permission, by Basic credentials or a token; everyone else is refused
// with the matching OCI error.
func TestMetricsGuard(t *testing.T) {
	w := newSecWorld(t)
	h := NewGuard(w.svc, "").Metrics(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = rw.Write([]byte("berth_up 1\n"))
	}))
	adminToken, _, err := w.svc.Tokens.Issue(&auth.Principal{Kind: "user", Name: "root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	daveToken, _, _ := w.svc.Tokens.Issue(&auth.Principal{Kind: "user", Name: "dave"}, nil)
	for _, c := range []struct {
		who, authz string
		status     int
		code       string
	}{
		{"anonymous", "", 401, "UNAUTHORIZED"},
		{"wrong password", "Basic cm9vdDp3cm9uZw==", 401, "UNAUTHORIZED"},
		{"user", basic("dave"), 403, "DENIED"},
		{"robot that pulls everything", basic("robot$reader"), 403, "DENIED"},
		{"system administrator", basic("root"), 200, ""},
		{"metrics robot", basic("robot$scraper"), 200, ""},
		{"administrator's token", "Bearer " + adminToken, 200, ""},
		{"user's token", "Bearer " + daveToken, 403, "DENIED"},
		{"forged token", "Bearer " + adminToken + "x", 401, "UNAUTHORIZED"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.RemoteAddr = "192.0.2.7:1"
		if c.authz != "" {
			req.Header.Set("Authorization", c.authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status || c.code != "" && !strings.Contains(rec.Body.String(), `"`+c.code+`"`) {
			t.Errorf("%s: %d %s, want %d %s", c.who, rec.Code, rec.Body, c.status, c.code)
		}
		if c.status == 200 && rec.Body.String() != "berth_up 1\n" {
			t.Errorf("%s: body %q", c.who, rec.Body)
		}
		if c.status == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: 401 without a Basic challenge (Prometheus' basic_auth)", c.who)
		}
	}
}

// TestBodyDeadline: a client trickling its body is cut off at the deadline instead of
// holding the handler; a prompt one is served.
func TestBodyDeadline(t *testing.T) {
	read := make(chan error, 2)
	srv := httptest.NewServer(BodyDeadline(300*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := r.ParseForm()
		read <- err
		if err != nil {
			http.Error(w, "slow", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})))
	defer srv.Close()

	resp, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader("grant_type=password"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-read; err != nil || resp.StatusCode != 200 {
		t.Fatalf("prompt body: %d %v", resp.StatusCode, err)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	select {
	case err := <-read:
		if err == nil {
			t.Fatal("a trickled body was read in full")
		}
	case <-ctx.Done():
		t.Fatal("the handler still waits for a trickled body after 5s")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("trickled body cut off after %s, want about 300ms", d)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if line, err := bufio.NewReader(conn).ReadString('\n'); err == nil && !strings.Contains(line, "400") {
		t.Errorf("answer to a trickled body: %q", line)
	}
}
