package session

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/meta/metatest"
)

func TestStore(t *testing.T) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := NewStore(b.Open(t).DB())
			s := &Session{User: "alice", Groups: []string{"dev", "ops"}, Remote: "127.0.0.1"}
			token, err := st.Create(ctx, s, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Lookup(ctx, token, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if got.User != "alice" || strings.Join(got.Groups, ",") != "dev,ops" || got.CSRF != s.CSRF || got.CSRF == "" {
				t.Fatalf("lookup = %+v, want alice [dev ops] with the CSRF token %q", got, s.CSRF)
			}
			if _, err := st.Lookup(ctx, token+"x", time.Hour); !errors.Is(err, ErrNotFound) {
				t.Fatalf("a wrong token: err %v, want ErrNotFound", err)
			}
			// Idle: a session last seen longer ago than idle is over.
			if _, err := st.db.Exec(ctx, `UPDATE ui_sessions SET seen_at = $1`, time.Now().Add(-2*time.Hour).UnixMilli()); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Lookup(ctx, token, time.Hour); !errors.Is(err, ErrNotFound) {
				t.Fatalf("idle session: err %v, want ErrNotFound", err)
			}
			if err := st.Touch(ctx, got); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Lookup(ctx, token, time.Hour); err != nil {
				t.Fatalf("touched session: %v", err)
			}
			// Expired.
			expired := &Session{User: "alice"}
			old, err := st.Create(ctx, expired, -time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Lookup(ctx, old, 0); !errors.Is(err, ErrNotFound) {
				t.Fatalf("expired session: err %v, want ErrNotFound", err)
			}
			if n, err := st.Prune(ctx, time.Hour); err != nil || n != 1 {
				t.Fatalf("prune = %d, %v; want the expired one", n, err)
			}
			bob := &Session{User: "bob"}
			bobToken, err := st.Create(ctx, bob, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Create(ctx, &Session{User: "alice"}, time.Hour); err != nil {
				t.Fatal(err)
			}
			if l, err := st.List(ctx, "alice"); err != nil || len(l) != 2 {
				t.Fatalf("alice's sessions = %d, %v; want 2", len(l), err)
			}
			// Logout everywhere ends only that user's sessions.
			if n, err := st.DeleteUser(ctx, "alice"); err != nil || n != 2 {
				t.Fatalf("delete alice's sessions = %d, %v; want 2", n, err)
			}
			if _, err := st.Lookup(ctx, token, time.Hour); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after logout everywhere: err %v, want ErrNotFound", err)
			}
			if _, err := st.Lookup(ctx, bobToken, time.Hour); err != nil {
				t.Fatalf("bob's session after alice's logout: %v", err)
			}
			if err := st.Delete(ctx, bob); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Lookup(ctx, bobToken, time.Hour); !errors.Is(err, ErrNotFound) {
				t.Fatalf("after logout: err %v, want ErrNotFound", err)
			}
		})
	}
}

func TestCookieFlags(t *testing.T) {
	for _, tt := range []struct {
		name       string
		tls, force bool
		wantName   string
		wantSecure bool
	}{
		{"plain HTTP", false, false, "berth_session", false},
		{"TLS", true, false, "__Host-berth_session", true},
		{"behind a TLS proxy", false, true, "__Host-berth_session", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := metatest.Backends(t)[0]
			m := NewManager(NewStore(b.Open(t).DB()), Options{Secure: tt.force})
			r := httptest.NewRequest("POST", "http://berth.test/login", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			s, err := m.Start(context.Background(), w, r, Login{User: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			cs := w.Result().Cookies()
			if len(cs) != 1 {
				t.Fatalf("cookies = %v, want one", cs)
			}
			c := cs[0]
			if c.Name != tt.wantName || c.Secure != tt.wantSecure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Fatalf("cookie %+v: want %s, Secure %v, HttpOnly, SameSite=Lax, Path=/", c, tt.wantName, tt.wantSecure)
			}
			if strings.Contains(c.Value, s.CSRF) {
				t.Fatal("the cookie carries the CSRF token")
			}
			// The cookie opens the session; logout ends it and clears the cookie.
			r2 := httptest.NewRequest("GET", "http://berth.test/", nil)
			r2.TLS = r.TLS
			r2.AddCookie(c)
			got, err := m.Current(r2)
			if err != nil || got == nil || got.User != "alice" {
				t.Fatalf("current = %+v, %v", got, err)
			}
			w2 := httptest.NewRecorder()
			if err := m.End(context.Background(), w2, r2); err != nil {
				t.Fatal(err)
			}
			if cl := w2.Result().Cookies(); len(cl) != 1 || cl[0].MaxAge >= 0 {
				t.Fatalf("logout cookies = %v, want one expiring", cl)
			}
			if got, err := m.Current(r2); err != nil || got != nil {
				t.Fatalf("after logout: %+v, %v", got, err)
			}
		})
	}
}

func TestStartEndsPreviousSession(t *testing.T) {
	m := NewManager(NewStore(metatest.Backends(t)[0].Open(t).DB()), Options{})
	ctx := context.Background()
	w := httptest.NewRecorder()
	if _, err := m.Start(ctx, w, httptest.NewRequest("POST", "/login", nil), Login{User: "mallory"}); err != nil {
		t.Fatal(err)
	}
	planted := w.Result().Cookies()[0]
	r := httptest.NewRequest("POST", "/login", nil)
	r.AddCookie(planted)
	if _, err := m.Start(ctx, httptest.NewRecorder(), r, Login{User: "alice"}); err != nil {
		t.Fatal(err)
	}
	if s, err := m.Current(r); err != nil || s != nil {
		t.Fatalf("the session planted before login still opens: %+v, %v", s, err)
	}
}

func TestCheckCSRF(t *testing.T) {
	s := &Session{CSRF: "tok-123"}
	for _, tt := range []struct {
		name    string
		form    url.Values
		header  map[string]string
		session *Session
		ok      bool
	}{
		{"form token", url.Values{"csrf": {"tok-123"}}, nil, s, true},
		{"header token", nil, map[string]string{"X-CSRF-Token": "tok-123"}, s, true},
		{"same origin", url.Values{"csrf": {"tok-123"}}, map[string]string{"Origin": "http://berth.test", "Sec-Fetch-Site": "same-origin"}, s, true},
		{"missing token", nil, nil, s, false},
		{"wrong token", url.Values{"csrf": {"tok-124"}}, nil, s, false},
		{"prefix of the token", url.Values{"csrf": {"tok-12"}}, nil, s, false},
		{"no session", url.Values{"csrf": {"tok-123"}}, nil, nil, false},
		{"other origin", url.Values{"csrf": {"tok-123"}}, map[string]string{"Origin": "http://evil.test"}, s, false},
		{"cross-site fetch", url.Values{"csrf": {"tok-123"}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, s, false},
		{"same-site sibling", url.Values{"csrf": {"tok-123"}}, map[string]string{"Sec-Fetch-Site": "same-site"}, s, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "http://berth.test/x", strings.NewReader(tt.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			err := CheckCSRF(r, tt.session)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckCSRF = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrCSRF) {
				t.Fatalf("error %v does not wrap ErrCSRF", err)
			}
		})
	}
}
