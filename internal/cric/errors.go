package cric

// Errors: every failure leaves cric classified (unauthorized, denied, not found, network,
// invalid content, usage) with the registry's own words and, where it helps, what to do.
// The kind decides the exit code so scripts can tell them apart.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Kind is the class of a failure.
type Kind int

// The kinds of failure, each with its own exit code (see ExitCode).
const (
	KindOther        Kind = iota // exit 1
	KindUsage                    // exit 2: bad arguments or flags
	KindUnauthorized             // exit 3: missing or wrong credentials (401)
	KindDenied                   // exit 3: authenticated but not allowed (403)
	KindNotFound                 // exit 4: repository, manifest, tag or blob unknown (404)
	KindNetwork                  // exit 5: registry unreachable, TLS or protocol mismatch
	KindInvalid                  // exit 6: content did not match its digest or size
)

func (k Kind) String() string {
	switch k {
	case KindUsage:
		return "usage"
	case KindUnauthorized:
		return "unauthorized"
	case KindDenied:
		return "denied"
	case KindNotFound:
		return "not found"
	case KindNetwork:
		return "network error"
	case KindInvalid:
		return "invalid content"
	}
	return "error"
}

// ErrNoPlatform is a multi-platform image without the platform asked for.
var ErrNoPlatform = errors.New("no manifest for the platform")

// Error is a classified failure.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &Error{Kind: KindUsage, Msg: fmt.Sprintf(format, args...)}
}

func invalidErrorf(format string, args ...any) error {
	return &Error{Kind: KindInvalid, Msg: "invalid content: " + fmt.Sprintf(format, args...)}
}

func notFoundErrorf(format string, args ...any) error {
	return &Error{Kind: KindNotFound, Msg: "not found: " + fmt.Sprintf(format, args...)}
}

// ExitCode maps an error to cric's exit code: 0 ok, 1 other, 2 usage, 3 unauthorized or
// denied, 4 not found, 5 network, 6 invalid content.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	switch Classify(err).Kind {
	case KindUsage:
		return 2
	case KindUnauthorized, KindDenied:
		return 3
	case KindNotFound:
		return 4
	case KindNetwork:
		return 5
	case KindInvalid:
		return 6
	}
	return 1
}

// Classify turns any error into a classified one whose message says what kind of
// failure it was, where, and what the registry said.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		if ce.Msg == "" {
			return Classify(ce.Err)
		}
		return ce
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Kind: KindOther, Msg: "interrupted", Err: err}
	}
	if ce := classifyTLS(err); ce != nil {
		return ce // before HTTP: a ping over https and http fails both ways
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return classifyHTTP(te, err)
	}
	if strings.Contains(err.Error(), "verifying sha256 checksum") || strings.Contains(err.Error(), "does not match") {
		return &Error{Kind: KindInvalid, Msg: "invalid content: " + err.Error(), Err: err}
	}
	if ne := classifyNetwork(err); ne != nil {
		return ne
	}
	return &Error{Kind: KindOther, Msg: err.Error(), Err: err}
}

func classifyHTTP(te *transport.Error, err error) *Error {
	kind := KindOther
	switch te.StatusCode {
	case http.StatusUnauthorized:
		kind = KindUnauthorized
	case http.StatusForbidden:
		kind = KindDenied
	case http.StatusNotFound:
		kind = KindNotFound
	}
	var said []string
	for _, d := range te.Errors {
		switch d.Code {
		case transport.UnauthorizedErrorCode:
			kind = KindUnauthorized
		case transport.DeniedErrorCode:
			kind = KindDenied
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			kind = KindNotFound
		}
		s := string(d.Code)
		if d.Message != "" {
			s += ": " + d.Message
		}
		said = append(said, s)
	}
	host, what := "the registry", ""
	if te.Request != nil && te.Request.URL != nil {
		host = te.Request.URL.Host
		what = fmt.Sprintf(" to %s %s", te.Request.Method, te.Request.URL.Path)
	}
	msg := fmt.Sprintf("%s: %s answered %d %s%s", kind, host, te.StatusCode, http.StatusText(te.StatusCode), what)
	if len(said) > 0 {
		msg += fmt.Sprintf(" (registry said: %s)", strings.Join(said, "; "))
	}
	switch kind {
	case KindUnauthorized:
		msg += fmt.Sprintf("; check the credentials (cric login %s)", host)
	case KindDenied:
		msg += "; these credentials may not do this"
	case KindOther:
		if te.StatusCode == http.StatusTooManyRequests {
			msg = "rate limited: " + msg + "; retry later or raise --retries"
		}
	}
	return &Error{Kind: kind, Msg: msg, Err: err}
}

func classifyNetwork(err error) *Error {
	host := ""
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
	}
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
	)
	errors.As(err, &opErr)
	s := err.Error()
	where := "the registry"
	if host != "" {
		where = host
	}
	switch {
	case strings.Contains(s, "server gave HTTP response to HTTPS client"):
		return &Error{Kind: KindNetwork, Err: err, Msg: fmt.Sprintf(
			"network error: %s speaks plain http, not https (use --plain-http=%s)", where, hostOr(host))}
	case errors.As(err, &dnsErr):
		return &Error{Kind: KindNetwork, Err: err, Msg: fmt.Sprintf("network error: cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)}
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), opErr != nil, ue != nil && ue.Timeout():
		if opErr != nil {
			if where == "the registry" && opErr.Addr != nil {
				where = opErr.Addr.String()
			}
			return &Error{Kind: KindNetwork, Err: err, Msg: fmt.Sprintf("network error: cannot reach %s: %s", where, rootCause(opErr))}
		}
		return &Error{Kind: KindNetwork, Err: err, Msg: fmt.Sprintf("network error: cannot reach %s: %s", where, rootCause(err))}
	}
	return nil
}

// classifyTLS recognises an untrusted certificate anywhere in the error.
func classifyTLS(err error) *Error {
	var (
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invalid x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
	)
	if !errors.As(err, &unknown) && !errors.As(err, &hostErr) && !errors.As(err, &invalid) && !errors.As(err, &verify) {
		return nil
	}
	host := "HOST"
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
	}
	cause := err.Error()
	switch {
	case verify != nil:
		cause = verify.Err.Error()
	case unknown.Cert != nil:
		cause = unknown.Error()
	case hostErr.Certificate != nil:
		cause = hostErr.Error()
	case invalid.Cert != nil:
		cause = invalid.Error()
	}
	return &Error{Kind: KindNetwork, Err: err, Msg: fmt.Sprintf(
		"network error: the TLS certificate of %s is not trusted: %s (use --insecure=%s to skip verification)", host, cause, host)}
}

func hostOr(h string) string {
	if h == "" {
		return "HOST"
	}
	return h
}

// rootCause is the innermost error's message: "connection refused" rather than a
// three-level chain of Get/dial/connect prefixes. Joined errors (a ping over https and
// http) give their distinct causes.
func rootCause(err error) string {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		var causes []string
		for _, e := range m.Unwrap() {
			if c := rootCause(e); !slices.Contains(causes, c) {
				causes = append(causes, c)
			}
		}
		return strings.Join(causes, "; ")
	}
	if u := errors.Unwrap(err); u != nil {
		return rootCause(u)
	}
	return err.Error()
}

// Usagef is a usage error (exit code 2), for the command line layer.
func Usagef(format string, args ...any) error { return usageErrorf(format, args...) }
