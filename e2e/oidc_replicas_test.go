package e2e

// OIDC across replicas: two berth processes on one PostgreSQL database behind a
// round-robin proxy, so the login starts on one replica and its callback lands on the
// other; a CLI secret rotated on one stops working on the other within basicCacheTTL.

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/oidc/oidctest"
)

func TestOIDCReplicas(t *testing.T) {
	dsn := postgresDSN(t)
	op := oidctest.Start(t, oidcAlice)
	// The proxy's address is berth's external URL, so it must exist before berth starts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	external := "http://" + ln.Addr().String()
	cfg := `database:
  driver: postgres
  dsn: ` + dsn + `
auth:
  enabled: true
  basicCacheTTL: 1s
  admin:
    username: admin
    password: "` + oidcAdminPass + `"
  failedLogins:
    max: 1000
  oidc:
    enabled: true
    issuer: ` + op.Issuer + `
    clientID: berth
    clientSecret: ` + oidcClientSecret + `
    externalURL: ` + external + `
    groupRoles:
      - {group: team-devs, project: team, role: developer}
`
	a := startBerth(t, BerthOptions{Config: cfg})
	b := startBerth(t, BerthOptions{Config: cfg})
	op.RegisterClient("berth", oidcClientSecret, external+"/auth/oidc/callback")

	var next atomic.Int64
	var mu sync.Mutex
	var servedBy []string
	targets := []*url.URL{{Scheme: "http", Host: a.Addr}, {Scheme: "http", Host: b.Addr}}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		i := next.Add(1) - 1
		mu.Lock()
		servedBy = append(servedBy, r.In.URL.Path+"→"+[]string{"A", "B"}[i%2])
		mu.Unlock()
		r.SetURL(targets[i%2])
		r.Out.Host = r.In.Host // berth sees the external host, as behind a real balancer
	}}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })

	page := oidctest.NewBrowser(t).Login(t, external+"/auth/oidc/login", oidcAlice.Username, oidcAlice.Password)
	// Requests through the proxy: the login (A), the callback (B), then the UI (A, then B).
	mu.Lock()
	defer mu.Unlock()
	if len(servedBy) < 2 || servedBy[0] != "/auth/oidc/login→A" || servedBy[1] != "/auth/oidc/callback→B" {
		t.Fatalf("the login did not cross replicas: %v", servedBy)
	}
	if page.Status != http.StatusOK || page.URL.Path == "/login" || page.URL.Host != ln.Addr().String() || !strings.Contains(page.Body, "alice") {
		t.Fatalf("after the login the browser is at %s (%d):\n%.300s", page.URL, page.Status, page.Body)
	}

	admin := ldapBasic("admin", oidcAdminPass)
	secret1 := oidcSecret(t, a, admin, "alice")
	// B caches the verified secret; A rotates it.
	ldapWant(t, "B with the first secret", ldapDo(t, http.MethodGet, b.URL("/v2/"), ldapBasic("alice", secret1), nil, nil), http.StatusOK, "")
	secret2 := oidcSecret(t, a, admin, "alice")
	ldapWant(t, "A with the rotated-out secret", ldapDo(t, http.MethodGet, a.URL("/v2/"), ldapBasic("alice", secret1), nil, nil), http.StatusUnauthorized, "")
	ldapWant(t, "B with the new secret", ldapDo(t, http.MethodGet, b.URL("/v2/"), ldapBasic("alice", secret2), nil, nil), http.StatusOK, "")
	// Past basicCacheTTL, B asks the database again.
	time.Sleep(1500 * time.Millisecond)
	ldapWant(t, "B with the rotated-out secret after basicCacheTTL", ldapDo(t, http.MethodGet, b.URL("/v2/"), ldapBasic("alice", secret1), nil, nil), http.StatusUnauthorized, "")
}
