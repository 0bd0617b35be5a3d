package cric

// Credentials: login checks a username and password against the registry and stores them
// the way docker does — in $DOCKER_CONFIG/config.json (or ~/.docker/config.json), or
// through the credential helper that config names for the registry (credHelpers) or for
// all registries (credsStore) — so docker, crane, skopeo, helm, oras and cosign share
// them. Reading goes through go-containerregistry's default keychain, which consults the
// same file and helpers.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/term"
)

// LoginResult says where credentials were stored.
type LoginResult struct {
	Registry string `json:"registry"`
	StoredIn string `json:"storedIn"` // config file path or "docker-credential-<helper>"
	// Verified is false when the registry answered without asking for credentials, so
	// they could not be checked.
	Verified bool `json:"verified"`
	// Unencrypted is set when the credentials went into config.json itself (base64, not
	// encrypted) because no credential helper is configured.
	Unencrypted bool `json:"unencrypted"`
}

// configKey is the key docker uses for a registry in config.json: the host, except for
// Docker Hub's historical URL.
func configKey(reg name.Registry) string {
	if reg.RegistryStr() == name.DefaultRegistry {
		return authn.DefaultAuthKey
	}
	return reg.RegistryStr()
}

func loadDockerConfig() (*configfile.ConfigFile, error) {
	cf, err := config.Load(config.Dir())
	if err != nil {
		return nil, fmt.Errorf("reading docker config in %s: %w", config.Dir(), err)
	}
	return cf, nil
}

// storeName says where a config stores a registry's credentials.
func storeName(cf *configfile.ConfigFile, key string) string {
	if h := cf.CredentialHelpers[key]; h != "" {
		return "docker-credential-" + h
	}
	if cf.CredentialsStore != "" {
		return "docker-credential-" + cf.CredentialsStore
	}
	return cf.Filename
}

// Login verifies the credentials against the registry and, if they work, stores them.
func (c *Client) Login(ctx context.Context, registry, username, password string) (*LoginResult, error) {
	if username == "" || password == "" {
		return nil, usageErrorf("login needs a username and a password")
	}
	reg, err := c.ParseRegistry(registry)
	if err != nil {
		return nil, err
	}
	verified, err := c.checkCredentials(ctx, reg, authn.FromConfig(authn.AuthConfig{Username: username, Password: password}))
	if err != nil {
		return nil, err
	}
	cf, err := loadDockerConfig()
	if err != nil {
		return nil, err
	}
	key := configKey(reg)
	ac := types.AuthConfig{Username: username, Password: password, ServerAddress: key}
	where := storeName(cf, key)
	plain := where == cf.Filename
	if plain {
		// Written here rather than through docker's file store, which prints its own
		// three-line banner to stderr; the caller says it in one line.
		if cf.AuthConfigs == nil {
			cf.AuthConfigs = map[string]types.AuthConfig{}
		}
		cf.AuthConfigs[key] = ac
		err = cf.Save()
	} else {
		err = cf.GetCredentialsStore(key).Store(ac)
	}
	if err != nil {
		return nil, fmt.Errorf("storing credentials for %s in %s: %w", key, where, err)
	}
	return &LoginResult{Registry: reg.RegistryStr(), StoredIn: where, Verified: verified, Unencrypted: plain}, nil
}

// Logout removes a registry's credentials from the config file and its helper.
func (c *Client) Logout(registry string) (string, error) {
	reg, err := c.ParseRegistry(registry)
	if err != nil {
		return "", err
	}
	cf, err := loadDockerConfig()
	if err != nil {
		return "", err
	}
	key := configKey(reg)
	where := storeName(cf, key)
	if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
		return "", fmt.Errorf("removing credentials for %s from %s: %w", key, where, err)
	}
	// A plain entry may be left over from before a helper was configured.
	if _, ok := cf.AuthConfigs[key]; ok {
		delete(cf.AuthConfigs, key)
		if err := cf.Save(); err != nil {
			return "", err
		}
	}
	return where, nil
}

// checkCredentials makes an authenticated request: for token auth the token exchange
// itself checks them, for basic auth the GET /v2/ does. It reports false when the
// registry asked for no credentials at all.
func (c *Client) checkCredentials(ctx context.Context, reg name.Registry, auth authn.Authenticator) (bool, error) {
	pr, err := transport.Ping(ctx, reg, c.tr)
	if err != nil {
		return false, Classify(err)
	}
	if pr.Scheme == "" {
		return false, nil
	}
	tr, err := transport.NewWithContext(ctx, reg, auth, c.tr, nil)
	if err != nil {
		return false, Classify(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return false, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false, Classify(err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return false, Classify(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return true, nil
}

// ReadSecret reads a password: all of r when it is not a terminal (--password-stdin, a
// pipe), otherwise a prompt on w without echo.
func ReadSecret(r *os.File, w io.Writer, prompt string) (string, error) {
	if term.IsTerminal(int(r.Fd())) {
		fmt.Fprint(w, prompt)
		b, err := term.ReadPassword(int(r.Fd()))
		fmt.Fprintln(w)
		return string(b), err
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<16))
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
