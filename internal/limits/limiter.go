package limits

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/internal/errcode"
)

// Options configure a Limiter; a zero Rate, MaxInFlight or BodyIdle switches that
// limit off.
type Options struct {
	Read, Write Rate
	// MaxClients bounds the buckets of each budget.
	MaxClients  int
	MaxInFlight int
	BodyIdle    time.Duration
	// Trusted networks are exempt from rates and session limits.
	Trusted []netip.Prefix
	// Proxies are peers whose X-Forwarded-For names the client.
	Proxies []netip.Prefix
	// API is the path prefix of the registry API: its upload bodies get the idle
	// deadline (other endpoints bound their small bodies whole), and with
	// DeferCredentials its requests carrying credentials are charged by the handler once
	// it knows the principal (Charge), not by the client address.
	API              string
	DeferCredentials bool
	// Refusals counts and reports refusals; nil counts none.
	Refusals *Refusals
}

// Limiter applies the request limits as HTTP middleware.
type Limiter struct {
	o           Options
	read, write *Buckets
	inFlight    atomic.Int64
}

// New returns a limiter.
func New(o Options) *Limiter {
	l := &Limiter{o: o}
	if o.Read.PerSecond > 0 {
		l.read = NewBuckets(o.Read, o.MaxClients, nil)
	}
	if o.Write.PerSecond > 0 {
		l.write = NewBuckets(o.Write, o.MaxClients, nil)
	}
	return l
}

type stateKey struct{}

// state is what the middleware learned about a request, for Charge and Client.
type state struct {
	l        *Limiter
	addr     string
	exempt   bool
	deferred bool
	body     *idleBody
}

func stateOf(r *http.Request) *state {
	s, _ := r.Context().Value(stateKey{}).(*state)
	return s
}

// exemptPaths are probes and scrapes: an overloaded replica must still say so.
var exemptPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Middleware bounds requests in flight, charges each request to its client's rate
// budget (or leaves that to Charge) and puts an idle deadline on upload bodies.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if exemptPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		addr := l.clientAddr(r)
		if max := l.o.MaxInFlight; max > 0 {
			if l.inFlight.Add(1) > int64(max) {
				l.inFlight.Add(-1)
				l.refuse(w, r, addr, "in_flight", time.Second, errcode.Unavailable.New(
					"too many requests in flight on this replica (limit "+strconv.Itoa(max)+", throttle.maxInFlight); retry shortly"))
				return
			}
			defer l.inFlight.Add(-1)
		}
		st := &state{l: l, addr: addr, exempt: l.trusted(addr)}
		api := l.o.API != "" && strings.HasPrefix(r.URL.Path, l.o.API)
		st.deferred = api && l.o.DeferCredentials && r.Header.Get("Authorization") != ""
		if !st.deferred && !st.exempt {
			if err := l.take(w, r, st, "a:"+addr); err != nil {
				return
			}
		}
		if api && l.o.BodyIdle > 0 && r.Body != nil && r.Body != http.NoBody && (r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodPost) {
			st.body = newIdleBody(r.Body, http.NewResponseController(w), l.o.BodyIdle)
			r.Body = st.body
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
	})
}

// Charge spends a token of the principal's budget for a request the middleware left
// to the handler (it carried credentials); principal "" is the client address. A
// refusal is written nowhere: the caller answers with the returned error, whose
// Retry-After header is set on w already.
func Charge(w http.ResponseWriter, r *http.Request, principal string) error {
	st := stateOf(r)
	if st == nil || st.exempt || !st.deferred {
		return nil
	}
	st.deferred = false
	key := "a:" + st.addr
	if principal != "" {
		key = "p:" + principal
	}
	return st.l.check(w, r, st, key)
}

// take charges key in the middleware, answering a refusal itself.
func (l *Limiter) take(w http.ResponseWriter, r *http.Request, st *state, key string) error {
	err := l.check(w, r, st, key)
	if err != nil {
		errcode.Write(w, r, err)
	}
	return err
}

func (l *Limiter) check(w http.ResponseWriter, r *http.Request, st *state, key string) error {
	b, budget := l.read, "read"
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
		b, budget = l.write, "write"
	}
	if b == nil {
		return nil
	}
	ok, wait := b.Take(key)
	if ok {
		return nil
	}
	secs := retrySeconds(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	l.o.Refusals.Refused(refusal{limit: "rate_" + budget, client: key, remote: st.addr})
	return errcode.TooManyRequests.New("rate limit: over the " + budget + " budget of this client (throttle." + budget +
		"); retry in " + strconv.Itoa(secs) + "s")
}

// refuse answers a refusal the middleware makes before anything else ran.
func (l *Limiter) refuse(w http.ResponseWriter, r *http.Request, addr, limit string, wait time.Duration, err error) {
	w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(wait)))
	l.o.Refusals.Refused(refusal{limit: limit, client: "a:" + addr, remote: addr})
	errcode.Write(w, r, err)
}

func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Client is the request's client address as the middleware resolved it (trusted
// proxies considered); without the middleware, the connection's peer.
func Client(r *http.Request) string {
	if st := stateOf(r); st != nil {
		return st.addr
	}
	return peer(r)
}

// Exempt reports whether the request comes from a trusted network.
func Exempt(r *http.Request) bool {
	st := stateOf(r)
	return st != nil && st.exempt
}

func peer(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientAddr is the peer, or, when the peer is a trusted proxy, the right-most
// X-Forwarded-For entry that is not one: entries left of it are the client's own word.
func (l *Limiter) clientAddr(r *http.Request) string {
	p := peer(r)
	if len(l.o.Proxies) == 0 || !inPrefixes(p, l.o.Proxies) {
		return p
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if _, err := netip.ParseAddr(h); err != nil {
			return p // garbage from here on: the proxy is the last address known
		}
		if !inPrefixes(h, l.o.Proxies) {
			return h
		}
		p = h
	}
	return p
}

func (l *Limiter) trusted(addr string) bool { return inPrefixes(addr, l.o.Trusted) }

func inPrefixes(addr string, ps []netip.Prefix) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
