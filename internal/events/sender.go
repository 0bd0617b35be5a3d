package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"
)

// sender posts signed deliveries. Two clients: an open one for system-wide webhooks
// (system administrators may target anything, internal receivers included) and one whose
// dialer refuses private addresses for project webhooks, checked on the address actually
// dialled, so a name that resolves (or re-resolves) to one is refused as well.
type sender struct {
	open, guarded *http.Client
	timeout       time.Duration
}

// maxResponse bounds what is read of a receiver's answer (the rest is discarded with
// the connection).
const maxResponse = 64 << 10

func newSender(timeout time.Duration, allowPrivate bool) *sender {
	mk := func(guard bool) *http.Client {
		d := &net.Dialer{Timeout: timeout}
		if guard {
			d.Control = func(_, address string, _ syscall.RawConn) error {
				host, _, err := net.SplitHostPort(address)
				if err != nil {
					return err
				}
				if ip, err := netip.ParseAddr(host); err != nil || privateAddr(ip) {
					return fmt.Errorf("%w: %s", errPrivateTarget, host)
				}
				return nil
			}
		}
		tr := &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}
		if guard {
			tr.Proxy = nil // the guard must see the receiver's address, not a proxy's
		}
		return &http.Client{Transport: tr, Timeout: timeout,
			// A redirect is an answer, not a new target: following it would let a
			// receiver point Berth anywhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	s := &sender{open: mk(false), guarded: mk(!allowPrivate), timeout: timeout}
	return s
}

var errPrivateTarget = errors.New("project webhooks may not reach loopback, private or link-local addresses")

// privateAddr reports addresses project webhooks may not reach.
func privateAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() ||
		cgnat.Contains(ip) || !ip.IsValid()
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// literalPrivate reports a host that is an IP literal (or localhost) in a private range.
func literalPrivate(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && privateAddr(ip)
}

// userAgent names Berth to receivers.
const userAgent = "Berth-Webhooks/1"

// send posts body to sub's URL, signed, and returns the attempt.
func (s *sender) send(ctx context.Context, sub Subscription, secret, id string, body []byte, now func() time.Time) (a Attempt) {
	start := now()
	a.At = start
	defer func() { a.Duration = now().Sub(start).Milliseconds() }()
	sig, err := Sign(secret, id, start, body)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		a.Error = err.Error()
		return a
	}
	ct := "application/json"
	if sub.Format == FormatCloudEvents {
		ct = "application/cloudevents+json; charset=utf-8"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(start.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	client := s.open
	if sub.Project != "" {
		client = s.guarded
	}
	res, err := client.Do(req)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	defer res.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	a.Status = res.StatusCode
	if res.StatusCode < 200 || res.StatusCode > 299 {
		a.Error = fmt.Sprintf("HTTP %d", res.StatusCode)
		if snippet := printable(head, 200); snippet != "" {
			a.Error += ": " + snippet
		}
	}
	return a
}

// printable is the start of a response body as text, for the delivery history.
func printable(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	for len(b) > 0 && !utf8.Valid(b) {
		b = b[:len(b)-1]
	}
	out := make([]rune, 0, len(b))
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f {
			r = ' '
		}
		out = append(out, r)
	}
	return string(bytes.TrimSpace([]byte(string(out))))
}
