package auth

// Token issuance and verification, and the attacks a token verifier must refuse: every
// forged or out-of-window token below is rejected by Verify (or, for a refresh token,
// grants nothing), while a correctly signed token within the skew is accepted.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/berth-registry/berth/internal/meta"
)

// openStore opens a fresh SQLite metadata store in a temp dir.
func openStore(t testing.TB) *meta.Store {
	t.Helper()
	m, err := meta.Open(context.Background(), meta.Options{Dialect: meta.SQLite, DSN: t.TempDir() + "/berth.db"})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newTestTokens(t testing.TB, m *meta.Store, o TokenOptions) *Tokens {
	t.Helper()
	tk, err := NewTokens(context.Background(), m, o)
	if err != nil {
		t.Fatalf("NewTokens: %v", err)
	}
	return tk
}

var b64 = base64.RawURLEncoding

// jwtParts splits a compact JWT and decodes its header and payload.
func jwtParts(t testing.TB, tok string) (header, payload map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		raw, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("part %d: %v: %s", i, err, raw)
		}
	}
	return header, payload, parts
}

func encodeJSON(t testing.TB, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(raw)
}

// validClaims are claims the verifier accepts when signed with its key.
func validClaims(now time.Time) *Claims {
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "berth", Subject: "dave", Audience: jwt.ClaimStrings{"berth"},
			ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), NotBefore: jwt.NewNumericDate(now),
			IssuedAt: jwt.NewNumericDate(now), ID: "test-jti",
		},
		Access: []Access{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}},
		Kind:   "user",
	}
}

func signES256(t testing.TB, key *ecdsa.PrivateKey, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	m := openStore(t)
	tk := newTestTokens(t, m, TokenOptions{Lifetime: 3 * time.Minute})
	if tk.Service() != "berth" || tk.Lifetime() != 3*time.Minute {
		t.Fatalf("Service %q Lifetime %s, want berth 3m", tk.Service(), tk.Lifetime())
	}
	p := &Principal{Kind: "robot", Name: "robot$team+ci"}
	access := []Access{
		{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
	}
	before := time.Now().Add(-time.Second)
	raw, issued, err := tk.Issue(p, access)
	if err != nil {
		t.Fatal(err)
	}
	if issued.Before(before) || issued.After(time.Now()) {
		t.Fatalf("issued at %s, not now", issued)
	}
	header, payload, _ := jwtParts(t, raw)
	if header["alg"] != "ES256" || header["kid"] == "" || header["kid"] == nil {
		t.Fatalf("header %v: want alg ES256 and a kid", header)
	}
	for _, k := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} {
		if _, ok := payload[k]; !ok {
			t.Errorf("payload lacks %q: %v", k, payload)
		}
	}
	c, err := tk.Verify(raw)
	if err != nil {
		t.Fatalf("Verify of a fresh token: %v", err)
	}
	if c.Issuer != "berth" || c.Subject != "robot$team+ci" || !slices.Equal([]string(c.Audience), []string{"berth"}) || c.Kind != "robot" || c.Refresh {
		t.Fatalf("claims %+v", c)
	}
	if d := c.ExpiresAt.Sub(c.IssuedAt.Time); d != 3*time.Minute {
		t.Errorf("exp - iat = %s, want the 3m lifetime", d)
	}
	if !c.Grants("repository", "team/app", Pull) || !c.Grants("repository", "team/app", Push) {
		t.Error("token does not grant what it carries")
	}
	if c.Grants("repository", "team/app", Delete) || c.Grants("repository", "team/other", Pull) ||
		c.Grants("repository", "other/app", Pull) || c.Grants("registry", "team/app", Pull) {
		t.Error("token grants more than it carries")
	}
	if !c.Grants("registry", "catalog", Catalog) {
		t.Error("catalog grant missing")
	}
	// Verified twice (the second time from the cache): same answer.
	if c2, err := tk.Verify(raw); err != nil || c2.Subject != c.Subject {
		t.Fatalf("second Verify: %v %+v", err, c2)
	}
	// Every token has its own id.
	raw2, _, _ := tk.Issue(p, access)
	if _, p2, _ := jwtParts(t, raw2); p2["jti"] == payload["jti"] {
		t.Error("two tokens share a jti")
	}
	// A token without access carries an empty list, not null.
	raw3, _, _ := tk.Issue(Anonymous, nil)
	if _, p3, _ := jwtParts(t, raw3); p3["access"] == nil {
		t.Errorf("access of an empty grant is %v, want []", p3["access"])
	}
}

// The signing key is created once and persisted: a restart or another replica on the
// same database signs and verifies with it; another database's key is foreign.
func TestSigningKeyPersisted(t *testing.T) {
	m := openStore(t)
	a := newTestTokens(t, m, TokenOptions{})
	b := newTestTokens(t, m, TokenOptions{})
	if a.kid != b.kid || !a.key.Equal(b.key) {
		t.Fatal("a second Tokens on the same database has another key")
	}
	raw, _, err := a.Issue(&Principal{Kind: "user", Name: "dave"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(raw); err != nil {
		t.Fatalf("replica rejects a token of its peer: %v", err)
	}
	other := newTestTokens(t, openStore(t), TokenOptions{})
	if _, err := other.Verify(raw); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("another registry's verifier accepted the token: %v", err)
	}
}

func TestTokenAttacks(t *testing.T) {
	m := openStore(t)
	tk := newTestTokens(t, m, TokenOptions{ClockSkew: 10 * time.Second})
	now := time.Now()

	good := signES256(t, tk.key, tk.kid, validClaims(now))
	if _, err := tk.Verify(good); err != nil {
		t.Fatalf("control: a valid token is rejected: %v", err)
	}
	_, goodPayload, goodParts := jwtParts(t, good)

	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&tk.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	ecdhPub, err := tk.key.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	hs256 := func(secret []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims(now))
		tok.Header["kid"] = tk.kid
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withClaims := func(mut func(c *Claims)) string {
		c := validClaims(now)
		mut(c)
		return signES256(t, tk.key, tk.kid, c)
	}
	unsigned := func(alg string) string {
		return encodeJSON(t, map[string]any{"alg": alg, "typ": "JWT", "kid": tk.kid}) + "." + goodParts[1] + "."
	}
	// tampered re-encodes the good token's payload with changes and keeps its signature.
	tampered := func(mut func(p map[string]any)) string {
		p := map[string]any{}
		for k, v := range goodPayload {
			p[k] = v
		}
		mut(p)
		return goodParts[0] + "." + encodeJSON(t, p) + "." + goodParts[2]
	}
	libNone, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims(now)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}

	attacks := []struct {
		name, token string
	}{
		{"alg none", unsigned("none")},
		{"alg None", unsigned("None")},
		{"alg NONE", unsigned("NONE")},
		{"alg none (library-made)", libNone},
		{"alg none with the original signature", encodeJSON(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + goodParts[1] + "." + goodParts[2]},
		{"ES256 header, empty signature", goodParts[0] + "." + goodParts[1] + "."},
		{"HS256 keyed with the public key PEM", hs256(pubPEM)},
		{"HS256 keyed with the public key DER", hs256(pubDER)},
		{"HS256 keyed with the public key point", hs256(ecdhPub.Bytes())},
		{"HS256 keyed with the kid", hs256([]byte(tk.kid))},
		{"wrong signing key (another ES256 key, same kid)", signES256(t, otherKey, tk.kid, validClaims(now))},
		{"expired", withClaims(func(c *Claims) {
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute))
			c.IssuedAt, c.NotBefore = jwt.NewNumericDate(now.Add(-6*time.Minute)), jwt.NewNumericDate(now.Add(-6*time.Minute))
		})},
		{"no exp", withClaims(func(c *Claims) { c.ExpiresAt = nil })},
		{"not yet valid (nbf beyond the skew)", withClaims(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) })},
		{"no nbf", withClaims(func(c *Claims) { c.NotBefore = nil })},
		{"issued in the future (iat beyond the skew)", withClaims(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) })},
		{"wrong audience", withClaims(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other-registry"} })},
		{"no audience", withClaims(func(c *Claims) { c.Audience = nil })},
		{"wrong issuer", withClaims(func(c *Claims) { c.Issuer = "evil" })},
		{"no issuer", withClaims(func(c *Claims) { c.Issuer = "" })},
		{"tampered access (more actions)", tampered(func(p map[string]any) {
			p["access"] = []any{map[string]any{"type": "repository", "name": "team/app", "actions": []string{"pull", "push", "delete"}}}
		})},
		{"tampered access (another project)", tampered(func(p map[string]any) {
			p["access"] = []any{map[string]any{"type": "repository", "name": "other/app", "actions": []string{"pull"}}}
		})},
		{"tampered subject", tampered(func(p map[string]any) { p["sub"] = "admin" })},
		{"tampered expiry", tampered(func(p map[string]any) { p["exp"] = now.Add(24 * time.Hour).Unix() })},
		{"garbage", "not-a-jwt"},
		{"empty", ""},
		{"two parts", goodParts[0] + "." + goodParts[1]},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			c, err := tk.Verify(a.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
		})
	}
	// The verifier still accepts the good token (a rejected forgery poisons nothing).
	if _, err := tk.Verify(good); err != nil {
		t.Fatalf("valid token rejected after the attacks: %v", err)
	}

	// The skew is small and explicit: within it, clocks that differ are tolerated.
	within := []struct {
		name  string
		token string
	}{
		{"expired 5s ago, skew 10s", withClaims(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-5 * time.Second)) })},
		{"nbf 5s ahead, skew 10s", withClaims(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(5 * time.Second)) })},
	}
	for _, w := range within {
		if _, err := tk.Verify(w.token); err != nil {
			t.Errorf("%s: rejected: %v", w.name, err)
		}
	}
	// With no skew, the same tokens are refused.
	strict := newTestTokens(t, m, TokenOptions{ClockSkew: 0})
	for _, w := range within {
		if _, err := strict.Verify(w.token); err == nil {
			t.Errorf("%s: accepted with zero skew", w.name)
		}
	}
}

// A refresh token is a valid JWT of this registry but grants nothing, even if it were
// (by a bug elsewhere) to carry access claims.
func TestRefreshTokenIsNotAnAccessToken(t *testing.T) {
	m := openStore(t)
	tk := newTestTokens(t, m, TokenOptions{})
	p := &Principal{Kind: "user", Name: "dave", Groups: []string{"devs"}}
	raw, err := tk.IssueRefresh(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tk.Verify(raw)
	if err != nil {
		t.Fatalf("Verify refresh: %v", err)
	}
	if !c.Refresh || c.Subject != "dave" || c.Kind != "user" || !slices.Equal(c.Groups, []string{"devs"}) {
		t.Fatalf("refresh claims %+v", c)
	}
	if len(c.Access) != 0 {
		t.Fatalf("refresh token carries access %v", c.Access)
	}
	if d := c.ExpiresAt.Sub(c.IssuedAt.Time); d != 24*time.Hour {
		t.Errorf("refresh lifetime %s, want the 24h default", d)
	}
	for _, a := range []Action{Pull, Push, Delete, Catalog} {
		if c.Grants("repository", "team/app", a) || c.Grants("registry", "catalog", a) {
			t.Errorf("refresh token grants %s", a)
		}
	}
	forged := validClaims(time.Now())
	forged.Refresh = true
	fc, err := tk.Verify(signES256(t, tk.key, tk.kid, forged))
	if err != nil {
		t.Fatal(err)
	}
	if fc.Grants("repository", "team/app", Pull) {
		t.Error("a refresh token with access claims grants pull")
	}
}

// A verified token is cached, but never past its expiry.
func TestVerifyCacheHonoursExpiry(t *testing.T) {
	m := openStore(t)
	tk := newTestTokens(t, m, TokenOptions{Lifetime: time.Second, ClockSkew: 0})
	raw, _, err := tk.Issue(&Principal{Kind: "user", Name: "dave"}, []Access{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Verify(raw); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if c, err := tk.Verify(raw); err == nil {
		t.Fatalf("expired token accepted (from the cache?): exp %s", c.ExpiresAt)
	}
}

func TestParseScope(t *testing.T) {
	ok := []struct {
		in   string
		want Scope
	}{
		{"repository:team/app:pull", Scope{"repository", "team/app", []Action{Pull}}},
		{"repository:team/app:pull,push", Scope{"repository", "team/app", []Action{Pull, Push}}},
		{"repository:team/sub/app:pull,push,delete", Scope{"repository", "team/sub/app", []Action{Pull, Push, Delete}}},
		{"repository:app:delete", Scope{"repository", "app", []Action{Delete}}},
		{"registry:catalog:*", Scope{"registry", "catalog", []Action{Catalog}}},
		{"repository(plugin):team/app:pull", Scope{"repository", "team/app", []Action{Pull}}},
		{"repository:team/app:", Scope{"repository", "team/app", nil}},
		{"repository:team/app:pull,,push,", Scope{"repository", "team/app", []Action{Pull, Push}}},
		{"repository:host:5000/app:pull", Scope{"repository", "host:5000/app", []Action{Pull}}},
		{"repository:team/app:*", Scope{"repository", "team/app", []Action{Catalog}}},
	}
	for _, tt := range ok {
		got, err := ParseScope(tt.in)
		if err != nil {
			t.Errorf("ParseScope(%q): %v", tt.in, err)
			continue
		}
		if got.Type != tt.want.Type || got.Name != tt.want.Name || !slices.Equal(got.Actions, tt.want.Actions) {
			t.Errorf("ParseScope(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	for _, in := range []string{"", "repository", "repository:team/app", ":team/app:pull", "pull", ":", "::"} {
		if got, err := ParseScope(in); err == nil {
			t.Errorf("ParseScope(%q) = %+v, want an error", in, got)
		}
	}
}
