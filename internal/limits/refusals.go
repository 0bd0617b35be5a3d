package limits

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Refusal is one refused request, as reported to the operator.
type Refusal struct {
	// Limit names what refused: rate_read, rate_write, in_flight, body_idle,
	// sessions_client, sessions_repository, sessions_project, session_bytes_project.
	Limit string
	// Client is the budget's key: "p:kind:name" for a principal, "a:addr" for an address.
	Client string
	Remote string
}

type refusal = struct{ limit, client, remote string }

// Refusals counts every refusal by limit and reports at most one per client and limit
// per minute: a flood of refusals must not become a flood of log lines or audit rows.
type Refusals struct {
	total  *prometheus.CounterVec
	report func(Refusal)
	seen   *Buckets
}

// NewRefusals registers berth_limit_refusals_total{limit} on reg; report (may be nil)
// receives the throttled reports.
func NewRefusals(reg prometheus.Registerer, report func(Refusal)) *Refusals {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_limit_refusals_total",
		Help: "Requests refused by a limit (throttle.*), by limit.",
	}, []string{"limit"})
	if reg != nil {
		reg.MustRegister(c)
	}
	return &Refusals{total: c, report: report, seen: NewBuckets(Rate{PerSecond: 1.0 / 60, Burst: 1}, 10_000, nil)}
}

// Refused records a refusal.
func (f *Refusals) Refused(r refusal) {
	if f == nil {
		return
	}
	f.total.WithLabelValues(r.limit).Inc()
	if f.report == nil {
		return
	}
	if ok, _ := f.seen.Take(r.limit + " " + r.client); ok {
		f.report(Refusal{Limit: r.limit, Client: r.client, Remote: r.remote})
	}
}

// LogRefusals reports refusals as warnings.
func LogRefusals(log *slog.Logger) func(Refusal) {
	return func(r Refusal) {
		log.Warn("request refused by a limit (reported once per client and limit per minute)",
			"limit", r.Limit, "client", r.Client, "remote", r.Remote, "window", time.Minute.String())
	}
}
