package hf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/proxy"
)

// upstream is Berth's client of the Hub. Berth's own token (hf.token) goes to the Hub's
// host only; a redirect to another host (the LFS/Xet CDN, whose URLs are signed) is
// followed without it and, unless allowPrivateRedirects, only to public addresses.
// Clients' Authorization headers are never forwarded.
type upstream struct {
	base  *url.URL
	token string
	rt    *http.Transport
	cfg   config.HF
}

const maxRedirects = 10

func newUpstream(cfg config.HF) (*upstream, error) {
	base, err := url.Parse(strings.TrimRight(cfg.Upstream, "/"))
	if err != nil {
		return nil, fmt.Errorf("hf.upstream: %w", err)
	}
	token, err := readToken(cfg)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := proxy.TLSConfig(cfg.CA, cfg.Insecure)
	if err != nil {
		return nil, fmt.Errorf("hf: %w", err)
	}
	timeout := time.Duration(cfg.Timeout)
	rt := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           proxy.GuardedDial(timeout),
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
		// Sizes and hashes are of the stored bytes: never let Go decompress.
		DisableCompression: true,
	}
	return &upstream{base: base, token: token, rt: rt, cfg: cfg}, nil
}

func readToken(cfg config.HF) (string, error) {
	switch {
	case cfg.TokenFile != "":
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return "", fmt.Errorf("hf.tokenFile: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case cfg.TokenEnv != "":
		v, ok := os.LookupEnv(cfg.TokenEnv)
		if !ok {
			return "", fmt.Errorf("hf.tokenEnv: environment variable %s is not set", cfg.TokenEnv)
		}
		return strings.TrimSpace(v), nil
	}
	return cfg.Token, nil
}

// follow says which redirects do follows.
type follow int

const (
	// followRelative follows redirects on the Hub's own host only (a renamed
	// repository), as huggingface_hub does for its metadata HEAD: the answer to a file
	// HEAD is the redirect itself, whose headers carry the linked size and ETag.
	followRelative follow = iota
	// followAll follows every redirect (downloading bytes from the CDN).
	followAll
)

// upstreamError is a failed exchange with the Hub.
type upstreamError struct {
	status  int // 0: no answer (network, timeout)
	code    string
	message string
	commit  string // X-Repo-Commit of a 404 for a file (the revision exists)
	err     error
}

func (e *upstreamError) Error() string {
	if e.status == 0 {
		return "Hugging Face Hub unreachable: " + e.err.Error()
	}
	msg := "Hugging Face Hub answered " + strconv.Itoa(e.status)
	if e.code != "" {
		msg += " " + e.code
	}
	if e.message != "" {
		msg += ": " + e.message
	}
	return msg
}

func (e *upstreamError) Unwrap() error { return e.err }

// transient reports failures a cached answer stands in for: no answer, 429, 5xx.
func transient(err error) bool {
	var ue *upstreamError
	if !errors.As(err, &ue) {
		return false
	}
	return ue.status == 0 || ue.status == http.StatusTooManyRequests || ue.status >= 500
}

// do sends method for the escaped path (with query) to the Hub. Statuses ≥ 400 are
// returned as *upstreamError, their body drained; a 3xx the policy does not follow is
// returned as the response.
func (u *upstream) do(ctx context.Context, method, escapedPath string, header http.Header, policy follow) (*http.Response, error) {
	target, err := url.Parse(u.base.String() + escapedPath)
	if err != nil {
		return nil, &upstreamError{err: err}
	}
	client := &http.Client{Transport: u.rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for hops := 0; ; hops++ {
		hopCtx := ctx
		same := strings.EqualFold(target.Host, u.base.Host)
		if !same && !u.cfg.AllowPrivateRedirects {
			hopCtx = proxy.PublicOnly(ctx)
		}
		req, err := http.NewRequestWithContext(hopCtx, method, target.String(), nil)
		if err != nil {
			return nil, &upstreamError{err: err}
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Accept-Encoding", "identity")
		req.Header.Set("User-Agent", "berth-hf-mirror")
		if same && u.token != "" {
			req.Header.Set("Authorization", "Bearer "+u.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			if proxy.IsPrivateRedirect(err) {
				return nil, &upstreamError{err: errors.New("the Hub redirected to a loopback, link-local or private address (set hf.allowPrivateRedirects to permit it)")}
			}
			return nil, &upstreamError{err: scrub(err)}
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
			loc, lerr := target.Parse(resp.Header.Get("Location"))
			relative := lerr == nil && strings.EqualFold(loc.Host, u.base.Host)
			if policy == followRelative && !relative {
				return resp, nil
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if lerr != nil || (loc.Scheme != "http" && loc.Scheme != "https") {
				return nil, &upstreamError{err: fmt.Errorf("redirect to an unusable location")}
			}
			if hops == maxRedirects {
				return nil, &upstreamError{err: fmt.Errorf("stopped after %d redirects", maxRedirects)}
			}
			target = loc
			continue
		}
		if resp.StatusCode >= 400 {
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			return nil, &upstreamError{status: resp.StatusCode, code: clip(resp.Header.Get("X-Error-Code")),
				message: clip(resp.Header.Get("X-Error-Message")), commit: commitHeader(resp.Header)}
		}
		return resp, nil
	}
}

// scrub drops the URL from a transport error: a CDN URL carries a signature.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// clip bounds a header echoed from the Hub.
func clip(s string) string {
	if len(s) > 300 {
		s = s[:300]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func commitHeader(h http.Header) string {
	if c := h.Get("X-Repo-Commit"); isCommit(c) {
		return c
	}
	return ""
}
