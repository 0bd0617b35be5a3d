package cric

// The client: global options, name parsing with per-registry plain-http/insecure
// settings, and the shared go-containerregistry Puller/Pusher that every operation uses
// (one transport, one token per repository scope, retries with backoff).

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/logs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-registry/berth/internal/buildinfo"
)

// Options are the global settings of one cric invocation.
type Options struct {
	// Insecure lists registries (host[:port]) whose TLS certificates are not verified and
	// which may also be reached over plain http; "*" means every registry.
	Insecure []string
	// PlainHTTP lists registries spoken to over plain http; "*" means every registry.
	// Loopback registries (localhost, 127.0.0.1, ::1) always may use plain http.
	PlainHTTP []string
	Jobs      int    // blobs transferred in parallel
	Retries   int    // retries of a request failing with 408/429/5xx or a network error
	Quiet     bool   // no progress, only results and errors
	JSON      bool   // machine-readable output of listing commands
	Progress  string // auto | bars | plain | none
	Debug     bool   // log every HTTP request and response to stderr
	Stdout    io.Writer
	Stderr    io.Writer
	// Keychain resolves credentials; nil means Docker's config.json and credential helpers.
	Keychain authn.Keychain
	// WrapTransport, when set, wraps the transport every request goes through (Berth's
	// replication limits a rule's bandwidth with it).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Client is one cric invocation's connection to any number of registries.
type Client struct {
	opts   Options
	base   []remote.Option
	puller *remote.Puller
	pusher *remote.Pusher
	mounts *mountBook
	tr     http.RoundTripper
	out    *Printer
}

// retryStatusCodes are the responses worth another try: timeouts, rate limits, server
// errors.
var retryStatusCodes = []int{
	http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

// New builds a client from the global options.
func New(opts Options) (*Client, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = 8
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Progress == "" {
		opts.Progress = "auto"
	}
	switch opts.Progress {
	case "auto", "bars", "plain", "none":
	default:
		return nil, usageErrorf("--progress must be auto, bars, plain or none, not %q", opts.Progress)
	}
	logs.Warn.SetOutput(io.Discard)
	if !opts.Quiet {
		logs.Warn.SetOutput(opts.Stderr)
		logs.Warn.SetPrefix("cric: warning: ")
		logs.Warn.SetFlags(0)
	}
	if opts.Debug {
		logs.Debug.SetOutput(opts.Stderr)
		logs.Debug.SetFlags(log.Ltime | log.Lmicroseconds)
	}
	c := &Client{opts: opts, mounts: newMountBook(), out: &Printer{w: opts.Stdout, json: opts.JSON}}
	c.tr = c.transport()
	if opts.WrapTransport != nil {
		c.tr = opts.WrapTransport(c.tr)
	}
	c.base = []remote.Option{
		remote.WithTransport(c.tr),
		remote.WithAuthFromKeychain(opts.Keychain),
		remote.WithJobs(opts.Jobs),
		remote.WithUserAgent(userAgent()),
		remote.WithRetryStatusCodes(retryStatusCodes...),
		remote.WithRetryBackoff(remote.Backoff{
			Duration: 500 * time.Millisecond, Factor: 2.5, Jitter: 0.2, Steps: opts.Retries + 1,
		}),
	}
	var err error
	if c.puller, err = remote.NewPuller(c.base...); err != nil {
		return nil, err
	}
	if c.pusher, err = remote.NewPusher(c.base...); err != nil {
		return nil, err
	}
	return c, nil
}

// Out is where results go (stdout), formatted as text or JSON.
func (c *Client) Out() *Printer { return c.out }

// Version is the module version cric was built from ("devel" for a local build).
func Version() string { return buildinfo.Version() }

func userAgent() string {
	return fmt.Sprintf("cric/%s (%s/%s)", Version(), runtime.GOOS, runtime.GOARCH)
}

// remoteOpts are the per-call options for the package-level remote functions.
func (c *Client) remoteOpts(ctx context.Context, extra ...remote.Option) []remote.Option {
	return append([]remote.Option{remote.Reuse(c.puller), remote.WithContext(ctx)}, extra...)
}

// transport sends requests to --insecure registries through a transport that skips
// certificate verification and everything else through the default one.
func (c *Client) transport() http.RoundTripper {
	base := remote.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = max(base.MaxIdleConnsPerHost, 2*c.opts.Jobs)
	if len(c.opts.Insecure) == 0 {
		return base
	}
	insecure := base.Clone()
	insecure.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it
	return &hostSwitch{secure: base, insecure: insecure, match: func(host string) bool {
		return matchHost(c.opts.Insecure, host)
	}}
}

type hostSwitch struct {
	secure, insecure http.RoundTripper
	match            func(host string) bool
}

func (h *hostSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.match(r.URL.Host) {
		return h.insecure.RoundTrip(r)
	}
	return h.secure.RoundTrip(r)
}

// matchHost reports whether host (host[:port]) is in list, which may hold "*", full
// host:port entries or bare host names matching any port.
func matchHost(list []string, host string) bool {
	hostOnly := host
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
		hostOnly = host[:i]
	}
	return slices.ContainsFunc(list, func(e string) bool {
		return e == "*" || e == host || e == hostOnly
	})
}

func (c *Client) nameOpts(host string) []name.Option {
	if matchHost(c.opts.PlainHTTP, host) || matchHost(c.opts.Insecure, host) {
		return []name.Option{name.Insecure}
	}
	return nil
}

// ParseReference parses an image reference (registry/repo:tag, registry/repo@digest,
// or registry/repo:tag@digest, whose tag is kept as a naming hint). Docker Hub names
// are completed as docker does (nginx → index.docker.io/library/nginx:latest).
func (c *Client) ParseReference(s string) (name.Reference, error) {
	ref, _, err := c.parseImage(s)
	return ref, err
}

// parseImage is ParseReference that also returns the tag of a tag@digest reference.
func (c *Client) parseImage(s string) (name.Reference, string, error) {
	s = strings.TrimSpace(s)
	tag := ""
	if left, dgst, ok := strings.Cut(s, "@"); ok {
		if i := strings.LastIndexByte(left, ':'); i > strings.LastIndexByte(left, '/') {
			tag, left = left[i+1:], left[:i]
		}
		s = left + "@" + dgst
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, "", usageErrorf("invalid image reference %q: %v", s, err)
	}
	if opts := c.nameOpts(ref.Context().RegistryStr()); opts != nil {
		ref, err = name.ParseReference(s, opts...)
		if err != nil {
			return nil, "", usageErrorf("invalid image reference %q: %v", s, err)
		}
	}
	if t, ok := ref.(name.Tag); ok {
		tag = t.TagStr()
	}
	return ref, tag, nil
}

// ParseRepository parses registry/repo.
func (c *Client) ParseRepository(s string) (name.Repository, error) {
	repo, err := name.NewRepository(strings.TrimSpace(s))
	if err != nil {
		return name.Repository{}, usageErrorf("invalid repository %q: %v", s, err)
	}
	if opts := c.nameOpts(repo.RegistryStr()); opts != nil {
		return name.NewRepository(strings.TrimSpace(s), opts...)
	}
	return repo, nil
}

// ParseRegistry parses a registry host[:port]; a scheme or trailing path is ignored.
func (c *Client) ParseRegistry(s string) (name.Registry, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s = strings.TrimSuffix(s, "/")
	if s == "docker.io" || s == "registry-1.docker.io" {
		s = name.DefaultRegistry
	}
	reg, err := name.NewRegistry(s)
	if err != nil {
		return name.Registry{}, usageErrorf("invalid registry %q: %v", s, err)
	}
	if opts := c.nameOpts(reg.RegistryStr()); opts != nil {
		return name.NewRegistry(s, opts...)
	}
	return reg, nil
}

// ParsePlatform parses os/arch[/variant][:osversion].
func ParsePlatform(s string) (*v1.Platform, error) {
	if s == "" {
		return nil, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return nil, usageErrorf("invalid platform %q: want os/arch[/variant], e.g. linux/arm64", s)
	}
	return p, nil
}

// DefaultPlatform is the platform pulled from a multi-platform image when neither
// --platform nor --all-platforms is given: Linux on this machine's architecture.
func DefaultPlatform() *v1.Platform {
	return &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}
