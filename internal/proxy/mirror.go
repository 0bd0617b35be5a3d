package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/spool"
)

// Target is a request routed to an upstream: the cache repository it is stored under
// locally and the repository name on the upstream.
type Target struct {
	Upstream  *Upstream
	LocalRepo string // e.g. registry.k8s.io/pause
	Repo      string // e.g. pause
	// Default is set when the name reached the upstream only as the default one (no ns,
	// no prefix): its project does not exist locally.
	Default bool
}

// Projects tells which projects exist locally. With a default upstream, a name is
// local exactly when its project exists.
type Projects interface {
	ProjectExists(ctx context.Context, name string) (bool, error)
}

// Mirror serves pulls of mirrored repositories from the cache, filling it from upstreams.
type Mirror struct {
	reg       *registry.Registry
	projects  Projects
	upstreams map[string]*Upstream // by name and by prefix
	byName    map[string]*Upstream
	def       *Upstream
	spoolDir  string
	log       *slog.Logger
	metrics   *Metrics
	// maxManifest bounds manifests fetched from upstreams, like pushed ones.
	maxManifest int64

	// manifestCalls coalesces concurrent upstream manifest requests (HEAD and GET) for
	// the same reference: Docker Hub counts each GET against its pull limit.
	manifestCalls singleflight.Group

	mu      sync.Mutex
	flights map[string]*flight
	// missing remembers upstream 404s for negativeTTL; down remembers, for
	// unavailableTTL, that an uncached reference's upstream could not be reached.
	missing, down *negativeCache
	evictNow      chan *Upstream // nudges the eviction loop after a fetch
	// cached hears of every manifest stored from an upstream (OnCached).
	cached func(ctx context.Context, repo, digest, subject string)
}

// OnCached registers fn to hear of every manifest the mirror stores from an upstream
// (the vulnerability scanner scans what is cached, as it scans what is pushed). Call it
// before serving.
func (m *Mirror) OnCached(fn func(ctx context.Context, repo, digest, subject string)) { m.cached = fn }

// New builds the mirror from configuration. spoolDir holds in-flight downloads;
// projects decides which names the default upstream does not own.
func New(cfg config.Mirror, reg *registry.Registry, projects Projects, spoolDir string, maxManifest int64, m *Metrics, log *slog.Logger) (*Mirror, error) {
	if err := os.MkdirAll(spoolDir, 0o750); err != nil {
		return nil, fmt.Errorf("mirror: spool dir: %w", err)
	}
	mi := &Mirror{
		reg: reg, projects: projects, upstreams: map[string]*Upstream{}, byName: map[string]*Upstream{}, spoolDir: spoolDir,
		log: log, metrics: m, maxManifest: maxManifest, flights: map[string]*flight{},
		missing: newNegativeCache(), down: newNegativeCache(),
		evictNow: make(chan *Upstream, 64),
	}
	for _, uc := range cfg.Upstreams {
		u, err := newUpstream(uc, m)
		if err != nil {
			return nil, err
		}
		mi.byName[uc.Name] = u
		mi.upstreams[uc.Name] = u
		m.upstream(uc.Name)
		for _, p := range uc.Prefixes {
			mi.upstreams[p] = u
		}
	}
	if cfg.DefaultUpstream != "" {
		mi.def = mi.byName[cfg.DefaultUpstream]
	}
	return mi, nil
}

// Upstreams lists the configured upstreams.
func (m *Mirror) Upstreams() []*Upstream {
	out := make([]*Upstream, 0, len(m.byName))
	for _, u := range m.byName {
		out = append(out, u)
	}
	return out
}

// ErrNotMirrored is returned by Resolve when ns names no configured upstream.
var ErrNotMirrored = errcode.NameUnknown.New("the requested namespace (ns) is not a mirrored upstream")

// upstreamRepo applies Docker Hub's convention: official images live under library/.
func upstreamRepo(u *Upstream, repo string) string {
	if u.cfg.Name == "docker.io" && !strings.Contains(repo, "/") {
		return "library/" + repo
	}
	return repo
}

// Resolve routes a repository name: containerd's ns query parameter, then a path prefix
// naming an upstream, then the default upstream for every name whose project does not
// exist locally. A nil Target means the repository is local. Routing depends on
// configuration and project rows only, never on whether a repository happens to exist:
// a push can neither create a project in the default upstream's namespace (writes to
// a Target are refused) nor shadow a mirrored name. An ns that names no configured
// upstream is refused without any network access.
func (m *Mirror) Resolve(ctx context.Context, name, ns string) (*Target, error) {
	if ns != "" {
		u := m.byName[ns]
		if u == nil {
			return nil, ErrNotMirrored
		}
		return m.target(u, name)
	}
	if first, rest, ok := strings.Cut(name, "/"); ok {
		if u := m.upstreams[first]; u != nil {
			return m.target(u, rest)
		}
	}
	if m.def == nil {
		return nil, nil
	}
	local, err := m.projects.ProjectExists(ctx, oci.Project(name))
	if err != nil {
		return nil, errcode.Internal.Wrap(err, "")
	}
	if local {
		return nil, nil
	}
	t, err := m.target(m.def, name)
	if t != nil {
		t.Default = true
	}
	return t, err
}

// Reserved tells whether project is a name the mirror serves from an upstream whatever
// the database holds (an upstream's name or path prefix).
func (m *Mirror) Reserved(project string) bool { return m.upstreams[project] != nil }

// ReadOnly is the refusal of a write to a mirrored name.
func (m *Mirror) ReadOnly(t *Target, name string) error {
	if t.Default {
		p := oci.Project(name)
		return errcode.Denied.New(fmt.Sprintf("project %s does not exist here, so %s is served by the mirror of %s (the default upstream); "+
			"pushes never create projects in a mirrored namespace: an administrator creates project %s (berth admin project create, "+
			"or mirror.localProjects) to push there", p, name, t.Upstream.Name(), p))
	}
	return errcode.Denied.New("repository " + name + " is a read-only mirror of " + t.Upstream.Name())
}

func (m *Mirror) target(u *Upstream, repo string) (*Target, error) {
	repo = upstreamRepo(u, repo)
	if !u.allows(repo) {
		return nil, errcode.Denied.New(fmt.Sprintf("repository %s is not allowed to be mirrored from %s", repo, u.cfg.Name))
	}
	local := u.cfg.Name + "/" + repo
	if err := registry.ValidateName(local); err != nil {
		return nil, err
	}
	return &Target{Upstream: u, LocalRepo: local, Repo: repo}, nil
}

// Manifest returns the manifest for ref, from the cache when it may be trusted, else from
// the upstream (storing it byte for byte). Digests are immutable and always served from
// the cache once stored; tags are served from the cache while fresh, revalidated with a
// HEAD when stale, and served stale when the upstream fails.
func (m *Mirror) Manifest(ctx context.Context, t *Target, ref registry.Reference, withPayload bool) (meta.Manifest, error) {
	u := t.Upstream
	cached, err := m.reg.GetManifest(ctx, t.LocalRepo, ref, withPayload)
	haveCached := err == nil
	if err != nil && !errors.Is(err, errcode.ManifestUnknown) && !errors.Is(err, errcode.NameUnknown) {
		return meta.Manifest{}, err
	}
	if haveCached && (ref.Digest != "" || time.Since(cached.TagUpdatedAt) < time.Duration(u.cfg.TagTTL)) {
		m.served(ctx, u.cfg.Name, "manifest", servedHit)
		m.markPulled(ctx, t, cached)
		return cached, nil
	}
	negKey := u.cfg.Name + "\x00" + t.Repo + "\x00" + ref.String()
	if !haveCached {
		if _, ok := m.missing.hit(negKey); ok {
			return meta.Manifest{}, errcode.ManifestUnknown.New("not found upstream (cached)")
		}
		if err, ok := m.down.hit(negKey); ok {
			return meta.Manifest{}, err
		}
	}
	m.served(ctx, u.cfg.Name, "manifest", servedMiss)
	if haveCached {
		// A stale tag: a HEAD tells whether it moved without spending a pull.
		v, herr, _ := m.manifestCalls.Do("HEAD "+negKey, func() (any, error) {
			return m.headManifest(context.WithoutCancel(ctx), t, ref.Tag)
		})
		dgst, _ := v.(oci.Digest)
		switch {
		case herr == nil && string(dgst) == cached.Digest:
			if _, err := m.reg.TouchTag(ctx, t.LocalRepo, ref.Tag, cached.Digest); err != nil {
				m.log.Warn("refresh mirrored tag", "repository", t.LocalRepo, "tag", ref.Tag, "err", err)
			}
			m.markPulled(ctx, t, cached)
			return cached, nil
		case herr != nil && transient(herr):
			m.served(ctx, u.cfg.Name, "manifest", servedStale)
			m.log.Warn("upstream failed; serving cached tag", "upstream", u.cfg.Name, "repository", t.Repo, "tag", ref.Tag, "digest", cached.Digest, "err", herr)
			m.markPulled(ctx, t, cached)
			return cached, nil
		case herr != nil:
			return meta.Manifest{}, asErrcode(herr, errcode.ManifestUnknown)
		}
		// The tag moved: fetch the new manifest below.
	}
	v, err, _ := m.manifestCalls.Do("GET "+negKey, func() (any, error) {
		// Detached: the first caller going away must not fail the others.
		return m.fetchManifest(context.WithoutCancel(ctx), t, ref)
	})
	got, _ := v.(meta.Manifest)
	if err != nil {
		if isNotFound(err) {
			m.missing.remember(negKey, nil, time.Duration(u.cfg.NegativeTTL))
		}
		if haveCached && transient(err) {
			m.served(ctx, u.cfg.Name, "manifest", servedStale)
			return cached, nil
		}
		err = asErrcode(err, errcode.ManifestUnknown)
		if errors.Is(err, errcode.UpstreamUnavailable) {
			// Nothing cached stands in: every client gets the same 503 for a few seconds
			// instead of each retry becoming an upstream request.
			m.down.remember(negKey, err, time.Duration(u.cfg.UnavailableTTL))
		}
		return meta.Manifest{}, err
	}
	if !withPayload {
		got.Payload = nil
	}
	return got, nil
}

func (m *Mirror) headManifest(ctx context.Context, t *Target, tag string) (oci.Digest, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(t.Upstream.cfg.Timeout))
	defer cancel()
	resp, err := t.Upstream.do(ctx, http.MethodHead, t.Repo, "manifests/"+tag, http.Header{"Accept": {manifestAccept}})
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	d, err := oci.ParseDigest(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		// No usable digest header: treat as "changed" so the GET decides.
		return "", nil
	}
	return d, nil
}

// fetchManifest GETs a manifest from the upstream, verifies its digest and stores it
// byte for byte (tagging it when ref is a tag).
func (m *Mirror) fetchManifest(ctx context.Context, t *Target, ref registry.Reference) (meta.Manifest, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(t.Upstream.cfg.Timeout))
	defer cancel()
	resp, err := t.Upstream.do(ctx, http.MethodGet, t.Repo, "manifests/"+ref.String(), http.Header{"Accept": {manifestAccept}})
	if err != nil {
		return meta.Manifest{}, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, m.maxManifest+1))
	if err != nil {
		return meta.Manifest{}, &upstreamError{upstream: t.Upstream.cfg.Name, err: err}
	}
	if n > m.maxManifest {
		return meta.Manifest{}, errcode.ManifestTooLarge.New("upstream manifest exceeds the size limit")
	}
	payload := buf.Bytes()
	want := ref.Digest
	if want == "" {
		if d, err := oci.ParseDigest(resp.Header.Get("Docker-Content-Digest")); err == nil {
			want = d
		} else {
			want = oci.SHA256.FromBytes(payload)
		}
	}
	if got := want.Algorithm().FromBytes(payload); got != want {
		msg := fmt.Sprintf("upstream %s sent a manifest that does not match %s", t.Upstream.cfg.Name, want)
		t.Upstream.failed("digest", msg)
		return meta.Manifest{}, errcode.UpstreamUnavailable.New(msg)
	}
	var tags []string
	if ref.Tag != "" {
		tags = []string{ref.Tag}
	}
	ct := resp.Header.Get("Content-Type")
	put, err := m.reg.PutManifestUnchecked(ctx, t.LocalRepo, registry.Reference{Digest: want}, ct, payload, tags)
	if err != nil {
		return meta.Manifest{}, err
	}
	if m.cached != nil {
		m.cached(ctx, t.LocalRepo, string(want), string(put.Subject))
	}
	return m.reg.GetManifest(ctx, t.LocalRepo, registry.Reference{Digest: want}, true)
}

// Tags lists the upstream's tags for the repository, falling back to the cached tags when
// the upstream fails.
func (m *Mirror) Tags(ctx context.Context, t *Target, rawQuery string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(t.Upstream.cfg.Timeout))
	defer cancel()
	suffix := "tags/list"
	if rawQuery != "" {
		suffix += "?" + rawQuery
	}
	resp, err := t.Upstream.do(ctx, http.MethodGet, t.Repo, suffix, nil)
	if err != nil {
		return nil, asErrcode(err, errcode.NameUnknown)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, errcode.UpstreamUnavailable.Wrap(err, "reading upstream tag list")
	}
	return body, nil
}

// StatBlob reports a mirrored blob's size: from the cache, else by an upstream HEAD.
func (m *Mirror) StatBlob(ctx context.Context, t *Target, dgst oci.Digest) (int64, error) {
	if b, err := m.reg.StatBlob(ctx, t.LocalRepo, dgst); err == nil {
		m.served(ctx, t.Upstream.cfg.Name, "blob", servedHit)
		return b.Size, nil
	}
	if b, ok := m.linkFromSibling(ctx, t, dgst); ok {
		return b.Size, nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(t.Upstream.cfg.Timeout))
	defer cancel()
	resp, err := t.Upstream.do(ctx, http.MethodHead, t.Repo, "blobs/"+string(dgst), nil)
	if err != nil {
		return 0, asErrcode(err, errcode.BlobUnknown)
	}
	resp.Body.Close()
	return resp.ContentLength, nil
}

// linkFromSibling makes a blob already cached for another repository of the same
// upstream visible here without downloading it again. Blobs of other projects are never
// borrowed: knowing a digest must not open content.
func (m *Mirror) linkFromSibling(ctx context.Context, t *Target, dgst oci.Digest) (registry.BlobInfo, bool) {
	prefix := t.Upstream.cfg.Name + "/"
	b, ok, err := m.reg.Mount(ctx, t.LocalRepo, dgst, "", func(repo string) bool { return strings.HasPrefix(repo, prefix) })
	if err != nil || !ok {
		return registry.BlobInfo{}, false
	}
	return b, true
}

// OpenBlob returns the cached blob, or a Stream of it being fetched from the upstream
// (joining a fetch already in flight for the same blob).
func (m *Mirror) OpenBlob(ctx context.Context, t *Target, dgst oci.Digest) (blobstore.Blob, *Stream, error) {
	u := t.Upstream
	if b, err := m.reg.OpenBlob(ctx, t.LocalRepo, dgst); err == nil {
		m.served(ctx, u.cfg.Name, "blob", servedHit)
		return b, nil, nil
	}
	if _, ok := m.linkFromSibling(ctx, t, dgst); ok {
		if b, err := m.reg.OpenBlob(ctx, t.LocalRepo, dgst); err == nil {
			m.served(ctx, u.cfg.Name, "blob", servedHit)
			return b, nil, nil
		}
	}
	key := t.LocalRepo + "@" + string(dgst)
	m.mu.Lock()
	_, inFlight := m.flights[key]
	m.mu.Unlock()
	if !inFlight {
		// Replicas share the cache: the one holding the blob's fetch lease downloads it;
		// the others wait for its commit instead of downloading it again.
		b, err := m.awaitFetchLease(ctx, t, dgst, key)
		if err != nil || b != nil {
			return b, nil, err
		}
	}
	m.mu.Lock()
	f, inFlight := m.flights[key]
	if !inFlight {
		// A fetch may have committed since the cache was checked: look again before
		// starting another download (under the lock, so no two start at once).
		if b, err := m.reg.OpenBlob(ctx, t.LocalRepo, dgst); err == nil {
			m.mu.Unlock()
			m.served(ctx, u.cfg.Name, "blob", servedHit)
			return b, nil, nil
		}
	}
	if inFlight {
		f.Acquire()
		m.mu.Unlock()
		m.served(ctx, u.cfg.Name, "blob", servedCoalesced)
	} else {
		spoolFile, err := os.CreateTemp(m.spoolDir, "blob-*")
		if err != nil {
			m.mu.Unlock()
			return nil, nil, errcode.Internal.Wrap(err, "")
		}
		_ = os.Remove(spoolFile.Name()) // the open descriptors keep it alive
		f = spool.New(spoolFile)
		f.Acquire() // this caller's reference
		m.flights[key] = f
		m.mu.Unlock()
		m.served(ctx, u.cfg.Name, "blob", servedMiss)
		go m.fetchBlob(t, dgst, key, f)
	}
	if _, err := f.WaitStarted(ctx); err != nil {
		f.Release()
		return nil, nil, asErrcode(err, errcode.BlobUnknown)
	}
	return nil, f.NewStream(), nil
}

// fetchLeaseTTL is how long a replica's claim on a blob download lasts without renewal;
// a replica that dies mid-download is replaced after at most this long.
const fetchLeaseTTL = 30 * time.Second

// awaitFetchLease takes the blob's fetch lease for this replica (returning nil, nil: go
// ahead and fetch), or, while another replica holds it, waits for that replica's
// commit and returns the stored blob.
func (m *Mirror) awaitFetchLease(ctx context.Context, t *Target, dgst oci.Digest, key string) (blobstore.Blob, error) {
	b, _, err := spool.AwaitLease(ctx, m.reg, "fetch:"+key, fetchLeaseTTL,
		func() bool { // this replica is the fetcher: join its flight
			m.mu.Lock()
			defer m.mu.Unlock()
			_, local := m.flights[key]
			return local
		},
		func() (blobstore.Blob, bool) {
			b, err := m.reg.OpenBlob(ctx, t.LocalRepo, dgst)
			if err != nil {
				return nil, false
			}
			m.served(ctx, t.Upstream.cfg.Name, "blob", servedCoalesced)
			return b, true
		})
	return b, err
}

// blobFetchTimeout bounds one upstream blob download, however slow.
const blobFetchTimeout = 2 * time.Hour

// fetchBlob downloads the blob once; waiting clients follow it as the registry hashes
// and stores it (registry.Tap). It runs detached from any client: a client that
// goes away does not abort a download others wait for (or that fills the cache).
func (m *Mirror) fetchBlob(t *Target, dgst oci.Digest, key string, f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), blobFetchTimeout)
	defer cancel()
	defer spool.HoldLease(ctx, m.reg, "fetch:"+key, fetchLeaseTTL)()
	err := func() error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		resp, err := t.Upstream.do(ctx, http.MethodGet, t.Repo, "blobs/"+string(dgst), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		f.Start(resp.ContentLength)
		// The download may take as long as bytes keep flowing, but an upstream that goes
		// silent mid-body is given up after the upstream timeout, not hours later.
		idle := time.AfterFunc(time.Duration(t.Upstream.cfg.Timeout), cancel)
		defer idle.Stop()
		counted := &countingReader{r: resp.Body, onRead: func() { idle.Reset(time.Duration(t.Upstream.cfg.Timeout)) }}
		_, err = m.reg.PutBlob(ctx, t.LocalRepo, dgst, registry.Chunk{Body: counted, Start: -1, Length: resp.ContentLength, Tap: f})
		m.metrics.upstreamBytes.WithLabelValues(t.Upstream.cfg.Name).Add(float64(counted.n))
		if errors.Is(err, errcode.DigestInvalid) {
			msg := fmt.Sprintf("upstream %s sent bytes that do not match %s", t.Upstream.cfg.Name, dgst)
			t.Upstream.failed("digest", msg)
			return errcode.UpstreamUnavailable.Wrap(err, msg)
		}
		return err
	}()
	if err != nil {
		m.log.Warn("mirror blob fetch failed", "upstream", t.Upstream.cfg.Name, "repository", t.Repo, "digest", dgst, "err", err)
	} else if t.Upstream.cfg.CacheSize > 0 {
		select {
		case m.evictNow <- t.Upstream:
		default: // a nudge is already pending
		}
	}
	m.mu.Lock()
	delete(m.flights, key)
	m.mu.Unlock()
	f.Finish(err)
}

type countingReader struct {
	r      io.Reader
	n      int64
	onRead func() // called after every read that returned bytes
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 && c.onRead != nil {
		c.onRead()
	}
	return n, err
}

// SpoolDir is where in-flight downloads are spooled, under the data directory.
func SpoolDir(data string) string { return filepath.Join(data, "spool") }

// pullMarkInterval limits last-pulled bookkeeping to one write per manifest per interval.
const pullMarkInterval = time.Minute

func (m *Mirror) markPulled(ctx context.Context, t *Target, man meta.Manifest) {
	if time.Since(man.LastPulledAt) < pullMarkInterval {
		return
	}
	if err := m.reg.MarkPulled(ctx, t.LocalRepo, man.Digest); err != nil {
		m.log.Warn("record mirror pull", "repository", t.LocalRepo, "err", err)
	}
}

// Run keeps size-limited caches within their limits until ctx ends: after fetches and
// once a minute.
func (m *Mirror) Run(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	m.measure(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-m.evictNow:
			m.Evict(ctx, u)
		case <-tick.C:
			m.measure(ctx)
			// The periodic pass runs on one replica at a time.
			if ok, _ := m.reg.TryLease(ctx, "job:mirror-evict", 2*time.Minute); !ok {
				continue
			}
			for _, u := range m.byName {
				if u.cfg.CacheSize > 0 {
					m.Evict(ctx, u)
				}
			}
		}
	}
}

// measure sets every upstream's cache-size gauge (each replica exports its own).
func (m *Mirror) measure(ctx context.Context) {
	for _, u := range m.byName {
		size, err := m.reg.PrefixCacheSize(ctx, u.cfg.Name+"/")
		if err != nil {
			m.log.Warn("mirror cache size", "upstream", u.cfg.Name, "err", err)
			continue
		}
		m.metrics.cacheBytes.WithLabelValues(u.cfg.Name).Set(float64(size))
	}
}

// Evict removes the upstream's least recently pulled manifests, and the blobs only they
// used, until the cache fits its size limit. Content pulled within CacheMinAge is never
// evicted, even when the cache stays over its limit.
func (m *Mirror) Evict(ctx context.Context, u *Upstream) {
	limit := int64(u.cfg.CacheSize)
	if limit <= 0 {
		return
	}
	prefix := u.cfg.Name + "/"
	for ctx.Err() == nil {
		size, err := m.reg.PrefixCacheSize(ctx, prefix)
		if err != nil {
			m.log.Warn("mirror cache size", "upstream", u.cfg.Name, "err", err)
			return
		}
		m.metrics.cacheBytes.WithLabelValues(u.cfg.Name).Set(float64(size))
		if size <= limit {
			return
		}
		victims, err := m.reg.LeastRecentlyPulled(ctx, prefix, time.Now().Add(-time.Duration(u.cfg.CacheMinAge)), 16)
		if err != nil {
			m.log.Warn("mirror eviction candidates", "upstream", u.cfg.Name, "err", err)
			return
		}
		if len(victims) == 0 {
			m.log.Warn("mirror cache over its limit, but everything in it was pulled recently",
				"upstream", u.cfg.Name, "bytes", size, "limit", limit, "cacheMinAge", time.Duration(u.cfg.CacheMinAge).String())
			return
		}
		for _, v := range victims {
			freed, err := m.reg.EvictManifest(ctx, v.Repository, v.Digest)
			if err != nil {
				m.log.Warn("mirror eviction", "repository", v.Repository, "digest", v.Digest, "err", err)
				return
			}
			m.metrics.evictedBytes.WithLabelValues(u.cfg.Name).Add(float64(freed))
			m.log.Info("evicted from mirror cache", "repository", v.Repository, "digest", v.Digest, "freed_bytes", freed)
			if size -= freed; size <= limit {
				break // re-measured at the top of the loop
			}
		}
	}
}
