// Package config owns Berth's configuration: one YAML file, BERTH_* environment
// overrides, documented defaults, validation, and a printable form with secrets redacted.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration. Every field has a yaml key; the environment variable
// for a field is BERTH_ followed by its key path in upper snake case, e.g.
// database.sqliteSynchronous → BERTH_DATABASE_SQLITE_SYNCHRONOUS.
type Config struct {
	// Addr is the listen address of the registry API.
	Addr string `yaml:"addr"`
	// Data is the directory for embedded state (SQLite database, filesystem blobs).
	Data      string    `yaml:"data"`
	Log       Log       `yaml:"log"`
	Database  Database  `yaml:"database"`
	Storage   Storage   `yaml:"storage"`
	Limits    Limits    `yaml:"limits"`
	Manifests Manifests `yaml:"manifests"`
	Uploads   Uploads   `yaml:"uploads"`
	GC        GC        `yaml:"gc"`
	TLS       TLS       `yaml:"tls"`
	HTTP      HTTP      `yaml:"http"`
	Mirror    Mirror    `yaml:"mirror"`
	Auth      Auth      `yaml:"auth"`
	Metrics   Metrics   `yaml:"metrics"`
	Throttle  Throttle  `yaml:"throttle"`
	Scan      Scan      `yaml:"scan"`
	HF        HF        `yaml:"hf"`
	Events    Events    `yaml:"events"`

	Replication Replication `yaml:"replication"` // replication.go
	UI          UI          `yaml:"ui"`          // ui.go

	// FIPS requires FIPS 140-3 mode: Berth refuses to start unless Go's FIPS 140-3
	// module is active (GODEBUG=fips140=on or only, or a GOFIPS140 build). The mode
	// itself comes from the Go runtime; this switch makes its absence an error (fips.go).
	FIPS bool `yaml:"fips"`
}

// Metrics configures the Prometheus endpoint, /metrics.
type Metrics struct {
	// Public serves /metrics to anyone even with auth on. Off, it needs a system
	// administrator or a system robot with the metrics permission (Basic or Bearer):
	// metrics name repositories, upstreams and traffic.
	Public bool `yaml:"public"`
	// Addr, when set (e.g. 127.0.0.1:9090 or a pod-internal port), also serves /metrics
	// there without authentication, for a Prometheus that cannot present credentials;
	// keep it off public networks.
	Addr string `yaml:"addr"`
}

// Auth configures authentication and authorization. Off, the registry is open to
// anyone who can reach it (for a private network or a test).
type Auth struct {
	Enabled bool `yaml:"enabled"`
	// Realm is the token endpoint URL clients are sent to; empty derives it from the
	// request (scheme, Host, /token) — set it behind proxies that rewrite Host.
	Realm string `yaml:"realm"`
	// Admin is the first system administrator, created on first start when absent.
	// There is no default password: set password, passwordFile or passwordEnv.
	Admin struct {
		Username     string `yaml:"username"`
		Password     string `yaml:"password" secret:"true"`
		PasswordFile string `yaml:"passwordFile"`
		PasswordEnv  string `yaml:"passwordEnv"`
	} `yaml:"admin"`
	Token struct {
		Issuer          string   `yaml:"issuer"`
		Service         string   `yaml:"service"`
		Lifetime        Duration `yaml:"lifetime"`
		RefreshLifetime Duration `yaml:"refreshLifetime"`
		ClockSkew       Duration `yaml:"clockSkew"`
	} `yaml:"token"`
	// ProjectCreation: who creates a project by pushing to it first (everyone, admins).
	ProjectCreation string `yaml:"projectCreation"`
	// BasicCacheTTL: how long a verified password is trusted before bcrypt runs again.
	BasicCacheTTL Duration `yaml:"basicCacheTTL"`
	// FailedLogins throttles password guessing: max failures of one account from one
	// client address, maxPerAccount of a user from anywhere (sources it logged in from
	// before are spared), maxPerAddress from one address over all accounts (its
	// accounts' own sources spared); each within window locks for window. The two
	// wide limits default to 10 × max.
	FailedLogins struct {
		Max           int      `yaml:"max"`
		MaxPerAccount int      `yaml:"maxPerAccount"`
		MaxPerAddress int      `yaml:"maxPerAddress"`
		Window        Duration `yaml:"window"`
	} `yaml:"failedLogins"`
	// AuditRetention: audit entries older than this are deleted.
	AuditRetention Duration `yaml:"auditRetention"`
	LDAP           LDAP     `yaml:"ldap"`
	OIDC           OIDC     `yaml:"oidc"` // oidc.go
}

// LDAP configures directory (LDAP/Active Directory) logins. Directory users get a local
// account row on first login (no password) so they can be made members and admins.
type LDAP struct {
	Enabled            bool     `yaml:"enabled"`
	URL                string   `yaml:"url"` // ldap://host:389 or ldaps://host:636
	StartTLS           bool     `yaml:"startTLS"`
	CA                 string   `yaml:"ca"`
	InsecureSkipVerify bool     `yaml:"insecureSkipVerify"`
	BindDN             string   `yaml:"bindDN"`
	BindPassword       string   `yaml:"bindPassword" secret:"true"`
	UserBaseDN         string   `yaml:"userBaseDN"`
	UserFilter         string   `yaml:"userFilter"` // %s is the escaped username
	GroupBaseDN        string   `yaml:"groupBaseDN"`
	GroupFilter        string   `yaml:"groupFilter"` // %s is the escaped user DN
	GroupAttribute     string   `yaml:"groupAttribute"`
	Timeout            Duration `yaml:"timeout"`
	// GroupRoles gives directory groups roles in projects.
	GroupRoles []GroupRole `yaml:"groupRoles"`
}

// GroupRole maps a directory group to a role in a project.
type GroupRole struct {
	Group   string `yaml:"group"`
	Project string `yaml:"project"`
	Role    string `yaml:"role"` // guest, developer, maintainer, admin
}

// Mirror configures pull-through caching of upstream registries.
type Mirror struct {
	// DefaultUpstream names the upstream that serves requests carrying neither ?ns= nor an
	// upstream path prefix, for repositories that do not exist locally (Docker's
	// registry-mirrors setting sends Docker Hub pulls this way).
	DefaultUpstream string `yaml:"defaultUpstream"`
	// LocalProjects are projects that exist locally beside a default upstream (created
	// at start when absent): with a default upstream, only names in an existing project
	// are local, and pushes never create one.
	LocalProjects []string   `yaml:"localProjects"`
	Upstreams     []Upstream `yaml:"upstreams"`
	Warm          Warm       `yaml:"warm"`
}

// Warm pre-fills the cache on a schedule so nodes never wait on an upstream.
type Warm struct {
	// Images are references such as registry.k8s.io/pause:3.10 (e.g. the output of
	// kubeadm config images list).
	Images []string `yaml:"images"`
	// Platforms limits index children to these os/arch[/variant]; empty means all.
	Platforms []string `yaml:"platforms"`
	// Interval between runs; 0 disables the schedule (berth mirror warm still works).
	Interval Duration `yaml:"interval"`
}

// Upstream is one mirrored registry.
type Upstream struct {
	// Name is the registry host clients use (registry.k8s.io, docker.io): the key for
	// containerd's ?ns= and the path prefix of the cache's repositories.
	Name string `yaml:"name"`
	// URL is where the registry is reached; default https://<name>, and
	// https://registry-1.docker.io for docker.io.
	URL string `yaml:"url"`
	// Prefixes are extra short path prefixes routed to this upstream (e.g. k8s).
	Prefixes []string `yaml:"prefixes"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password" secret:"true"`
	// PasswordFile and PasswordEnv read the password from a file or an environment variable.
	PasswordFile string `yaml:"passwordFile"`
	PasswordEnv  string `yaml:"passwordEnv"`
	// CA is a PEM file of extra roots; Insecure skips verification (testing only).
	CA       string `yaml:"ca"`
	Insecure bool   `yaml:"insecure"`
	// AllowPrivateRedirects lets the upstream redirect Berth to loopback, link-local
	// and private addresses on other hosts (an on-premises object store); by default
	// such redirects are refused, since they would let the upstream reach internal
	// services and cloud metadata.
	AllowPrivateRedirects bool `yaml:"allowPrivateRedirects"`
	// TagTTL is how long a cached tag is served without asking the upstream.
	TagTTL Duration `yaml:"tagTTL"`
	// NegativeTTL is how long an upstream "not found" is remembered.
	NegativeTTL Duration `yaml:"negativeTTL"`
	// UnavailableTTL is how long an uncached reference whose upstream failed keeps
	// answering 503 without asking the upstream again.
	UnavailableTTL Duration `yaml:"unavailableTTL"`
	// Timeout bounds each upstream request (a blob stream may take longer while bytes flow).
	Timeout Duration `yaml:"timeout"`
	// Allow lists repository patterns (path.Match syntax, on the upstream repository name)
	// that may be mirrored; empty allows all.
	Allow []string `yaml:"allow"`
	// CacheSize bounds the bytes cached for this upstream (0: unbounded); past it the
	// least recently pulled content is evicted.
	CacheSize ByteSize `yaml:"cacheSize"`
	// CacheMinAge protects content pulled within this period from eviction.
	CacheMinAge Duration `yaml:"cacheMinAge"`
	// Trust is the signature policy for everything mirrored from this upstream,
	// checked on cached and uncached content alike.
	Trust *TrustPolicy `yaml:"trust"`
}

// Log configures logging.
type Log struct {
	Level     string `yaml:"level"`     // debug, info, warn, error
	Format    string `yaml:"format"`    // json or text
	AccessLog bool   `yaml:"accessLog"` // one line per request
}

// Database selects the metadata store.
type Database struct {
	Driver string `yaml:"driver"` // sqlite or postgres
	// DSN is the SQLite file (default <data>/berth.db) or a PostgreSQL URL.
	DSN               string `yaml:"dsn" secret:"url"`
	SQLiteSynchronous string `yaml:"sqliteSynchronous"` // FULL, NORMAL or EXTRA
	MaxOpenConns      int    `yaml:"maxOpenConns"`
	// CacheSize bounds the in-process cache of manifest and blob lookups (SQLite only:
	// with PostgreSQL other replicas write too, and every lookup is a query). 0: off.
	CacheSize ByteSize `yaml:"cacheSize"`
}

// Storage selects the blob store.
type Storage struct {
	Driver     string     `yaml:"driver"` // filesystem or s3
	Filesystem Filesystem `yaml:"filesystem"`
	S3         S3         `yaml:"s3"`
	Pressure   Pressure   `yaml:"pressure"`
}

// Filesystem configures the filesystem blob store.
type Filesystem struct {
	Root string `yaml:"root"` // default <data>/storage
}

// S3 configures the S3-compatible blob store (AWS S3, MinIO, Ceph RGW, versitygw, …).
type S3 struct {
	// Endpoint is the service URL, http(s)://host[:port]; empty means AWS S3.
	Endpoint string `yaml:"endpoint"`
	// Region; empty takes AWS_REGION / the shared config, else us-east-1.
	Region string `yaml:"region"`
	Bucket string `yaml:"bucket"`
	// Prefix is prepended to every object key, so several registries can share a bucket.
	Prefix string `yaml:"prefix"`
	// ForcePathStyle addresses http://host/bucket/key (most S3-compatible servers) instead
	// of http://bucket.host/key.
	ForcePathStyle bool `yaml:"forcePathStyle"`
	// AccessKey and SecretKey are static credentials; leave both empty to use the AWS
	// default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared
	// credentials file, web identity, ECS/EC2 instance roles).
	AccessKey string `yaml:"accessKey"`
	SecretKey string `yaml:"secretKey" secret:"true"`
	// CA is a PEM file of extra roots; Insecure skips TLS verification (testing only).
	CA       string `yaml:"ca"`
	Insecure bool   `yaml:"insecure"`
	// CreateBucket creates the bucket at start when it does not exist; otherwise a
	// missing bucket stops the start with an error.
	CreateBucket bool `yaml:"createBucket"`
	// Redirect answers blob GETs with a redirect to a presigned URL of the object.
	Redirect bool `yaml:"redirect"`
	// PartSize is the multipart part size (5MiB to 5GiB). Each upload in progress buffers
	// up to one part in memory; a blob has at most 10,000 parts (78GiB at 8MiB).
	PartSize ByteSize `yaml:"partSize"`
}

// Limits bound requests.
type Limits struct {
	ManifestSize ByteSize `yaml:"manifestSize"`
	BlobSize     ByteSize `yaml:"blobSize"` // 0: unbounded
	HeaderBytes  ByteSize `yaml:"headerBytes"`
}

// Manifests tunes manifest validation.
type Manifests struct {
	// AllowSparse accepts manifests whose blobs or child manifests are not in the
	// repository (the spec's MAY); off means MANIFEST_BLOB_UNKNOWN.
	AllowSparse bool `yaml:"allowSparse"`
}

// Uploads tunes upload sessions.
type Uploads struct {
	TTL Duration `yaml:"ttl"` // idle sessions older than this are purged
}

// GC tunes online garbage collection (package gc).
type GC struct {
	// Enabled runs GC workers in this process; the reviews are queued either way.
	Enabled bool `yaml:"enabled"`
	// ReviewAfter is how long after the change that may have orphaned it (tag deleted or
	// moved, manifest deleted, blob uploaded, …) an item is reviewed; 0 reviews at once.
	ReviewAfter Duration `yaml:"reviewAfter"`
	// Workers is how many GC tasks this process runs at once.
	Workers int `yaml:"workers"`
	// OrphanGrace spares stored bytes younger than this that no row names: a blob being
	// written has no row yet (longer than the longest single-request blob upload).
	OrphanGrace Duration `yaml:"orphanGrace"`
	// SweepInterval is how often the orphan sweep lists the blob store (0: never).
	SweepInterval Duration `yaml:"sweepInterval"`
}

// HTTP tunes the server.
type HTTP struct {
	ReadHeaderTimeout Duration `yaml:"readHeaderTimeout"`
	IdleTimeout       Duration `yaml:"idleTimeout"`
	ShutdownTimeout   Duration `yaml:"shutdownTimeout"` // how long in-flight requests may finish
}

// Default returns the documented defaults.
func Default() Config {
	return Config{
		Addr:     ":5000",
		Data:     "./data",
		Log:      Log{Level: "info", Format: "json", AccessLog: true},
		Database: Database{Driver: "sqlite", SQLiteSynchronous: "FULL", MaxOpenConns: 8, CacheSize: 8 << 20},
		Storage:  Storage{Driver: "filesystem", S3: S3{PartSize: 8 << 20}, Pressure: DefaultPressure()},
		Limits:   Limits{ManifestSize: 4 << 20, HeaderBytes: 64 << 10},
		Uploads:  Uploads{TTL: Duration(24 * time.Hour)},
		GC:       GC{Enabled: true, ReviewAfter: Duration(24 * time.Hour), Workers: 2, OrphanGrace: Duration(6 * time.Hour), SweepInterval: Duration(24 * time.Hour)},
		Auth:     defaultAuth(),
		Throttle: defaultThrottle(),
		Scan:     defaultScan(),
		HF:       defaultHF(),
		Events:   defaultEvents(),

		Replication: defaultReplication(),
		UI:          defaultUI(),
		HTTP: HTTP{
			ReadHeaderTimeout: Duration(10 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			ShutdownTimeout:   Duration(60 * time.Second),
		},
	}
}

func defaultAuth() Auth {
	var a Auth
	a.Token.Issuer, a.Token.Service = "berth", "berth"
	a.Token.Lifetime = Duration(5 * time.Minute)
	a.Token.RefreshLifetime = Duration(24 * time.Hour)
	a.Token.ClockSkew = Duration(10 * time.Second)
	a.ProjectCreation = "everyone"
	a.BasicCacheTTL = Duration(time.Minute)
	a.FailedLogins.Max, a.FailedLogins.Window = 10, Duration(5*time.Minute)
	a.AuditRetention = Duration(90 * 24 * time.Hour)
	a.OIDC = defaultOIDC()
	return a
}

// Load reads the optional file, applies BERTH_* overrides from environ, fills derived
// defaults and validates.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return c, fmt.Errorf("config: %s: %w", path, err)
		}
		if bad := checkKeys(&doc, reflect.TypeFor[Config]()); len(bad) > 0 {
			return c, fmt.Errorf("config: %s:\n  %s", path, strings.Join(bad, "\n  "))
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		// An empty file decodes to io.EOF: all defaults.
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	if err := applyEnv(&c, environ); err != nil {
		return c, err
	}
	c.fillDerived()
	return c, c.Validate()
}

func (c *Config) fillDerived() {
	for i := range c.Mirror.Upstreams {
		u := &c.Mirror.Upstreams[i]
		if u.URL == "" {
			u.URL = "https://" + u.Name
			if u.Name == "docker.io" {
				u.URL = "https://registry-1.docker.io"
			}
		}
		if u.TagTTL == 0 {
			u.TagTTL = Duration(10 * time.Minute)
		}
		if u.NegativeTTL == 0 {
			u.NegativeTTL = Duration(30 * time.Second)
		}
		if u.UnavailableTTL == 0 {
			u.UnavailableTTL = Duration(5 * time.Second)
		}
		if u.Timeout == 0 {
			u.Timeout = Duration(30 * time.Second)
		}
		if u.CacheMinAge == 0 {
			u.CacheMinAge = Duration(time.Hour)
		}
	}
	if f := &c.Auth.FailedLogins; f.MaxPerAccount == 0 {
		f.MaxPerAccount = 10 * f.Max
	}
	if f := &c.Auth.FailedLogins; f.MaxPerAddress == 0 {
		f.MaxPerAddress = 10 * f.Max
	}
	if c.Database.Driver == "sqlite" && c.Database.DSN == "" {
		c.Database.DSN = filepath.Join(c.Data, "berth.db")
	}
	if c.Storage.Driver == "filesystem" && c.Storage.Filesystem.Root == "" {
		c.Storage.Filesystem.Root = filepath.Join(c.Data, "storage")
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr %q: %v", c.Addr, err)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format %q: want json or text", c.Log.Format)
	}
	switch c.Database.Driver {
	case "sqlite":
		switch strings.ToUpper(c.Database.SQLiteSynchronous) {
		case "FULL", "NORMAL", "EXTRA":
		default:
			bad("database.sqliteSynchronous %q: want FULL, NORMAL or EXTRA", c.Database.SQLiteSynchronous)
		}
	case "postgres":
		if c.Database.DSN == "" {
			bad("database.dsn is required for postgres")
		}
	default:
		bad("database.driver %q: want sqlite or postgres", c.Database.Driver)
	}
	if c.Database.MaxOpenConns < 1 {
		bad("database.maxOpenConns must be at least 1")
	}
	switch c.Storage.Driver {
	case "filesystem":
	case "s3":
		c.validateS3(bad)
	default:
		bad("storage.driver %q: want filesystem or s3", c.Storage.Driver)
	}
	if c.Limits.ManifestSize < 1024 {
		bad("limits.manifestSize must be at least 1KiB")
	}
	if c.Limits.BlobSize < 0 {
		bad("limits.blobSize must not be negative")
	}
	if c.Limits.HeaderBytes < 4096 {
		bad("limits.headerBytes must be at least 4KiB")
	}
	errs = append(errs, c.validateFIPS()...)
	errs = append(errs, c.TLS.validate()...)
	errs = append(errs, c.Storage.Pressure.validate()...)
	errs = append(errs, c.Scan.validate()...)
	errs = append(errs, c.HF.validate()...)
	errs = append(errs, c.Events.validate()...)
	errs = append(errs, c.Replication.validate()...)
	errs = append(errs, c.UI.validate()...)
	errs = append(errs, c.Throttle.validate()...)
	errs = append(errs, c.Auth.OIDC.validate(c.Auth.Enabled)...)
	if c.Metrics.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Addr); err != nil {
			bad("metrics.addr %q: %v", c.Metrics.Addr, err)
		} else if c.Metrics.Addr == c.Addr {
			bad("metrics.addr must differ from addr")
		}
	}
	if c.Uploads.TTL < Duration(time.Minute) {
		bad("uploads.ttl must be at least 1m")
	}
	if g := c.GC; g.ReviewAfter < 0 || g.Workers < 1 || g.OrphanGrace < Duration(time.Minute) || g.SweepInterval < 0 {
		bad("gc: reviewAfter and sweepInterval must be ≥ 0, workers ≥ 1, orphanGrace ≥ 1m")
	}
	c.validateMirror(bad)
	if a := c.Auth; a.Enabled {
		if a.ProjectCreation != "everyone" && a.ProjectCreation != "admins" {
			bad("auth.projectCreation %q: want everyone or admins", a.ProjectCreation)
		}
		if a.Token.Lifetime < Duration(time.Minute) || a.Token.Lifetime > Duration(24*time.Hour) {
			bad("auth.token.lifetime must be between 1m and 24h")
		}
		if a.Token.ClockSkew < 0 || a.Token.ClockSkew > Duration(5*time.Minute) {
			bad("auth.token.clockSkew must be between 0 and 5m")
		}
		if a.Admin.Username != "" && a.Admin.Password == "" && a.Admin.PasswordFile == "" && a.Admin.PasswordEnv == "" {
			bad("auth.admin: set password, passwordFile or passwordEnv (there is no default password)")
		}
		if a.FailedLogins.Max < 1 {
			bad("auth.failedLogins.max must be at least 1")
		}
		if a.FailedLogins.MaxPerAccount < a.FailedLogins.Max || a.FailedLogins.MaxPerAddress < a.FailedLogins.Max {
			// Below max, one address could lock an account out everywhere again.
			bad("auth.failedLogins.maxPerAccount and maxPerAddress must be at least auth.failedLogins.max")
		}
		for i, g := range a.LDAP.GroupRoles {
			switch g.Role {
			case "guest", "developer", "maintainer", "admin":
			default:
				bad("auth.ldap.groupRoles[%d].role %q: want guest, developer, maintainer or admin", i, g.Role)
			}
			if g.Group == "" || g.Project == "" {
				bad("auth.ldap.groupRoles[%d]: group and project are required", i)
			}
		}
	}
	return errors.Join(errs...)
}

func (c Config) validateS3(bad func(string, ...any)) {
	s := c.Storage.S3
	if s.Bucket == "" {
		bad("storage.s3.bucket is required for the s3 driver")
	} else if !validBucket(s.Bucket) {
		bad("storage.s3.bucket %q: want 3-63 lower-case letters, digits, dots and hyphens", s.Bucket)
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") != "" ||
			u.RawQuery != "" || u.User != nil {
			bad("storage.s3.endpoint %q: want http(s)://host[:port]", s.Endpoint)
		}
	}
	if (s.AccessKey == "") != (s.SecretKey == "") {
		bad("storage.s3.accessKey and storage.s3.secretKey must be set together (or both left empty for the AWS credential chain)")
	}
	if p := strings.Trim(s.Prefix, "/"); p != "" {
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				bad("storage.s3.prefix %q: empty, . or .. path segment", s.Prefix)
				break
			}
		}
		if strings.ContainsAny(p, "\\\x00") {
			bad("storage.s3.prefix %q: backslash or NUL", s.Prefix)
		}
	}
	if s.PartSize < 5<<20 || s.PartSize > 5<<30 {
		bad("storage.s3.partSize %d: want 5MiB to 5GiB (S3's part size limits)", s.PartSize)
	}
	if s.CA != "" && s.Insecure {
		bad("storage.s3: set at most one of ca and insecure")
	}
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 || strings.Trim(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return false
	}
	first, last := b[0], b[len(b)-1]
	return first != '.' && first != '-' && last != '.' && last != '-' && !strings.Contains(b, "..")
}

func (c Config) validateMirror(bad func(string, ...any)) {
	seen := map[string]bool{}
	for i, u := range c.Mirror.Upstreams {
		where := fmt.Sprintf("mirror.upstreams[%d]", i)
		if u.Name == "" || strings.ContainsAny(u.Name, "/ ") || strings.ToLower(u.Name) != u.Name {
			bad("%s.name %q: want a lower-case registry host such as registry.k8s.io", where, u.Name)
		}
		for _, key := range append([]string{u.Name}, u.Prefixes...) {
			if seen[key] {
				bad("%s: name or prefix %q is used twice", where, key)
			}
			seen[key] = true
			if strings.Contains(key, "/") || key == "" {
				bad("%s: prefix %q must be one path component", where, key)
			}
		}
		pu, err := url.Parse(u.URL)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			bad("%s.url %q: want http(s)://host[:port]", where, u.URL)
		}
		for _, p := range u.Allow {
			if _, err := path.Match(p, ""); err != nil {
				bad("%s.allow %q: %v", where, p, err)
			}
		}
		if u.PasswordFile != "" && u.PasswordEnv != "" {
			bad("%s: set at most one of passwordFile and passwordEnv", where)
		}
	}
	if c.Mirror.Warm.Interval != 0 && c.Mirror.Warm.Interval < Duration(time.Minute) {
		bad("mirror.warm.interval must be at least 1m (or 0 to disable)")
	}
	if d := c.Mirror.DefaultUpstream; d != "" && !seen[d] {
		bad("mirror.defaultUpstream %q is not a configured upstream", d)
	}
	for _, p := range c.Mirror.LocalProjects {
		switch {
		case seen[p]:
			bad("mirror.localProjects: %q is an upstream's name or prefix, always mirrored", p)
		case p == "" || strings.Contains(p, "/") || !projectName.MatchString(p):
			bad("mirror.localProjects: %q is not a project name (one lower-case repository name component)", p)
		}
	}
}

// projectName is one path component of the distribution spec's repository name grammar.
var projectName = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)

// Redacted renders the configuration as YAML with secrets masked.
func (c Config) Redacted() string {
	if c.Database.DSN != "" {
		if u, err := url.Parse(c.Database.DSN); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "REDACTED")
				c.Database.DSN = u.String()
			}
		}
	}
	if c.Auth.Admin.Password != "" {
		c.Auth.Admin.Password = "REDACTED"
	}
	if c.Auth.LDAP.BindPassword != "" {
		c.Auth.LDAP.BindPassword = "REDACTED"
	}
	if c.Auth.OIDC.ClientSecret != "" {
		c.Auth.OIDC.ClientSecret = "REDACTED"
	}
	ups := make([]Upstream, len(c.Mirror.Upstreams))
	for i, u := range c.Mirror.Upstreams {
		if u.Password != "" {
			u.Password = "REDACTED"
		}
		ups[i] = u
	}
	c.Mirror.Upstreams = ups
	if c.Storage.S3.SecretKey != "" {
		c.Storage.S3.SecretKey = "REDACTED"
	}
	if c.Scan.Harbor.Authorization != "" {
		c.Scan.Harbor.Authorization = "REDACTED"
	}
	if c.HF.Token != "" {
		c.HF.Token = "REDACTED"
	}
	out, _ := yaml.Marshal(c)
	return string(out)
}

// applyEnv walks the struct and applies BERTH_<PATH> variables to leaf fields.
func applyEnv(c *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "BERTH_") {
			env[k] = v
		}
	}
	if len(env) == 0 {
		return nil
	}
	known := map[string]bool{}
	var errs []error
	walk(reflect.ValueOf(c).Elem(), "BERTH", func(key string, v reflect.Value) {
		known[key] = true
		raw, ok := env[key]
		if !ok {
			return
		}
		if err := setFromString(v, raw); err != nil {
			errs = append(errs, fmt.Errorf("config: %s: %w", key, err))
		}
	})
	for k := range env {
		if !known[k] && !ignoredEnv[k] && !referencedEnv(c)[k] {
			msg := "config: unknown environment variable " + k
			if s := closest(k, slices.Sorted(maps.Keys(known))); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			errs = append(errs, errors.New(msg))
		}
	}
	return errors.Join(errs...)
}

// ignoredEnv are BERTH_ variables that are not configuration: the admin CLI's and the
// test tooling's.
var ignoredEnv = map[string]bool{
	"BERTH_URL": true, "BERTH_ADMIN_USERNAME": true, "BERTH_ADMIN_PASSWORD": true,
	"BERTH_TOOLS": true, "BERTH_TOOLS_JOBS": true, "BERTH_BIN": true, "BERTH_TEST_POSTGRES_DSN": true,
	"BERTH_PG_PORT": true, "BERTH_PG_DIR": true, "BERTH_PG_BIN": true, "BERTH_CRASH_SEED": true,
	"BERTH_ARTIFACTS": true,
}

// referencedEnv are the variables the configuration names as secret sources
// (passwordEnv): they hold secrets, not configuration, whatever their names.
func referencedEnv(c *Config) map[string]bool {
	m := map[string]bool{c.Auth.Admin.PasswordEnv: true, c.HF.TokenEnv: true, c.Auth.OIDC.ClientSecretEnv: true}
	for _, u := range c.Mirror.Upstreams {
		m[u.PasswordEnv] = true
	}
	return m
}

func walk(v reflect.Value, prefix string, leaf func(key string, v reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + "_" + upperSnake(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Slice {
			continue // lists are configured in the file only
		}
		if fv.Kind() == reflect.Struct {
			walk(fv, key, leaf)
			continue
		}
		leaf(key, fv)
	}
}

func upperSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

func setFromString(v reflect.Value, raw string) error {
	switch p := v.Addr().Interface().(type) {
	case *Duration:
		return p.parse(raw)
	case *ByteSize:
		return p.parse(raw)
	case *string:
		*p = raw
	case *bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", raw)
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		*p = n
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// Duration is a time.Duration written as "10s", "24h".
type Duration time.Duration

func (d *Duration) parse(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := d.parse(n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ByteSize is a size in bytes written as 4194304, "4MiB", "1GiB" or "512KB".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func (b *ByteSize) parse(s string) error {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (mult > 1 && n > (1<<62)/mult) {
		return fmt.Errorf("%q is not a byte size (e.g. 4MiB)", s)
	}
	*b = ByteSize(n * mult)
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if err := b.parse(n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}
