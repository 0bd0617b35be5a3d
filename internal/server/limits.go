package server

import (
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/limits"
	"github.com/berth-registry/berth/internal/meta"
)

// newLimits builds the request limiter and the upload session guard from throttle.*.
// Refusals are counted, logged and (with auth on) audited at most once per client and
// limit per minute; svc is read when a refusal is reported, as auth is built later.
func newLimits(t config.Throttle, authOn bool, m *meta.Store, reg prometheus.Registerer, log *slog.Logger, svc **auth.Service) (*limits.Limiter, *limits.Sessions) {
	logRefusal := limits.LogRefusals(log)
	refusals := limits.NewRefusals(reg, func(r limits.Refusal) {
		logRefusal(r)
		if *svc != nil {
			(*svc).Record(refusalAudit(r))
		}
	})
	// Validated with the configuration.
	trusted, _ := config.ParsePrefixes(t.TrustedNetworks)
	proxies, _ := config.ParsePrefixes(t.TrustedProxies)
	l := limits.New(limits.Options{
		Read:             limits.Rate{PerSecond: float64(t.Read.Rate), Burst: float64(t.Read.Burst)},
		Write:            limits.Rate{PerSecond: float64(t.Write.Rate), Burst: float64(t.Write.Burst)},
		MaxClients:       t.MaxClients,
		MaxInFlight:      t.MaxInFlight,
		BodyIdle:         time.Duration(t.BodyIdleTimeout),
		Trusted:          trusted,
		Proxies:          proxies,
		API:              "/v2/",
		DeferCredentials: authOn,
		Refusals:         refusals,
	})
	u := t.Uploads
	s := limits.NewSessions(limits.SessionLimits{
		PerClient: u.PerClient, PerRepository: u.PerRepository, PerProject: u.PerProject,
		BytesPerProject: int64(u.BytesPerProject), RetryAfter: time.Duration(u.RetryAfter),
	}, limits.NewSessionStore(m.DB()), refusals)
	return l, s
}

// refusalAudit is the audit entry of a refusal: the principal when the budget was one,
// the anonymous caller otherwise.
func refusalAudit(r limits.Refusal) meta.AuditEntry {
	e := meta.AuditEntry{Actor: "anonymous", ActorType: "anonymous", Action: "limit", Resource: r.Limit,
		Result: "denied", Remote: r.Remote, Detail: "refused by throttle (reported once per minute)"}
	if p, ok := strings.CutPrefix(r.Client, "p:"); ok {
		e.ActorType, e.Actor, _ = strings.Cut(p, ":")
	}
	return e
}
