package config

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Throttle bounds what one client can take from the registry (package limits): upload
// sessions, request rate, slow bodies and requests in flight. Rates and in-flight counts
// are kept in memory by each replica (N replicas behind a balancer allow up to N times
// the rate); session counts come from the database and hold across replicas. A limit
// of 0 switches that limit off.
type Throttle struct {
	// TrustedNetworks (CIDRs, e.g. 10.0.0.0/8) are exempt from the rate and session
	// limits: build farms and replication peers on the inside.
	TrustedNetworks []string `yaml:"trustedNetworks"`
	// TrustedProxies (CIDRs) are load balancers whose X-Forwarded-For is believed: the
	// client is the right-most address not in this list. Empty: X-Forwarded-For is
	// ignored and the client is the connection's peer.
	TrustedProxies []string       `yaml:"trustedProxies"`
	Uploads        UploadThrottle `yaml:"uploads"`
	Read           RateThrottle   `yaml:"read"`
	Write          RateThrottle   `yaml:"write"`
	// MaxClients bounds the rate buckets held in memory; past it the least recently
	// seen client's bucket is dropped (full buckets first, which loses nothing).
	MaxClients int `yaml:"maxClients"`
	// BodyIdleTimeout cuts a blob or manifest upload body that delivers no byte for
	// this long (408). It resets on every byte received, so a slow but steady upload
	// is never cut.
	BodyIdleTimeout Duration `yaml:"bodyIdleTimeout"`
	// MaxInFlight bounds requests served at once by this replica; past it requests are
	// refused with 503 and Retry-After. /healthz, /readyz and /metrics are exempt.
	MaxInFlight int `yaml:"maxInFlight"`
}

// UploadThrottle bounds open upload sessions (POST …/blobs/uploads/ not yet completed
// or cancelled).
type UploadThrottle struct {
	// PerClient: sessions one principal holds (anonymous callers: one client address).
	PerClient int `yaml:"perClient"`
	// PerRepository and PerProject: sessions open in one repository, one project.
	PerRepository int `yaml:"perRepository"`
	PerProject    int `yaml:"perProject"`
	// BytesPerProject: bytes held by a project's open sessions; past it new sessions and
	// further chunks are refused until sessions complete, are cancelled or expire.
	BytesPerProject ByteSize `yaml:"bytesPerProject"`
	// RetryAfter is what the refusal tells clients to wait.
	RetryAfter Duration `yaml:"retryAfter"`
}

// RateThrottle is a token bucket per client: Rate requests per second sustained, Burst
// at once.
type RateThrottle struct {
	Rate  int `yaml:"rate"`
	Burst int `yaml:"burst"`
}

func defaultThrottle() Throttle {
	return Throttle{
		Uploads: UploadThrottle{
			PerClient: 100, PerRepository: 200, PerProject: 1000,
			BytesPerProject: 100 << 30, RetryAfter: Duration(10 * time.Second),
		},
		// Bursts absorb a whole push or a node's parallel pull (the OCI conformance suite
		// sends ~1000 requests in 2 s from one client); the rates bound what is sustained.
		Read:            RateThrottle{Rate: 200, Burst: 1000},
		Write:           RateThrottle{Rate: 100, Burst: 1000},
		MaxClients:      100_000,
		BodyIdleTimeout: Duration(30 * time.Second),
		MaxInFlight:     2000,
	}
}

func (t Throttle) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, list := range []struct {
		key   string
		cidrs []string
	}{{"throttle.trustedNetworks", t.TrustedNetworks}, {"throttle.trustedProxies", t.TrustedProxies}} {
		if _, err := ParsePrefixes(list.cidrs); err != nil {
			bad("%s: %v", list.key, err)
		}
	}
	u := t.Uploads
	if u.PerClient < 0 || u.PerRepository < 0 || u.PerProject < 0 || u.BytesPerProject < 0 {
		bad("throttle.uploads: limits must be ≥ 0 (0: off)")
	}
	if u.RetryAfter < Duration(time.Second) {
		bad("throttle.uploads.retryAfter must be at least 1s")
	}
	for _, r := range []struct {
		key string
		r   RateThrottle
	}{{"throttle.read", t.Read}, {"throttle.write", t.Write}} {
		if r.r.Rate < 0 || r.r.Burst < 0 || (r.r.Rate > 0 && r.r.Burst < 1) {
			bad("%s: rate must be ≥ 0 (0: off) and burst ≥ 1 when it is on", r.key)
		}
	}
	if t.MaxClients < 1000 {
		// Fewer buckets than active clients would hand evicted clients a fresh burst.
		bad("throttle.maxClients must be at least 1000")
	}
	if t.BodyIdleTimeout != 0 && t.BodyIdleTimeout < Duration(time.Second) {
		bad("throttle.bodyIdleTimeout must be 0 (off) or at least 1s")
	}
	if t.MaxInFlight < 0 {
		bad("throttle.maxInFlight must be ≥ 0 (0: off)")
	}
	return errs
}

// ParsePrefixes reads CIDRs; a bare address is its own /32 or /128.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("%q is not a CIDR or an address", c))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}
