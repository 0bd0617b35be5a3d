package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Upstreams redirect blob GETs to CDNs and object storage. A redirect is the upstream
// (or whoever controls its responses) choosing where Berth connects next, so a hop to
// another host must not reach loopback, link-local (cloud metadata at 169.254.169.254),
// private or other internal addresses unless the upstream's allowPrivateRedirects says
// so. The check runs on the address actually dialled, so DNS rebinding cannot slip past
// it. The upstream's own host, and its token realm, are configured by the operator and
// are not restricted.

const maxRedirects = 10

// guardKey marks a request context whose connections must go to public addresses.
type guardKey struct{}

// errPrivateRedirect reports a redirect to an address the guard refuses.
var errPrivateRedirect = errors.New("redirect to a loopback, link-local or private address refused (set allowPrivateRedirects on the upstream to permit it)")

// sharedSpace is RFC 6598 carrier-grade NAT space, internal like RFC 1918.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// internalAddr reports whether ip is an address a redirect must not lead to.
func internalAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsPrivate() || ip.IsUnspecified() ||
		sharedSpace.Contains(ip)
}

// guardedDial returns a DialContext that refuses internal addresses for contexts marked
// with guardKey and dials anything otherwise.
func guardedDial(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	plain := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	guarded := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second,
		ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || internalAddr(ap.Addr()) {
				return fmt.Errorf("dial %s: %w", address, errPrivateRedirect)
			}
			return nil
		}}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if ctx.Value(guardKey{}) != nil {
			return guarded.DialContext(ctx, network, addr)
		}
		return plain.DialContext(ctx, network, addr)
	}
}

// send sends req through rt and follows redirects itself: hops on the upstream's own
// host keep going through rt (its token), hops elsewhere go through the bare transport
// without credentials and, unless allowed, only to public addresses. Through an HTTP
// proxy from the environment the proxy is what Berth dials, and it enforces egress.
func (u *Upstream) send(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	noFollow := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := (&http.Client{Transport: rt, CheckRedirect: noFollow}).Do(req)
	for hops := 0; err == nil && isRedirect(resp.StatusCode); hops++ {
		loc, lerr := resp.Location()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if lerr != nil {
			return nil, fmt.Errorf("redirect without a usable Location: %w", lerr)
		}
		if hops == maxRedirects {
			return nil, fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if loc.Scheme != "http" && loc.Scheme != "https" {
			return nil, fmt.Errorf("redirect to unsupported scheme %q", loc.Scheme)
		}
		ctx := req.Context()
		next := rt
		if !strings.EqualFold(loc.Hostname(), hostOnly(u.registry.RegistryStr())) {
			next = u.base
			if !u.cfg.AllowPrivateRedirects && !u.viaProxy(loc.String()) {
				ctx = context.WithValue(ctx, guardKey{}, true)
			}
		}
		hop, herr := http.NewRequestWithContext(ctx, req.Method, loc.String(), nil)
		if herr != nil {
			return nil, herr
		}
		for _, k := range []string{"Accept", "Range", "User-Agent"} {
			if v := req.Header.Values(k); len(v) > 0 {
				hop.Header[k] = v
			}
		}
		resp, err = (&http.Client{Transport: next, CheckRedirect: noFollow}).Do(hop)
	}
	return resp, err
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// hostOnly strips a port from host[:port].
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// viaProxy reports whether a request to target would go through an HTTP proxy.
func (u *Upstream) viaProxy(target string) bool {
	t, ok := u.base.(*http.Transport)
	if !ok || t.Proxy == nil {
		return false
	}
	r, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return false
	}
	p, err := t.Proxy(r)
	return err == nil && p != nil
}

// GuardedDial is the dialer of upstream transports, for other mirrors (package hf):
// under a context marked by PublicOnly it refuses internal addresses.
func GuardedDial(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return guardedDial(timeout)
}

// PublicOnly marks ctx so that connections dialled by GuardedDial under it go to public
// addresses only (a redirect to another host).
func PublicOnly(ctx context.Context) context.Context { return context.WithValue(ctx, guardKey{}, true) }

// IsPrivateRedirect reports an error from a connection PublicOnly refused.
func IsPrivateRedirect(err error) bool { return errors.Is(err, errPrivateRedirect) }
