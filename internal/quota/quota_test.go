package quota_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/blobstore"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/gc"
	"github.com/berth-registry/berth/internal/jobs"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/meta/metatest"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/quota"
	"github.com/berth-registry/berth/internal/registry"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is a registry over one backend with quotas enforced and GC (review_after 0) on hand.
type env struct {
	t      *testing.T
	meta   *meta.Store
	root   string
	quotas *quota.Service
	reg    *registry.Registry
	runner *jobs.Runner
}

// checker lets a test turn the early check off, leaving only the database's refusal.
type checker struct {
	*quota.Service
	noAdmit bool
}

func (c checker) Admit(ctx context.Context, repo, digest string, size int64) error {
	if c.noAdmit {
		return nil
	}
	return c.Service.Admit(ctx, repo, digest, size)
}

func newEnv(t *testing.T, b metatest.Backend, noAdmit bool) *env {
	t.Helper()
	m := b.Open(t)
	root := t.TempDir()
	fsys, err := blobstore.NewFilesystem(root)
	if err != nil {
		t.Fatal(err)
	}
	q := quota.New(quota.NewStore(m.DB()), quota.Options{Mirrored: func(p string) bool { return p == "docker.io" }})
	e := &env{t: t, meta: m, root: root, quotas: q,
		reg: registry.New(m, fsys, registry.Options{Quota: checker{q, noAdmit}}, quiet)}
	queue := jobs.NewStore(m.DB())
	col := gc.New(gc.NewStore(m.DB()), queue, fsys, m, gc.Options{OrphanGrace: time.Minute}, nil, quiet)
	if err := col.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.runner = jobs.NewRunner(queue, jobs.Options{Worker: "test", Concurrency: 2, Poll: 10 * time.Millisecond, Backoff: 10 * time.Millisecond}, nil, quiet)
	col.Register(e.runner)
	return e
}

// content returns n bytes unique to name (n >= len(name)).
func content(name string, n int) []byte {
	b := bytes.Repeat([]byte{'.'}, n)
	copy(b, name)
	return b
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func (e *env) push(repo string, data []byte) (oci.Digest, error) {
	d := oci.Digest(fmt.Sprintf("sha256:%x", sha256Sum(data)))
	_, err := e.reg.PutBlob(e.t.Context(), repo, d, registry.Chunk{Body: bytes.NewReader(data), Start: -1, Length: int64(len(data))})
	return d, err
}

func (e *env) mustPush(repo string, data []byte) oci.Digest {
	e.t.Helper()
	d, err := e.push(repo, data)
	if err != nil {
		e.t.Fatalf("push %d bytes to %s: %v", len(data), repo, err)
	}
	return d
}

// manifest stores an image manifest in repo with config and layers (pushed before) and
// returns its digest.
func (e *env) manifest(repo, tag string, config oci.Digest, configSize int64, layers map[oci.Digest]int64) oci.Digest {
	e.t.Helper()
	var ls []string
	for d, n := range layers {
		ls = append(ls, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, d, n))
	}
	payload := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`,
		config, configSize, strings.Join(ls, ","))
	res, err := e.reg.PutManifest(e.t.Context(), repo, registry.Reference{Tag: tag}, "application/vnd.oci.image.manifest.v1+json", []byte(payload), nil)
	if err != nil {
		e.t.Fatalf("put manifest %s:%s: %v", repo, tag, err)
	}
	return res.Digest
}

func (e *env) gc() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 60*time.Second)
	defer cancel()
	if err := e.runner.Drain(ctx, gc.Kinds...); err != nil {
		e.t.Fatalf("gc: %v", err)
	}
}

// exact checks the triggers' usage against a recount from the registry's rows and
// against want (bytes, -1: do not check).
func (e *env) exact(project string, want int64) quota.Usage {
	e.t.Helper()
	u, err := e.quotas.Usage(e.t.Context(), project)
	if err != nil {
		e.t.Fatal(err)
	}
	bytes, blobs, err := quota.NewStore(e.meta.DB()).Recount(e.t.Context(), project)
	if err != nil {
		e.t.Fatal(err)
	}
	if u.Bytes != bytes || u.Blobs != blobs {
		e.t.Errorf("%s: kept usage %d bytes in %d blobs, recount %d bytes in %d blobs", project, u.Bytes, u.Blobs, bytes, blobs)
	}
	if want >= 0 && u.Bytes != want {
		e.t.Errorf("%s: usage %d bytes, want %d", project, u.Bytes, want)
	}
	return u
}

// files counts the stored blob files.
func (e *env) files() int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(e.root, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func forBackends(t *testing.T, fn func(t *testing.T, b metatest.Backend)) {
	for _, b := range metatest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// TestUsageCountsEachBlobOncePerProject walks one history step by step: shared blobs
// count once per project, a blob a manifest references counts after its link is
// deleted, and usage drops when the last link or reference goes (delete, GC,
// repository delete).
func TestUsageCountsEachBlobOncePerProject(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		e := newEnv(t, b, false)
		ctx := t.Context()
		a, bb := content("a", 100), content("b", 200)
		var da, db, m1 oci.Digest
		all := func(string) bool { return true }
		steps := []struct {
			name         string
			do           func()
			team, others int64
		}{
			{"push A to team/a", func() { da = e.mustPush("team/a", a) }, 100, 0},
			{"push A again to team/b", func() { e.mustPush("team/b", a) }, 100, 0},
			{"mount A into others/x", func() {
				if _, ok, err := e.reg.Mount(ctx, "others/x", da, "team/a", all); !ok || err != nil {
					t.Fatalf("mount: %v %v", ok, err)
				}
				e.manifest("others/x", "keep", da, 100, nil) // tagged: GC keeps A there
			}, 100, 100},
			{"push B and an image of B+A to team/a", func() {
				db = e.mustPush("team/a", bb)
				m1 = e.manifest("team/a", "v1", db, 200, map[oci.Digest]int64{da: 100})
			}, 300, 100},
			{"second image sharing both, in team/c", func() {
				e.mustPush("team/c", a)
				e.mustPush("team/c", bb)
				e.manifest("team/c", "v1", db, 200, map[oci.Digest]int64{da: 100})
			}, 300, 100},
			{"delete A's links in team/a and team/b (manifests still reference it)", func() {
				for _, r := range []string{"team/a", "team/b"} {
					if err := e.reg.DeleteBlob(ctx, r, da); err != nil {
						t.Fatal(err)
					}
				}
			}, 300, 100},
			{"delete repository team/c", func() {
				if err := e.reg.DeleteRepository(ctx, "team/c"); err != nil {
					t.Fatal(err)
				}
			}, 300, 100},
			{"untag team/a's image: it stays until GC", func() {
				if err := e.reg.DeleteManifest(ctx, "team/a", registry.Reference{Tag: "v1"}); err != nil {
					t.Fatal(err)
				}
			}, 300, 100},
			{"delete it by digest: A goes, B stays linked until GC", func() {
				if err := e.reg.DeleteManifest(ctx, "team/a", registry.Reference{Digest: m1}); err != nil {
					t.Fatal(err)
				}
			}, 200, 100},
			{"GC removes the unused link", func() { e.gc() }, 0, 100},
			{"delete repository others/x", func() {
				if err := e.reg.DeleteRepository(ctx, "others/x"); err != nil {
					t.Fatal(err)
				}
			}, 0, 0},
		}
		for _, s := range steps {
			s.do()
			if t.Failed() {
				t.Fatalf("after %q", s.name)
			}
			e.exact("team", s.team)
			e.exact("others", s.others)
			if t.Failed() {
				t.Fatalf("after %q", s.name)
			}
		}
		e.gc()
		if n := e.files(); n != 0 {
			t.Errorf("%d blob files left after everything was deleted and collected", n)
		}
	})
}

// TestQuotaEnforced: the early check and the database each refuse a blob past the
// quota, with DENIED naming quota and usage; blobs already counted pass even over the
// quota; a refused commit leaves no bytes.
func TestQuotaEnforced(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		for _, noAdmit := range []bool{false, true} {
			t.Run(fmt.Sprintf("earlyCheck=%t", !noAdmit), func(t *testing.T) {
				e := newEnv(t, b, noAdmit)
				ctx := t.Context()
				var told []string // OnExceeded sees every refusal (the quota.exceeded event)
				e.quotas.OnExceeded(func(project string, limit, used, size int64) {
					told = append(told, fmt.Sprintf("%s %d", project, limit))
				})
				if _, err := e.quotas.Set(ctx, "team", 1000); err != nil {
					t.Fatal(err)
				}
				dc := e.mustPush("team/a", content("c", 400))
				cases := []struct {
					name  string
					limit int64
					repo  string
					data  []byte
					want  error // nil: admitted
				}{
					{"fits", 1000, "team/a", content("d", 500), nil},
					{"past the quota", 1000, "team/a", content("e", 101), errcode.QuotaExceeded},
					{"exactly to the quota", 1000, "team/b", content("f", 100), nil},
					{"shared blob, quota lowered below usage", 10, "team/c", content("c", 400), nil},
					{"new blob over a lowered quota", 10, "team/c", content("g", 1), errcode.QuotaExceeded},
					{"another project is not limited", 10, "other/a", content("h", 5000), nil},
					{"mirrored namespace is exempt", 10, "docker.io/library/x", content("i", 5000), nil},
					{"empty blob always fits", 0, "team/a", nil, nil},
				}
				for _, c := range cases {
					if _, err := e.quotas.Set(ctx, "team", c.limit); err != nil {
						t.Fatal(err)
					}
					before, files := e.exact("team", -1), e.files()
					_, err := e.push(c.repo, c.data)
					if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
						t.Errorf("%s: push = %v, want %v", c.name, err, c.want)
						continue
					}
					if err == nil {
						continue
					}
					msg := errcode.From(err).Message
					for _, s := range []string{"project team", fmt.Sprintf("quota %d bytes", c.limit), fmt.Sprintf("usage %d bytes", before.Bytes)} {
						if !strings.Contains(msg, s) {
							t.Errorf("%s: message %q does not say %q", c.name, msg, s)
						}
					}
					if after := e.exact("team", before.Bytes); after.Blobs != before.Blobs {
						t.Errorf("%s: refused push changed the blob count", c.name)
					}
					if n := e.files(); n != files {
						t.Errorf("%s: refused push left %d blob files (had %d)", c.name, n, files)
					}
				}
				if len(told) != 2 || told[0] != "team 1000" || told[1] != "team 10" {
					t.Errorf("OnExceeded told %q, want the two refusals", told)
				}
				// A mount from another project adds bytes: refused the same way.
				dh, _ := e.push("other/a", content("h", 5000))
				if _, _, err := e.reg.Mount(ctx, "team/a", dh, "other/a", func(string) bool { return true }); !errors.Is(err, errcode.QuotaExceeded) {
					t.Errorf("mount past the quota = %v, want QUOTA DENIED", err)
				}
				if _, ok, err := e.reg.Mount(ctx, "team/z", dc, "team/a", func(string) bool { return true }); !ok || err != nil {
					t.Errorf("mount of a counted blob over the quota = %v, %v; want mounted", ok, err)
				}
				if _, err := e.quotas.Set(ctx, "docker.io", 10); !errors.Is(err, quota.ErrMirrored) {
					t.Errorf("quota on a mirrored namespace = %v, want ErrMirrored", err)
				}
			})
		}
	})
}

// TestConcurrentPushesBounded: many pushes of distinct blobs race into one project;
// exactly as many as fit are acknowledged, usage never passes the quota, and no refused
// bytes stay stored — with the early check, and with only the database's.
func TestConcurrentPushesBounded(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		for _, noAdmit := range []bool{false, true} {
			t.Run(fmt.Sprintf("earlyCheck=%t", !noAdmit), func(t *testing.T) {
				e := newEnv(t, b, noAdmit)
				const size, pushes, fit = 1000, 24, 7
				if _, err := e.quotas.Set(t.Context(), "team", fit*size+size/2); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				errs := make([]error, pushes)
				for i := range pushes {
					wg.Go(func() {
						_, errs[i] = e.push(fmt.Sprintf("team/r%d", i%5), content(fmt.Sprintf("blob-%02d", i), size))
					})
				}
				wg.Wait()
				ok := 0
				for i, err := range errs {
					switch {
					case err == nil:
						ok++
					case !errors.Is(err, errcode.QuotaExceeded):
						t.Errorf("push %d: %v, want success or QUOTA DENIED", i, err)
					}
				}
				if ok != fit {
					t.Errorf("%d pushes acknowledged, want exactly %d", ok, fit)
				}
				e.exact("team", fit*size)
				if n := e.files(); n != fit {
					t.Errorf("%d blob files stored, want %d", n, fit)
				}
				t.Logf("%d concurrent pushes of %d bytes, quota %d: %d acknowledged, usage %d", pushes, size, fit*size+size/2, ok, fit*size)
			})
		}
	})
}

// TestUsageExactUnderRandomConcurrency races pushes, mounts, manifests, deletes and GC
// over a small pool of shared blobs in two projects; the kept usage equals a recount
// from the rows at the end, after GC, and after everything is deleted.
func TestUsageExactUnderRandomConcurrency(t *testing.T) {
	forBackends(t, func(t *testing.T, b metatest.Backend) {
		e := newEnv(t, b, false)
		ctx := t.Context()
		pool := make([][]byte, 8)
		for i := range pool {
			pool[i] = content(fmt.Sprintf("pool-%d", i), 100*(i+1))
		}
		repos := []string{"team/a", "team/b", "team/c", "ops/a", "ops/b"}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for range 40 {
					repo := repos[rng.IntN(len(repos))]
					i, j := rng.IntN(len(pool)), rng.IntN(len(pool))
					var err error
					op := rng.IntN(6)
					switch op {
					case 0, 1:
						_, err = e.push(repo, pool[i])
					case 2:
						di, _ := e.push(repo, pool[i])
						dj, _ := e.push(repo, pool[j])
						payload := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
							`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
							`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, di, len(pool[i]), dj, len(pool[j]))
						_, err = e.reg.PutManifest(ctx, repo, registry.Reference{Tag: fmt.Sprintf("t%d", rng.IntN(3))}, "application/vnd.oci.image.manifest.v1+json", []byte(payload), nil)
					case 3:
						err = e.reg.DeleteBlob(ctx, repo, oci.Digest(fmt.Sprintf("sha256:%x", sha256Sum(pool[i]))))
					case 4:
						err = e.reg.DeleteManifest(ctx, repo, registry.Reference{Tag: fmt.Sprintf("t%d", rng.IntN(3))})
					case 5:
						if rng.IntN(4) == 0 {
							err = e.reg.DeleteRepository(ctx, repo)
						}
					}
					// Races lose with not-found/blob-unknown answers; only exactness matters.
					if c := errcode.From(err); err != nil && (c == nil || c.Desc.Status >= 500) {
						t.Errorf("operation failed: %v", err)
					}
				}
			})
		}
		wg.Wait()
		for _, p := range []string{"team", "ops"} {
			e.exact(p, -1)
		}
		e.gc()
		for _, p := range []string{"team", "ops"} {
			e.exact(p, -1)
		}
		for _, r := range repos {
			if err := e.reg.DeleteRepository(ctx, r); err != nil && !errors.Is(err, errcode.NameUnknown) {
				t.Fatal(err)
			}
		}
		e.gc()
		for _, p := range []string{"team", "ops"} {
			e.exact(p, 0)
		}
	})
}
