package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fromAddr is an HTTP client whose connections leave from a loopback address of its
// own (127.0.0.0/8 is all loopback on Linux), so one test plays several clients.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 16,
	}}
}

type limResp struct {
	status     int
	retryAfter string
	location   string
	body       string
}

func limDo(t *testing.T, c *http.Client, method, url string, body []byte) limResp {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return limResp{resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Location"), string(b)}
}

// openUntilRefused starts sessions in repo until the first refusal and returns how many
// were accepted; the refusal must be 429 with Retry-After and name want.
func openUntilRefused(t *testing.T, c *http.Client, b *Berth, repo, want string, max int) int {
	t.Helper()
	for i := 0; i < max; i++ {
		r := limDo(t, c, "POST", b.URL("/v2/"+repo+"/blobs/uploads/"), nil)
		if r.status == http.StatusAccepted {
			continue
		}
		if r.status != http.StatusTooManyRequests || r.retryAfter == "" || !strings.Contains(r.body, "TOOMANYREQUESTS") || !strings.Contains(r.body, want) {
			t.Fatalf("refusal %d in %s: %d Retry-After %q %s; want 429 with Retry-After naming %s", i, repo, r.status, r.retryAfter, r.body, want)
		}
		return i
	}
	t.Fatalf("%d sessions in %s and no refusal", max, repo)
	return max
}

// limPushBlob uploads data as a blob (POST, then PUT with the body) and fails unless 201.
func limPushBlob(t *testing.T, c *http.Client, b *Berth, repo string, data []byte) {
	t.Helper()
	r := limDo(t, c, "POST", b.URL("/v2/"+repo+"/blobs/uploads/"), nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("start upload in %s: %d %s", repo, r.status, r.body)
	}
	dg := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	loc := r.location
	if !strings.HasPrefix(loc, "http") {
		loc = b.URL(loc)
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	if r := limDo(t, c, "PUT", loc+sep+"digest="+dg, data); r.status != http.StatusCreated {
		t.Fatalf("complete upload in %s: %d %s", repo, r.status, r.body)
	}
}

// TestExhaustionLimitsSessions: an upload flood from one client stops at its bound with
// 429 and Retry-After while other clients push; repository and project bounds likewise.
func TestExhaustionLimitsSessions(t *testing.T) {
	b := startBerth(t, BerthOptions{Config: `
throttle:
  uploads:
    perClient: 5
    perRepository: 8
    perProject: 12
    retryAfter: 2s
`})
	a, bc, c := fromAddr("127.0.0.1"), fromAddr("127.0.0.2"), fromAddr("127.0.0.3")
	start := time.Now()
	if n := openUntilRefused(t, a, b, "proj/a", "perClient", 200); n != 5 {
		t.Fatalf("client A opened %d sessions, want 5", n)
	}
	// The flood goes on being refused quickly, and costs no sessions.
	for range 200 {
		if r := limDo(t, a, "POST", b.URL("/v2/proj/a/blobs/uploads/"), nil); r.status != http.StatusTooManyRequests {
			t.Fatalf("flood: %d %s", r.status, r.body)
		}
	}
	t.Logf("405 upload starts from one client in %v", time.Since(start))
	// Another client pushes meanwhile.
	limPushBlob(t, bc, b, "proj/a", []byte("client B's layer"))
	// The repository bound: A's 5 plus 3 of B's fill proj/a.
	if n := openUntilRefused(t, bc, b, "proj/a", "perRepository", 20); n != 3 {
		t.Fatalf("client B opened %d sessions in proj/a, want 3", n)
	}
	limPushBlob(t, c, b, "proj/c", []byte("another repository still takes pushes"))
	// The project bound: 8 open in proj, so C gets 4 more in proj/c.
	if n := openUntilRefused(t, c, b, "proj/c", "perProject", 20); n != 4 {
		t.Fatalf("client C opened %d sessions in proj/c, want 4", n)
	}
	limPushBlob(t, fromAddr("127.0.0.4"), b, "other/app", []byte("another project still takes pushes"))
}

// TestExhaustionLimitsSlowBody: a PATCH trickling a byte every 2 s is cut after the
// idle time with 408; the byte received is kept and the upload resumes.
func TestExhaustionLimitsSlowBody(t *testing.T) {
	b := startBerth(t, BerthOptions{Config: "throttle:\n  bodyIdleTimeout: 1s\n"})
	c := fromAddr("127.0.0.1")
	r := limDo(t, c, "POST", b.URL("/v2/slow/app/blobs/uploads/"), nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	loc := strings.TrimPrefix(r.location, "http://"+b.Addr)
	conn, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\nx", loc, b.Addr)
	began := time.Now()
	go func() {
		for range 9 {
			time.Sleep(2 * time.Second)
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the trickling PATCH: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	took := time.Since(began)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "resume") {
		t.Fatalf("trickling PATCH: %d %s, want 408 naming the resume", resp.StatusCode, body)
	}
	if took < 900*time.Millisecond || took > 5*time.Second {
		t.Fatalf("cut after %v, want about the 1s idle time", took)
	}
	// Resumable: the byte received is acknowledged, the rest follows.
	st, err := c.Get(b.URL(loc))
	if err != nil {
		t.Fatal(err)
	}
	st.Body.Close()
	if st.StatusCode != http.StatusNoContent || st.Header.Get("Range") != "0-0" {
		t.Fatalf("upload status after the cut: %d Range %q, want 204 0-0", st.StatusCode, st.Header.Get("Range"))
	}
	rest := []byte("yyyyyyyyy")
	req, _ := http.NewRequest("PATCH", b.URL(loc), bytes.NewReader(rest))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", "1-9")
	pr, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.StatusCode != http.StatusAccepted {
		t.Fatalf("resume PATCH: %d", pr.StatusCode)
	}
	next := strings.TrimPrefix(pr.Header.Get("Location"), "http://"+b.Addr)
	sep := "?"
	if strings.Contains(next, "?") {
		sep = "&"
	}
	dg := fmt.Sprintf("sha256:%x", sha256.Sum256(append([]byte("x"), rest...)))
	if r := limDo(t, c, "PUT", b.URL(next+sep+"digest="+dg), nil); r.status != http.StatusCreated {
		t.Fatalf("complete after resume: %d %s", r.status, r.body)
	}
}

// TestExhaustionLimitsRate: a client over its read budget gets 429 with Retry-After
// while another client's requests keep succeeding.
func TestExhaustionLimitsRate(t *testing.T) {
	b := startBerth(t, BerthOptions{Config: "throttle:\n  read:\n    rate: 20\n    burst: 20\n"})
	greedy, other := fromAddr("127.0.0.1"), fromAddr("127.0.0.2")
	refused, retry := 0, ""
	for i := range 100 {
		r := limDo(t, greedy, "GET", b.URL("/v2/"), nil)
		switch r.status {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			refused++
			retry = r.retryAfter
		default:
			t.Fatalf("greedy request %d: %d %s", i, r.status, r.body)
		}
		if i%10 == 0 {
			began := time.Now()
			if r := limDo(t, other, "GET", b.URL("/v2/"), nil); r.status != http.StatusOK {
				t.Fatalf("the other client was refused: %d %s", r.status, r.body)
			}
			if d := time.Since(began); d > time.Second {
				t.Fatalf("the other client waited %v", d)
			}
		}
	}
	if refused == 0 || retry == "" {
		t.Fatalf("100 fast reads: %d refused, Retry-After %q; want refusals with Retry-After", refused, retry)
	}
	m := limDo(t, other, "GET", b.URL("/metrics"), nil)
	if !strings.Contains(m.body, `berth_limit_refusals_total{limit="rate_read"}`) {
		t.Fatal("no refusal metric")
	}
}
