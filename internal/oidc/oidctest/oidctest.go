// Package oidctest runs a real OpenID provider on loopback for tests: zitadel/oidc's
// example OP (its op package, login page and in-memory storage from
// github.com/zitadel/oidc/v3/example/server), with test users whose ID tokens and
// userinfo carry a "groups" claim. Like every example client, the provider issues
// opaque access tokens and leaves the profile claims (preferred_username) out of the
// ID token, so a relying party must read them from the userinfo endpoint.
package oidctest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is a test user of the provider.
type User struct {
	ID       string // the subject
	Username string // preferred_username, and the login form's user name
	Password string
	Email    string
	Groups   []string
}

// OP is a running provider.
type OP struct {
	// Issuer is the provider's issuer URL (http://127.0.0.1:port, no trailing slash).
	Issuer string
	srv    *httptest.Server
	st     *groupStorage
}

// Start runs a provider with the users until the test ends.
func Start(t testing.TB, users ...User) *OP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	us := userStore{}
	st := &groupStorage{groups: map[string][]string{}, clients: map[string]*storage.Client{}, secrets: map[string]string{}}
	for _, u := range users {
		us[u.ID] = &storage.User{ID: u.ID, Username: u.Username, Password: u.Password, FirstName: u.Username, LastName: "Test",
			Email: u.Email, EmailVerified: true, PreferredLanguage: language.English}
		st.groups[u.ID] = slices.Clone(u.Groups)
	}
	st.Storage = storage.NewStorageWithClients(us, map[string]*storage.Client{})
	handler, err := newHandler(issuer, st)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: handler}}
	srv.Start()
	t.Cleanup(srv.Close)
	return &OP{Issuer: issuer, srv: srv, st: st}
}

// RegisterClient adds a confidential web client (client_secret_basic) allowed to
// redirect to redirectURIs.
func (o *OP) RegisterClient(id, secret string, redirectURIs ...string) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.clients[id] = storage.WebClient(id, secret, redirectURIs...)
	o.st.secrets[id] = secret
}

// SetGroups changes a user's groups, as a directory change behind the provider would.
func (o *OP) SetGroups(userID string, groups ...string) {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	o.st.groups[userID] = slices.Clone(groups)
}

// groupStorage is the example storage with a groups claim and its own client registry
// (the example's is a package-level map that cannot change while serving).
type groupStorage struct {
	*storage.Storage
	mu      sync.Mutex
	groups  map[string][]string
	clients map[string]*storage.Client
	secrets map[string]string // client ID → secret (the example's field is private)
}

func (s *groupStorage) addGroups(ui *oidc.UserInfo, subject string) {
	s.mu.Lock()
	g := slices.Clone(s.groups[subject])
	s.mu.Unlock()
	if g == nil {
		g = []string{}
	}
	ui.AppendClaims("groups", g)
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *groupStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	s.addGroups(ui, req.GetSubject())
	return nil
}

// SetUserinfoFromToken answers the userinfo endpoint.
func (s *groupStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(ui, ui.Subject)
	return nil
}

// GetClientByClientID finds a registered client.
func (s *groupStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("client not found")
	}
	return c, nil
}

// AuthorizeClientIDSecret checks a client's credentials at the token endpoint.
func (s *groupStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	want, ok := s.secrets[id]
	s.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
		return errors.New("invalid client credentials")
	}
	return nil
}

// userStore is the example's storage.UserStore over a map.
type userStore map[string]*storage.User

func (u userStore) GetUserByID(id string) *storage.User { return u[id] }

func (u userStore) GetUserByUsername(name string) *storage.User {
	for _, x := range u {
		if x.Username == name {
			return x
		}
	}
	return nil
}

func (u userStore) ExampleClientID() string { return storage.ServiceUserID }

// newHandler is exampleop.SetupServer without its request logging (which writes every
// request to the process's default logger) and device flow: the provider with the
// example's settings (PKCE S256, client secrets by Basic or form post, plain-HTTP issuer
// allowed, /auth as the authorization endpoint), and a login form like the example's
// (an OP library leaves the login UI to its application).
func newHandler(issuer string, st *groupStorage) (http.Handler, error) {
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:          sha256.Sum256([]byte("oidctest")),
		CryptoKeyId:        "key1",
		CodeMethodS256:     true,
		AuthMethodPost:     true,
		SupportedUILocales: []language.Tag{language.English},
	}, st, op.StaticIssuer(issuer), op.WithAllowInsecure(), op.WithCustomAuthEndpoint(op.NewEndpoint("auth")))
	if err != nil {
		return nil, err
	}
	callback := op.AuthCallbackURL(provider)
	interceptor := op.NewIssuerInterceptor(provider.IssuerFromRequest)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LoginFormPath, func(w http.ResponseWriter, r *http.Request) {
		renderLogin(w, r.URL.Query().Get("authRequestID"), "")
	})
	mux.Handle("POST "+LoginFormPath, interceptor.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PostFormValue("id")
		if err := st.CheckUsernamePassword(r.PostFormValue("username"), r.PostFormValue("password"), id); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			renderLogin(w, id, err.Error())
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	}))
	mux.Handle("/", provider)
	return mux, nil
}

// LoginFormPath is the provider's login page (the example storage sends browsers there).
const LoginFormPath = "/login/username"

var loginPage = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Login</title></head><body>
<form method="POST" action="/login/username">
<input type="hidden" name="id" value="{{.ID}}">
<input name="username"> <input name="password" type="password">
<p>{{.Error}}</p><button type="submit">Login</button>
</form></body></html>
`))

func renderLogin(w http.ResponseWriter, id, errMsg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginPage.Execute(w, struct{ ID, Error string }{id, errMsg})
}
