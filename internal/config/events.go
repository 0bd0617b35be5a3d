package config

import (
	"fmt"
	"time"
)

// Events configures the event log and its webhooks (package events). Every push, tag
// delete and manifest delete is recorded in the change's own transaction; webhook
// subscriptions (admin API, berth admin webhook) receive the events they filter for.
type Events struct {
	// Enabled records events. Off, nothing is recorded and no webhook is sent.
	Enabled bool `yaml:"enabled"`
	// Keep is how long events and finished deliveries stay in the history.
	Keep     Duration `yaml:"keep"`
	Webhooks Webhooks `yaml:"webhooks"`
	Preheat  Preheat  `yaml:"preheat"`
	// PullSample is the share of manifest pulls (GETs served) recorded as
	// artifact.pulled events, from 0 (none, the default) to 1 (every pull). Pull events
	// are written off the request path and dropped, counted, when they back up.
	PullSample float64 `yaml:"pullSample"`
}

// Preheat makes this Berth an edge that warms its mirror cache when the registry above it
// says so: that registry's webhook (a system-wide or project subscription filtered to the
// repositories and tags to preheat, CloudEvents format) posts artifact.pushed events to
// POST /preheat here, signed with the subscription's secret; each pushed tag is warmed
// from Upstream (with the existing warm-up code, the Platforms asked for) as a
// background job, so the edge holds it before any node asks and keeps serving it when
// cut off.
type Preheat struct {
	Enabled bool `yaml:"enabled"`
	// SecretFile holds the subscription's signing secret (whsec_…).
	SecretFile string `yaml:"secretFile"`
	// Upstream is the mirror upstream (its name) the announcing registry is reached as.
	Upstream string `yaml:"upstream"`
	// Platforms to warm ("linux/amd64"); empty: every platform.
	Platforms []string `yaml:"platforms"`
	// Tags are globs of the announced tags to warm (empty: every tag).
	Tags []string `yaml:"tags"`
}

// Webhooks configures delivery.
type Webhooks struct {
	// Timeout bounds one delivery request (connect, TLS, answer).
	Timeout Duration `yaml:"timeout"`
	// RetryFor is how long a failing delivery is retried (exponential backoff from
	// Backoff to MaxBackoff) before it is marked failed and later events of its
	// repository go on.
	RetryFor   Duration `yaml:"retryFor"`
	Backoff    Duration `yaml:"backoff"`
	MaxBackoff Duration `yaml:"maxBackoff"`
	// Workers is how many (subscription, repository) lanes this process sends at once.
	Workers int `yaml:"workers"`
	// SecretKeyFile holds the key that encrypts subscription secrets in the database
	// (base64 of 32 bytes; created when absent). Every replica needs the same file.
	// Default: <data>/webhook-secrets.key.
	SecretKeyFile string `yaml:"secretKeyFile"`
	// AllowPrivateTargets lets project webhooks (created by project administrators)
	// reach loopback, private and link-local addresses. System-wide webhooks always may.
	AllowPrivateTargets bool `yaml:"allowPrivateTargets"`
	// Source is the CloudEvents source attribute (default "berth"); Host prefixes the
	// resource URLs of Harbor payloads (the registry's public host:port).
	Source string `yaml:"source"`
	Host   string `yaml:"host"`
}

func defaultEvents() Events {
	return Events{Enabled: true, Keep: Duration(7 * 24 * time.Hour), Webhooks: Webhooks{
		Timeout: Duration(10 * time.Second), RetryFor: Duration(24 * time.Hour), Backoff: Duration(2 * time.Second),
		MaxBackoff: Duration(10 * time.Minute), Workers: 4, Source: "berth"}}
}

func (e Events) validate() []error {
	var errs []error
	w := e.Webhooks
	if e.Keep < Duration(time.Hour) {
		errs = append(errs, fmt.Errorf("events.keep must be at least 1h"))
	}
	if e.PullSample < 0 || e.PullSample > 1 || e.PullSample != e.PullSample {
		errs = append(errs, fmt.Errorf("events.pullSample %v: want a share from 0 to 1", e.PullSample))
	}
	if w.Timeout < Duration(100*time.Millisecond) || w.Timeout > Duration(5*time.Minute) {
		errs = append(errs, fmt.Errorf("events.webhooks.timeout must be from 100ms to 5m"))
	}
	if w.Backoff < Duration(10*time.Millisecond) || w.MaxBackoff < w.Backoff {
		errs = append(errs, fmt.Errorf("events.webhooks: backoff must be at least 10ms and maxBackoff at least backoff"))
	}
	if w.RetryFor < 0 || w.RetryFor > e.Keep {
		errs = append(errs, fmt.Errorf("events.webhooks.retryFor must be from 0 to events.keep"))
	}
	if w.Workers < 1 {
		errs = append(errs, fmt.Errorf("events.webhooks.workers must be at least 1"))
	}
	if p := e.Preheat; p.Enabled && (p.SecretFile == "" || p.Upstream == "") {
		errs = append(errs, fmt.Errorf("events.preheat needs secretFile and upstream (a mirror upstream's name)"))
	}
	return errs
}
