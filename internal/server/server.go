// Package server assembles a running Berth from its configuration: metadata store, blob
// store, registry, HTTP API, health and metrics endpoints, background maintenance and
// graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-registry/berth/internal/adminapi"
	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/certs"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/distribution"
	"github.com/berth-registry/berth/internal/events"
	"github.com/berth-registry/berth/internal/hf"
	"github.com/berth-registry/berth/internal/inventory"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/ldapauth"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/proxy"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/replication"
	"github.com/berth-registry/berth/internal/storagepressure"
	"github.com/berth-registry/berth/internal/trust"
)

// Server is an assembled, not yet listening Berth.
type Server struct {
	mirror   *proxy.Mirror
	trust    *trust.Evaluator
	auth     *auth.Service
	cfg      config.Config
	log      *slog.Logger
	meta     *meta.Store
	Registry *registry.Registry
	handler  http.Handler
	// jobs runs background tasks (GC) on this replica while serving.
	jobs *jobs.Runner
	// certs serves the TLS certificate (nil with TLS off) and reloads it on SIGHUP.
	certs *certs.Manager
	// prom holds every instrument, for metrics.addr.
	prom *prometheus.Registry
	// pulls counts manifest pulls in memory and writes them in batches.
	pulls *inventory.Pulls
	// pullEvents samples pulls into events (nil: events.pullSample 0).
	pullEvents *pullEvents
	// verifyEvents turns refused pulls into verification.failed events (nil: events off).
	verifyEvents *verificationEvents
	// pressure refuses new data while storage is short of room.
	pressure *storagepressure.Monitor
	// hf is the Hugging Face mirror (nil with hf.enabled off).
	hf *hf.Service
	// events records changes and delivers webhooks (nil with events.enabled off).
	events *events.Service
	// replication runs replication rules (nil with replication.enabled off).
	replication *replication.Service
}

// OpenStores opens the metadata and blob stores the configuration names.
func OpenStores(ctx context.Context, cfg config.Config) (*meta.Store, blobstore.Driver, error) {
	m, err := meta.Open(ctx, meta.Options{
		Dialect:           meta.Dialect(cfg.Database.Driver),
		DSN:               cfg.Database.DSN,
		SQLiteSynchronous: cfg.Database.SQLiteSynchronous,
		MaxOpenConns:      cfg.Database.MaxOpenConns,
		CacheBytes:        int64(cfg.Database.CacheSize),
	})
	if err != nil {
		return nil, nil, err
	}
	b, err := openBlobStore(ctx, cfg.Storage)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, b, nil
}

// openBlobStore opens the blob store the configuration selects; the S3 store checks (or
// creates, when allowed) its bucket first, so a wrong endpoint, bucket or credentials
// stop the start with a clear error rather than failing the first push.
func openBlobStore(ctx context.Context, st config.Storage) (blobstore.Driver, error) {
	if st.Driver != "s3" {
		return blobstore.NewFilesystem(st.Filesystem.Root)
	}
	s := st.S3
	b, err := blobstore.NewS3(ctx, blobstore.S3Options{
		Endpoint:       s.Endpoint,
		Region:         s.Region,
		Bucket:         s.Bucket,
		Prefix:         s.Prefix,
		ForcePathStyle: s.ForcePathStyle,
		AccessKey:      s.AccessKey,
		SecretKey:      s.SecretKey,
		CAFile:         s.CA,
		Insecure:       s.Insecure,
		CreateBucket:   s.CreateBucket,
		PartSize:       int64(s.PartSize),
	})
	switch {
	case errors.Is(err, blobstore.ErrBucketMissing):
		return nil, fmt.Errorf("storage.s3: %w (create it, or set storage.s3.createBucket: true)", err)
	case err != nil:
		return nil, fmt.Errorf("storage.s3: %w", err)
	}
	return b, nil
}

// New assembles a server.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	m, b, err := OpenStores(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Tightened() {
		log.Warn("database file was readable by other users and is now 0600; it holds the token-signing key and password hashes: if others could read it, treat the key as exposed (stop Berth, DELETE FROM signing_keys, start again for a new key; issued tokens become invalid)", "file", f)
	}
	var mirror *proxy.Mirror
	quotas := newQuota(cfg, m, &mirror)
	promReg := prometheus.NewRegistry()
	pressure := newPressure(ctx, cfg, m, log)
	registerPressureMetrics(promReg, pressure)
	tagRules := newTagRules(cfg, m, &mirror, promReg, log)
	eventSvc, err := newEvents(cfg, m, &mirror, promReg, log)
	if err != nil {
		m.Close()
		return nil, err
	}
	quotaEvents(quotas, eventSvc, log)
	var authSvc *auth.Service
	limiter, sessions := newLimits(cfg.Throttle, cfg.Auth.Enabled, m, promReg, log, &authSvc)
	reg := registry.New(m, b, registry.Options{
		AllowSparseManifests: cfg.Manifests.AllowSparse,
		MaxBlobSize:          int64(cfg.Limits.BlobSize),
		UploadTTL:            time.Duration(cfg.Uploads.TTL),
		Sessions:             sessions,
		RedirectBlobs:        cfg.Storage.Driver == "s3" && cfg.Storage.S3.Redirect,
		Quota:                quotas,
		Tags:                 tagRules,
		Space:                pressure,
	}, log)
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerQuotaMetrics(promReg, quotas, m, log)
	if len(cfg.Mirror.Upstreams) > 0 {
		mirror, err = proxy.New(cfg.Mirror, reg, m, proxy.SpoolDir(cfg.Data), int64(cfg.Limits.ManifestSize), proxy.NewMetrics(promReg), log)
		if err != nil {
			m.Close()
			return nil, err
		}
	}
	if err := ownRepositories(ctx, cfg, m, mirror, log); err != nil {
		m.Close()
		return nil, err
	}
	runner, err := NewJobs(ctx, cfg, m, b, mirror, promReg, log)
	if err != nil {
		m.Close()
		return nil, err
	}
	tagRules.Register(runner)
	preheat, err := newPreheat(cfg, m, mirror, runner, log)
	if err != nil {
		m.Close()
		return nil, err
	}
	var guard *distribution.Guard
	if cfg.Auth.Enabled {
		if authSvc, err = newAuth(ctx, cfg, m, log); err != nil {
			m.Close()
			return nil, err
		}
		guard = distribution.NewGuard(authSvc, cfg.Auth.Realm)
	}
	replSvc, err := newReplication(cfg, m, eventSvc, authSvc, promReg, log)
	if err != nil {
		m.Close()
		return nil, err
	}
	var verifyEv *verificationEvents
	if eventSvc != nil {
		verifyEv = newVerificationEvents(eventSvc, log)
	}
	ev, err := newTrust(ctx, cfg, m, reg, mirror, authSvc, verifyEv, promReg, log)
	if err != nil {
		m.Close()
		return nil, err
	}
	scanner, err := newScan(ctx, cfg, m, reg, mirror, authSvc, runner, eventSvc, promReg, log)
	if err != nil {
		m.Close()
		return nil, err
	}
	// A nil *scan.Service must stay nil interfaces.
	var scanPolicy distribution.ScanPolicy
	var scanAPI adminapi.Scanner
	if scanner != nil {
		scanPolicy, scanAPI = scanner, scanner
	}
	hfMirror, err := newHF(ctx, cfg, m, reg, guard, promReg, log)
	if err != nil {
		m.Close()
		return nil, err
	}
	pulls := inventory.NewPulls(m.DB(), time.Second, log)
	var pullCounter distribution.PullCounter = pulls
	var pullEv *pullEvents
	if eventSvc != nil && cfg.Events.PullSample > 0 {
		pullEv = newPullEvents(pulls, cfg.Events.PullSample, eventSvc, promReg, log)
		pullCounter = pullEv
	}
	api := distribution.New(reg, distribution.Options{MaxManifestSize: int64(cfg.Limits.ManifestSize), Mirror: mirror, Guard: guard, Trust: ev, Scan: scanPolicy, Pulls: pullCounter, ReadOnly: hfReadOnly(cfg)}, log)

	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(promReg, promhttp.HandlerOpts{})
	if authSvc != nil {
		mux.Handle("/token", distribution.BodyDeadline(tokenBodyTimeout, distribution.TokenHandler(authSvc)))
		admin := adminapi.New(authSvc, m, log).WithTrust(ev).WithQuotas(quotas).WithWarm(warmFunc(mirror, hfMirror)).WithRepositories(reg, inventory.NewStore(m.DB())).WithTagRules(tagRules).WithScanner(scanAPI).WithWebhooks(webhooksAPI(eventSvc)).WithReplication(replicationAPI(replSvc))
		mux.Handle(adminapi.Prefix+"/", distribution.BodyDeadline(adminBodyTimeout, admin))
		web, sessions, err := newUI(ctx, cfg, m, authSvc, admin, reg, ev, mirror, runner, log)
		if err != nil {
			m.Close()
			return nil, err
		}
		if sessions == nil { // the UI is off; an OIDC login still makes a session
			sessions = newWebSessions(cfg, m)
		}
		oidcSvc, err := newOIDC(cfg, m, authSvc, sessions, log)
		if err != nil {
			m.Close()
			return nil, err
		}
		if oidcSvc != nil {
			mux.Handle("/auth/oidc/", oidcSvc.Handler())
		}
		if web != nil {
			mux.Handle("/", distribution.BodyDeadline(adminBodyTimeout, web))
		}
		registerAuditMetrics(promReg, authSvc)
		if !cfg.Metrics.Public {
			metrics = guard.Metrics(metrics)
		}
	}
	if authSvc == nil || !cfg.UI.Enabled {
		mux.Handle("/", noUI(cfg))
	}
	mux.Handle("GET /metrics", metrics)
	if preheat != nil { // an edge: the registry above announces what to warm (events.preheat)
		mux.Handle("POST /preheat", preheat)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain")
		if err := reg.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("database unavailable\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n" + readyPressure(pressure) + "fips140: " + config.FIPSStatus() + "\n"))
	})
	v2 := distribution.Observe(api, distribution.NewMetrics(promReg), log, cfg.Log.AccessLog)
	// /v2/ bypasses ServeMux: the mux would "clean" paths with .., // or a trailing slash
	// by redirecting (307 keeps method and body), letting a request written against one
	// repository land in another. The API validates raw paths itself.
	handler := limiter.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/v2" || strings.HasPrefix(p, "/v2/") {
			v2.ServeHTTP(w, r)
			return
		}
		// The Hugging Face mirror validates its raw paths itself too.
		if p := r.URL.Path; hfMirror != nil && strings.HasPrefix(p, hfMirror.Prefix()+"/") {
			hfMirror.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	cm, err := certs.New(ctx, cfg.TLS, m.DB(), log)
	if err != nil {
		m.Close()
		return nil, err
	}
	return &Server{cfg: cfg, log: log, meta: m, Registry: reg, mirror: mirror, trust: ev, auth: authSvc, handler: handler, jobs: runner, certs: cm, pulls: pulls, pullEvents: pullEv, verifyEvents: verifyEv, prom: promReg, pressure: pressure, hf: hfMirror, events: eventSvc, replication: replSvc}, nil
}

// Body deadlines: a token request is a small form, an admin request a JSON object or
// an htpasswd file of at most 1 MiB.
const (
	tokenBodyTimeout = 10 * time.Second
	adminBodyTimeout = 60 * time.Second
)

// registerAuditMetrics exports what became of audit entries; a dropped entry is a hole
// in the trail and must be alertable.
func registerAuditMetrics(reg prometheus.Registerer, svc *auth.Service) {
	for _, c := range []struct {
		name, help string
		value      func(auth.AuditStats) uint64
	}{
		{"berth_audit_entries_written_total", "Audit rows written.", func(s auth.AuditStats) uint64 { return s.Written }},
		{"berth_audit_entries_collapsed_total", "Audit entries folded into the count of an identical earlier one.", func(s auth.AuditStats) uint64 { return s.Collapsed }},
		{"berth_audit_entries_dropped_total", "Audit entries lost (queue full past the back-pressure wait, or refused by the database).", func(s auth.AuditStats) uint64 { return s.Dropped }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.value(svc.AuditStats())) }))
	}
}

// newAuth builds the authentication service and makes sure a first administrator
// exists: from configuration, or an error — never a default password.
func newAuth(ctx context.Context, cfg config.Config, m *meta.Store, log *slog.Logger) (*auth.Service, error) {
	a := cfg.Auth
	tokens, err := auth.NewTokens(ctx, m, auth.TokenOptions{
		Issuer: a.Token.Issuer, Service: a.Token.Service, Lifetime: time.Duration(a.Token.Lifetime),
		RefreshLifetime: time.Duration(a.Token.RefreshLifetime), ClockSkew: time.Duration(a.Token.ClockSkew),
	})
	if err != nil {
		return nil, err
	}
	var public []string
	for _, u := range cfg.Mirror.Upstreams {
		public = append(public, u.Name) // mirrored content is readable by every caller
	}
	var dir auth.Directory
	groupRoles := map[string]map[string]auth.Role{}
	if l := a.LDAP; l.Enabled {
		pw := l.BindPassword
		la, err := ldapauth.New(ldapauth.Config{
			URL: l.URL, StartTLS: l.StartTLS, CA: l.CA, InsecureSkipVerify: l.InsecureSkipVerify,
			BindDN: l.BindDN, BindPassword: pw, UserBaseDN: l.UserBaseDN, UserFilter: l.UserFilter,
			GroupBaseDN: l.GroupBaseDN, GroupFilter: l.GroupFilter, GroupAttribute: l.GroupAttribute,
			Timeout: time.Duration(l.Timeout),
		})
		if err != nil {
			return nil, fmt.Errorf("auth.ldap: %w", err)
		}
		dir = ldapDirectory{la}
		for _, g := range l.GroupRoles {
			if groupRoles[g.Group] == nil {
				groupRoles[g.Group] = map[string]auth.Role{}
			}
			groupRoles[g.Group][g.Project] = auth.Role(g.Role)
		}
	}
	if o := a.OIDC; o.Enabled {
		// One namespace with the directory's groups (README "OIDC login").
		for _, g := range o.GroupRoles {
			if groupRoles[g.Group] == nil {
				groupRoles[g.Group] = map[string]auth.Role{}
			}
			groupRoles[g.Group][g.Project] = auth.Role(g.Role)
		}
	}
	svc := auth.New(m, dir, tokens, auth.Options{
		ProjectCreation: a.ProjectCreation, PublicPrefixes: public, ExplicitProjects: cfg.Mirror.DefaultUpstream != "",
		BasicCacheTTL: time.Duration(a.BasicCacheTTL), MaxFailures: a.FailedLogins.Max, FailureWindow: time.Duration(a.FailedLogins.Window), GroupRoles: groupRoles,
		MaxFailuresPerAccount: a.FailedLogins.MaxPerAccount, MaxFailuresPerAddress: a.FailedLogins.MaxPerAddress,
	}, log)
	if a.Admin.Username != "" {
		pw, err := secretFrom(a.Admin.Password, a.Admin.PasswordFile, a.Admin.PasswordEnv)
		if err != nil {
			return nil, fmt.Errorf("auth.admin: %w", err)
		}
		if _, err := m.UserByName(ctx, a.Admin.Username); errors.Is(err, meta.ErrNotFound) {
			hash, err := auth.HashPassword(pw)
			if err != nil {
				return nil, fmt.Errorf("auth.admin: %w", err)
			}
			if _, err := m.CreateUser(ctx, meta.User{Name: a.Admin.Username, PasswordHash: hash, Admin: true}); err != nil && !errors.Is(err, meta.ErrExists) {
				return nil, err
			}
			log.Info("created the first administrator", "user", a.Admin.Username)
		} else if err != nil {
			return nil, err
		}
	} else if users, err := m.Users(ctx, "", 1); err != nil {
		return nil, err
	} else if len(users) == 0 {
		return nil, errors.New("auth is enabled but no user exists: set auth.admin.username and its password (file or env) to create the first administrator")
	}
	if err := warnBcrypt(ctx, m, log); err != nil { // fips.go
		return nil, err
	}
	return svc, nil
}

func secretFrom(value, file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return v, nil
	}
	return value, nil
}

// Handler is the server's HTTP handler (for tests).
func (s *Server) Handler() http.Handler { return s.handler }

// Close flushes the audit trail and releases the stores.
func (s *Server) Close() error {
	if s.pullEvents != nil {
		s.pullEvents.Close()
	}
	if s.verifyEvents != nil {
		s.verifyEvents.Close()
	}
	s.pulls.Close()
	if s.auth != nil {
		s.auth.Close()
	}
	return s.meta.Close()
}

// Listen opens the server's listening socket. berth serve calls it before New, so a
// busy port stops the start before anything is created on disk.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return ln, nil
}

// Run listens on the configured address and serves (see Serve).
func (s *Server) Run(ctx context.Context) error {
	ln, err := Listen(s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled, then stops accepting connections and lets
// in-flight requests (uploads included) finish within the shutdown timeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Addr:              s.cfg.Addr,
		Handler:           s.handler,
		ReadHeaderTimeout: time.Duration(s.cfg.HTTP.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(s.cfg.HTTP.IdleTimeout),
		MaxHeaderBytes:    int(s.cfg.Limits.HeaderBytes),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	tlsOn := s.certs != nil
	if tlsOn {
		srv.TLSConfig = s.certs.TLSConfig()
		go s.certs.Run(ctx)
		go s.reloadOnHangup(ctx)
		if h := s.certs.HTTPHandler(); h != nil {
			go s.serveACMEChallenges(ctx, h)
		}
	}
	s.announce(ln.Addr(), tlsOn)

	go s.maintain(ctx)
	go s.pressure.Run(ctx)
	go s.trust.Run(ctx, time.Second) // policy edits and signatures pushed to other replicas
	jobsDone := make(chan struct{})
	go func() { defer close(jobsDone); s.jobs.Run(ctx) }()
	// Returning waits for the tasks in flight: their outcome is recorded before exit.
	defer func() { <-jobsDone }()
	if s.events != nil {
		eventsDone := make(chan struct{})
		go func() { defer close(eventsDone); s.events.Run(ctx) }()
		defer func() { <-eventsDone }()
	}
	if s.replication != nil {
		replDone := make(chan struct{})
		go func() { defer close(replDone); s.replication.Run(ctx) }()
		defer func() { <-replDone }()
	}
	if s.mirror != nil {
		go s.mirror.Run(ctx)
	}
	if s.hf != nil {
		go s.hf.Run(ctx)
	}
	if w := s.cfg.Mirror.Warm; s.mirror != nil && w.Interval > 0 && len(w.Images) > 0 {
		go s.warmLoop(ctx, w)
	}
	errc := make(chan error, 1)
	go func() {
		if tlsOn {
			errc <- srv.ServeTLS(ln, "", "") // certificates come from TLSConfig
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing in-flight requests", "timeout", time.Duration(s.cfg.HTTP.ShutdownTimeout).String())
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.HTTP.ShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	s.log.Info("stopped")
	return nil
}

// maintain purges abandoned uploads at start and then periodically.
func (s *Server) maintain(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		// One replica purges at a time; the lease outlives the interval only if renewed.
		if ok, err := s.Registry.TryLease(ctx, "job:purge-uploads", 15*time.Minute); ok {
			n, err := s.Registry.PurgeUploads(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("purge uploads", "err", err)
			} else if n > 0 {
				s.log.Info("purged abandoned uploads", "count", n)
			}
		} else if err != nil && ctx.Err() == nil {
			s.log.Warn("purge uploads lease", "err", err)
		}
		if s.auth != nil {
			if ok, _ := s.Registry.TryLease(ctx, "job:prune-audit", 15*time.Minute); ok {
				cut := time.Now().Add(-time.Duration(s.cfg.Auth.AuditRetention))
				if n, err := s.meta.PruneAudit(ctx, cut); err != nil && ctx.Err() == nil {
					s.log.Warn("prune audit log", "err", err)
				} else if n > 0 {
					s.log.Info("pruned audit log", "entries", n)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.pressure.Wake(): // held upload bytes are the first to give back
		}
	}
}

// warmLoop pre-fills the mirror cache at start and on the configured interval.
func (s *Server) warmLoop(ctx context.Context, w config.Warm) {
	t := time.NewTicker(time.Duration(w.Interval))
	defer t.Stop()
	for {
		if ok, _ := s.Registry.TryLease(ctx, "job:mirror-warm", time.Duration(w.Interval)/2); !ok {
			select { // another replica warms this round
			case <-ctx.Done():
				return
			case <-t.C:
				continue
			}
		}
		fetched := 0
		err := s.mirror.Warm(ctx, w.Images, w.Platforms, func(ev proxy.WarmEvent) {
			if ev.Err == nil && !ev.Cached {
				fetched++
			}
		})
		if err != nil && ctx.Err() == nil {
			s.log.Warn("scheduled mirror warm-up incomplete", "err", err)
		} else {
			s.log.Info("scheduled mirror warm-up done", "images", len(w.Images), "fetched", fetched)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// NewMirror builds the mirror for commands that run without a server (berth mirror warm).
func NewMirror(cfg config.Config, m *meta.Store, reg *registry.Registry, log *slog.Logger) (*proxy.Mirror, error) {
	return proxy.New(cfg.Mirror, reg, m, proxy.SpoolDir(cfg.Data), int64(cfg.Limits.ManifestSize), proxy.NewMetrics(prometheus.NewRegistry()), log)
}

// ldapDirectory adapts the LDAP authenticator to auth.Directory.
type ldapDirectory struct{ a *ldapauth.Authenticator }

func (d ldapDirectory) Authenticate(ctx context.Context, username, password string) ([]string, string, error) {
	id, err := d.a.Authenticate(ctx, username, password)
	if errors.Is(err, ldapauth.ErrInvalidCredentials) {
		return nil, "", auth.ErrInvalidCredentials
	}
	if err != nil {
		return nil, "", err
	}
	return id.Groups, id.Email, nil
}
