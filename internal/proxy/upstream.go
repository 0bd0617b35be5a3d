// Package proxy owns Berth's pull-through cache and transparent mirror: the configured
// upstream registries, how a request is routed to one (containerd's ?ns=, a path prefix,
// or the default upstream), the upstream protocol (token auth, redirects, rate-limit
// headers), and the cache semantics — immutable digests, tags revalidated after a TTL
// with stale-if-error, one upstream fetch per blob streamed to every waiting client.
// Cached content is stored through package registry like any pushed content.
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/oci"
)

// manifestAccept is what Berth accepts from upstreams: every manifest type it stores.
var manifestAccept = strings.Join([]string{
	oci.MediaTypeOCIIndex, oci.MediaTypeOCIManifest, oci.MediaTypeDockerList, oci.MediaTypeDockerManifest,
}, ", ")

// Upstream is one mirrored registry and the client state Berth keeps for it.
type Upstream struct {
	cfg      config.Upstream
	registry name.Registry
	auth     authn.Authenticator
	base     http.RoundTripper
	metrics  *Metrics

	mu         sync.Mutex
	transports map[string]transportEntry // per repository: the token scope
	lastErrors []UpstreamError           // newest last, at most maxLastErrors
}

type transportEntry struct {
	rt      http.RoundTripper
	created time.Time
}

// transportMaxAge bounds how long a per-repository transport (and its token state) is
// reused; the bearer transport also refreshes on 401 by itself.
const transportMaxAge = 30 * time.Minute

func newUpstream(cfg config.Upstream, m *Metrics) (*Upstream, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	tlsCfg, err := TLSConfig(cfg.CA, cfg.Insecure)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	timeout := time.Duration(cfg.Timeout)
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           guardedDial(timeout),
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}
	auth := authn.Anonymous
	if cfg.Username != "" {
		pw, err := password(cfg)
		if err != nil {
			return nil, err
		}
		auth = authn.FromConfig(authn.AuthConfig{Username: cfg.Username, Password: pw})
	}
	return &Upstream{cfg: cfg, registry: reg, auth: auth, base: base, metrics: m, transports: map[string]transportEntry{}}, nil
}

// TLSConfig is the client TLS configuration of an upstream: the system roots plus the
// PEM file ca (if any); insecure skips verification (testing only).
func TLSConfig(ca string, insecure bool) (*tls.Config, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // opt-in for testing
	if ca == "" {
		return tlsCfg, nil
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca %s holds no certificates", ca)
	}
	tlsCfg.RootCAs = pool
	return tlsCfg, nil
}

func password(cfg config.Upstream) (string, error) {
	switch {
	case cfg.PasswordFile != "":
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("upstream %s: password file: %w", cfg.Name, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case cfg.PasswordEnv != "":
		v, ok := os.LookupEnv(cfg.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("upstream %s: environment variable %s is not set", cfg.Name, cfg.PasswordEnv)
		}
		return v, nil
	}
	return cfg.Password, nil
}

// Name is the upstream's registry host as clients name it.
func (u *Upstream) Name() string { return u.cfg.Name }

// allows reports whether the upstream repository may be mirrored.
func (u *Upstream) allows(repo string) bool {
	if len(u.cfg.Allow) == 0 {
		return true
	}
	for _, p := range u.cfg.Allow {
		if ok, _ := path.Match(p, repo); ok {
			return true
		}
	}
	return false
}

// client returns an authenticated round tripper scoped to pulling repo: the token dance
// happens once per repository and is reused until it ages out.
func (u *Upstream) client(ctx context.Context, repo string) (http.RoundTripper, error) {
	u.mu.Lock()
	e, ok := u.transports[repo]
	u.mu.Unlock()
	if ok && time.Since(e.created) < transportMaxAge {
		return e.rt, nil
	}
	scope := "repository:" + repo + ":pull"
	rt, err := transport.NewWithContext(ctx, u.registry, u.auth, u.base, []string{scope})
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	if len(u.transports) > 10000 {
		u.transports = map[string]transportEntry{} // bound memory; entries are cheap to rebuild
	}
	u.transports[repo] = transportEntry{rt: rt, created: time.Now()}
	u.mu.Unlock()
	return rt, nil
}

// do sends one request for repo's path (e.g. "manifests/latest") to the upstream.
func (u *Upstream) do(ctx context.Context, method, repo, suffix string, header http.Header) (*http.Response, error) {
	rt, err := u.client(ctx, repo)
	if err != nil {
		e := &upstreamError{upstream: u.cfg.Name, err: err}
		u.failed("auth", e.Error())
		return nil, e
	}
	target := u.registry.Scheme() + "://" + u.registry.RegistryStr() + "/v2/" + repo + "/" + suffix
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := u.send(rt, req)
	if err != nil {
		reason := "network"
		if errors.Is(err, errPrivateRedirect) {
			reason = "redirect"
		}
		e := &upstreamError{upstream: u.cfg.Name, err: err}
		u.failed(reason, e.Error())
		return nil, e
	}
	u.observeRateLimit(resp.Header)
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		e := &upstreamError{upstream: u.cfg.Name, status: resp.StatusCode, body: strings.TrimSpace(string(body))}
		u.failed(strconv.Itoa(resp.StatusCode), e.Error())
		return nil, e
	}
	return resp, nil
}

// observeRateLimit exports Docker Hub's "ratelimit-remaining: N;w=21600".
func (u *Upstream) observeRateLimit(h http.Header) {
	v := h.Get("Ratelimit-Remaining")
	if v == "" {
		return
	}
	n, _, _ := strings.Cut(v, ";")
	if f, err := strconv.ParseFloat(strings.TrimSpace(n), 64); err == nil {
		u.metrics.rateLimitRemaining.WithLabelValues(u.cfg.Name).Set(f)
	}
}

// upstreamError is a failed upstream exchange: a transport error or an HTTP status.
type upstreamError struct {
	upstream string
	status   int // 0 for transport errors
	body     string
	err      error
}

func (e *upstreamError) Error() string {
	if e.status == 0 {
		return fmt.Sprintf("upstream %s: %v", e.upstream, e.err)
	}
	msg := fmt.Sprintf("upstream %s answered %d", e.upstream, e.status)
	if e.body != "" {
		msg += ": " + e.body
	}
	return msg
}

func (e *upstreamError) Unwrap() error { return e.err }

// notFound reports an upstream 404: the content does not exist there.
func isNotFound(err error) bool {
	var ue *upstreamError
	return errors.As(err, &ue) && ue.status == http.StatusNotFound
}

// transient reports failures where cached content should stand in (stale-if-error):
// unreachable, timeouts, rate limits, server errors.
func transient(err error) bool {
	var ue *upstreamError
	if !errors.As(err, &ue) {
		return false
	}
	return ue.status == 0 || ue.status == http.StatusTooManyRequests || ue.status >= 500 || ue.status == 401 || ue.status == 403
}

// asErrcode maps an upstream failure to the error the client sees.
func asErrcode(err error, notFound *errcode.Descriptor) error {
	var ue *upstreamError
	if !errors.As(err, &ue) {
		return err
	}
	switch {
	case ue.status == http.StatusNotFound:
		return notFound.New(ue.Error())
	case ue.status == http.StatusTooManyRequests:
		return errcode.TooManyRequests.New(ue.Error())
	default:
		return errcode.UpstreamUnavailable.Wrap(err, ue.Error())
	}
}
