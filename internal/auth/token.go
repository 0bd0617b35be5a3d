package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/berth-registry/berth/internal/meta"
)

// TokenOptions configure the token service.
type TokenOptions struct {
	Issuer          string        // iss
	Service         string        // aud: the registry's service name in challenges
	Lifetime        time.Duration // access tokens
	RefreshLifetime time.Duration // refresh tokens (offline tokens)
	ClockSkew       time.Duration // tolerated difference between replicas' clocks
}

// Tokens issues and verifies Docker registry tokens: ES256 JWTs signed with a key kept
// in the database, so every replica signs and verifies with the same key, offline.
type Tokens struct {
	key  *ecdsa.PrivateKey
	kid  string
	opts TokenOptions

	mu    sync.Mutex
	cache map[[32]byte]*Claims // verified tokens until they expire
}

// Access is one grant in a token, as the distribution token spec writes it.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Claims are a Berth token's claims.
type Claims struct {
	jwt.RegisteredClaims
	Access []Access `json:"access"`
	// Kind is the subject's kind (user, robot, anonymous); Refresh marks refresh tokens,
	// which grant nothing but a new access token.
	Kind    string   `json:"berth_kind,omitempty"`
	Groups  []string `json:"berth_groups,omitempty"`
	Refresh bool     `json:"berth_refresh,omitempty"`
}

// NewTokens loads (or creates, on the first start of the first replica) the signing key.
func NewTokens(ctx context.Context, m *meta.Store, o TokenOptions) (*Tokens, error) {
	if o.Issuer == "" {
		o.Issuer = "berth"
	}
	if o.Service == "" {
		o.Service = "berth"
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 5 * time.Minute
	}
	if o.RefreshLifetime <= 0 {
		o.RefreshLifetime = 24 * time.Hour
	}
	if o.ClockSkew < 0 {
		o.ClockSkew = 0
	}
	id, pemText, err := m.SigningKey(ctx, func() (string, string, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return "", "", err
		}
		sum := sha256.Sum256(der)
		return hex.EncodeToString(sum[:8]), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: signing key: %w", err)
	}
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("auth: signing key: not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: signing key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("auth: signing key is not ECDSA")
	}
	return &Tokens{key: ec, kid: id, opts: o, cache: map[[32]byte]*Claims{}}, nil
}

// Service is the service name clients must present (and tokens' audience).
func (t *Tokens) Service() string { return t.opts.Service }

// Lifetime of access tokens.
func (t *Tokens) Lifetime() time.Duration { return t.opts.Lifetime }

func (t *Tokens) sign(c *Claims) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = t.kid
	return tok.SignedString(t.key)
}

func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Issue signs an access token for p carrying access.
func (t *Tokens) Issue(p *Principal, access []Access) (string, time.Time, error) {
	now := time.Now()
	exp := now.Add(t.opts.Lifetime)
	if access == nil {
		access = []Access{}
	}
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.opts.Issuer, Subject: p.Name, Audience: jwt.ClaimStrings{t.opts.Service},
			ExpiresAt: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now),
			ID: newJTI(),
		},
		Access: access,
		Kind:   p.Kind,
		Groups: p.Groups,
	}
	s, err := t.sign(c)
	return s, now, err
}

// IssueRefresh signs a refresh token for p.
func (t *Tokens) IssueRefresh(p *Principal) (string, error) {
	now := time.Now()
	return t.sign(&Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.opts.Issuer, Subject: p.Name, Audience: jwt.ClaimStrings{t.opts.Service},
			ExpiresAt: jwt.NewNumericDate(now.Add(t.opts.RefreshLifetime)), NotBefore: jwt.NewNumericDate(now),
			IssuedAt: jwt.NewNumericDate(now), ID: newJTI(),
		},
		Kind:    p.Kind,
		Groups:  p.Groups,
		Refresh: true,
	})
}

// ErrInvalidToken reports a token that must not be honoured.
var ErrInvalidToken = errors.New("auth: invalid token")

// Verify checks signature (ES256 with this registry's key only), issuer, audience and
// time window, offline. Verified tokens are remembered until they expire, so a client
// reusing its token costs a map lookup, not a signature check.
func (t *Tokens) Verify(raw string) (*Claims, error) {
	key := sha256.Sum256([]byte(raw))
	t.mu.Lock()
	c, ok := t.cache[key]
	t.mu.Unlock()
	if ok {
		if time.Now().Before(c.ExpiresAt.Add(t.opts.ClockSkew)) {
			return c, nil
		}
		t.mu.Lock()
		delete(t.cache, key)
		t.mu.Unlock()
	}
	c = &Claims{}
	_, err := jwt.ParseWithClaims(raw, c, func(*jwt.Token) (any, error) { return &t.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(t.opts.Issuer),
		jwt.WithAudience(t.opts.Service),
		jwt.WithLeeway(t.opts.ClockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.NotBefore == nil {
		return nil, fmt.Errorf("%w: no nbf", ErrInvalidToken)
	}
	t.mu.Lock()
	if len(t.cache) > 50000 {
		t.cache = map[[32]byte]*Claims{}
	}
	t.cache[key] = c
	t.mu.Unlock()
	return c, nil
}

// Grants tells whether the verified claims allow action on the named resource.
func (c *Claims) Grants(typ, name string, action Action) bool {
	if c.Refresh {
		return false
	}
	for _, a := range c.Access {
		if a.Type == typ && a.Name == name {
			for _, act := range a.Actions {
				if act == string(action) {
					return true
				}
			}
		}
	}
	return false
}

// Scope is a parsed token request scope ("repository:team/app:pull,push").
type Scope struct {
	Type    string
	Name    string
	Actions []Action
}

// ParseScope parses one scope; names contain no ':', so the first and last colon split.
func ParseScope(s string) (Scope, error) {
	i := strings.IndexByte(s, ':')
	j := strings.LastIndexByte(s, ':')
	if i <= 0 || j <= i {
		return Scope{}, fmt.Errorf("auth: malformed scope %q", s)
	}
	sc := Scope{Type: s[:i], Name: s[i+1 : j]}
	if k := strings.IndexByte(sc.Type, '('); k > 0 {
		sc.Type = sc.Type[:k] // "repository(plugin)" is a repository
	}
	for _, a := range strings.Split(s[j+1:], ",") {
		if a != "" {
			sc.Actions = append(sc.Actions, Action(a))
		}
	}
	return sc, nil
}
