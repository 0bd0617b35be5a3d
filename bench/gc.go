package main

// The gc phase (issue 9): a registry holding -gc-blobs small blobs, half of them made
// garbage the way users make it (images pushed, then their manifests deleted), and the
// time each registry takes to reclaim them. Berth collects online (reviewAfter 0) while
// the benchmark keeps pulling manifests and pushing small images; Distribution must be
// stopped for `registry garbage-collect`.

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// gcRepos spreads the images over this many repositories.
const gcRepos = 10

// gcPushEvery paces the push client that runs during GC.
const gcPushEvery = 500 * time.Millisecond

// gcLimit bounds Berth's reclaim (and the load running meanwhile): what is left of the
// run's -timeout.
func gcLimit(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 24 * time.Hour
}

// gcImage is image i of the phase: even images are kept, odd ones deleted.
type gcImage struct {
	repo, tag, salt string
	blobs           [][]byte // the layers
	bytes           int64    // layers + config
}

func gcRepo(i int) string { return fmt.Sprintf("gc/app-%02d", i%gcRepos) }
func gcTag(i int) string  { return fmt.Sprintf("v%05d", i) }
func gcKept(i int) bool   { return i%2 == 0 }

func (b *bench) gcImage(i int) gcImage {
	img := gcImage{repo: gcRepo(i), tag: gcTag(i), salt: fmt.Sprint("gc-", i)}
	descs := make([]descriptor, b.o.gcLayers)
	for j := range descs {
		seed := uint64(20_000_000 + i*b.o.gcLayers + j)
		size := 1024 + rand.New(rand.NewPCG(seed, 9)).Int64N(3073) // 1-4 KiB
		data := randBytes(seed, size)
		img.blobs = append(img.blobs, data)
		descs[j] = descriptor{MediaType: mtOCILayer, Digest: digestOf(data), Size: size}
		img.bytes += size
	}
	img.bytes += int64(len(imageConfig(descs, img.salt))) // what pushImage stores as the config
	return img
}

// gcFill is what the fill pushed.
type gcFill struct {
	images    int
	digests   []string // manifest digest per image
	keptBlobs int      // layers + configs of the kept images
	keptBytes int64
	garbage   int64 // bytes of the deleted images' layers and configs
	took      time.Duration
}

// gcFillRegistry pushes every image with plain HTTP (POST + monolithic PUT per blob, then the
// manifest), b.o.conns images at a time.
func (b *bench) gcFillRegistry(ctx context.Context, t *target) (gcFill, error) {
	n := b.o.gcBlobs / b.o.gcLayers
	f := gcFill{images: n, digests: make([]string, n)}
	var mu sync.Mutex
	var next, done atomic.Int64
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for range b.o.conns {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				img := b.gcImage(i)
				dgst, err := t.http.pushImage(ctx, img.repo, img.tag, img.blobs, img.salt)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("push %s:%s to %s: %w", img.repo, img.tag, t.name, err)
				}
				f.digests[i] = dgst
				if gcKept(i) {
					f.keptBlobs += len(img.blobs) + 1
					f.keptBytes += img.bytes
				} else {
					f.garbage += img.bytes
				}
				mu.Unlock()
				if err != nil {
					next.Store(int64(n)) // stop the others
					return
				}
				if d := done.Add(1); d%int64(max(n/5, 1)) == 0 {
					logf("  gc fill %s: %d of %d images (%d blobs) in %.1fs", t.name, d, n, d*int64(b.o.gcLayers+1), time.Since(start).Seconds())
				}
			}
		})
	}
	wg.Wait()
	f.took = time.Since(start)
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return f, firstErr
}

// gcDeleteGarbage deletes the odd images' manifests by digest, 8 clients at a time, the
// way a user or a retention job deletes images.
func (b *bench) gcDeleteGarbage(ctx context.Context, t *target, f gcFill) (int, error) {
	var next atomic.Int64
	var failed atomic.Int64
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(2) - 1) // 1, 3, 5, ...
				if i >= f.images {
					return
				}
				if err := t.http.deleteManifest(ctx, gcRepo(i), f.digests[i]); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
		})
	}
	wg.Wait()
	return int(failed.Load()), firstErr
}

// storedBlobs counts the regular files under a blob root and their bytes.
func storedBlobs(root string) (files int, bytes int64) {
	_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			files++
			bytes += info.Size()
		}
		return nil
	})
	return files, bytes
}

// gcVerify pulls 50 of the kept images, spread evenly (manifest, config, layers, lengths
// checked), or all of them if there are fewer.
func (b *bench) gcVerify(ctx context.Context, t *target, f gcFill) (int, error) {
	pulled := 0
	for i := 0; i < f.images; i += 2 * max(1, f.images/2/50) {
		if _, err := t.http.pullImage(ctx, gcRepo(i), gcTag(i), 3); err != nil {
			return pulled, fmt.Errorf("kept image %s:%s after GC on %s: %w", gcRepo(i), gcTag(i), t.name, err)
		}
		pulled++
	}
	return pulled, nil
}

// gcResult is one registry's figures.
type gcResult struct {
	fill                 gcFill
	reclaim, offline     time.Duration
	reclaimed            int64 // bytes gone from the blob root
	before, during       rateResult
	failed               int64 // client requests that failed during GC
	pushesOK, pushesBad  int64
	lagMean, oldestDue   float64
	filesBefore, filesAf int
	quiet                bool // -gc-quiet: no client load during GC
	notes                []string
}

// phaseGC fills a fresh instance of each registry, deletes half of the images and
// measures the reclaim.
func (b *bench) phaseGC(ctx context.Context) error {
	if b.o.gcBlobs/b.o.gcLayers < 2 {
		return fmt.Errorf("-gc-blobs %d makes fewer than 2 images of %d layers", b.o.gcBlobs, b.o.gcLayers)
	}
	res := map[string]*gcResult{}
	run := map[string]func(context.Context) (*gcResult, error){"berth": b.gcBerth, "distribution": b.gcDistribution}
	for _, name := range b.o.targets {
		if run[name] == nil {
			b.res.note("gc %s: not run (the phase drives Berth's online collector and Distribution's offline garbage-collect)", name)
			continue
		}
		r, err := run[name](ctx)
		if err != nil {
			return err
		}
		res[name] = r
	}
	vals := func(f func(r *gcResult) float64) map[string]float64 {
		m := map[string]float64{}
		for name, r := range res {
			if v := f(r); v == v { // NaN: not applicable
				m[name] = v
			}
		}
		return m
	}
	images := b.o.gcBlobs / b.o.gcLayers
	b.res.add("gc", fmt.Sprintf("fill: %d images x %d layers of 1-4KiB (+config), POST+PUT, %d conns", images, b.o.gcLayers, b.o.conns), "blobs/s",
		vals(func(r *gcResult) float64 { return float64(r.fill.images*(b.o.gcLayers+1)) / r.fill.took.Seconds() }))
	quiet := " (Berth under client load)"
	if b.o.gcQuiet {
		quiet = " (no client load, -gc-quiet)"
	}
	b.res.add("gc", fmt.Sprintf("reclaim %d deleted images: first DELETE until bytes gone", images/2)+quiet, "s",
		vals(func(r *gcResult) float64 { return r.reclaim.Seconds() }))
	b.res.add("gc", "reclaimed (bytes gone from the blob root / reclaim time)", "MB/s",
		vals(func(r *gcResult) float64 { return mbps(r.reclaimed, r.reclaim) }))
	b.res.add("gc", "registry offline for GC", "s", vals(func(r *gcResult) float64 { return r.offline.Seconds() }))
	fig := fmt.Sprintf("manifest GET by tag (kept image), %d conns", b.o.conns)
	b.res.add("gc", fig+", without GC", "req/s", vals(func(r *gcResult) float64 { return r.before.perSecond() }))
	b.res.add("gc", fig+", during GC", "req/s", vals(func(r *gcResult) float64 {
		if r.quiet {
			return nan
		}
		if r.during.elapsed == 0 {
			return 0 // offline
		}
		return r.during.perSecond()
	}))
	b.res.add("gc", "manifest GET during GC, % of without", "%", vals(func(r *gcResult) float64 {
		if r.quiet {
			return nan
		}
		if r.during.elapsed == 0 {
			return 0
		}
		return 100 * r.during.perSecond() / r.before.perSecond()
	})).target(">=80%", atLeast(80))
	b.res.add("gc", fmt.Sprintf("small-image pushes during GC (1 client, one every %s)", gcPushEvery), "pushes", vals(func(r *gcResult) float64 {
		if r.quiet {
			return nan
		}
		return float64(r.pushesOK)
	}))
	b.res.add("gc", "failed client requests during GC (GETs, DELETEs, pushes)", "requests", vals(func(r *gcResult) float64 {
		if r.during.elapsed == 0 && !r.quiet {
			return nan // offline: every request would fail
		}
		return float64(r.failed)
	})).target("0", atMost(0))
	b.res.add("gc", "review lag, mean (berth_gc_review_lag_seconds)", "s", vals(func(r *gcResult) float64 { return r.lagMean }))
	b.res.add("gc", "review lag, max oldest due task (berth_jobs_oldest_due_seconds)", "s", vals(func(r *gcResult) float64 { return r.oldestDue }))
	for name := range res {
		for _, n := range res[name].notes {
			b.res.note("gc %s: %s", name, n)
		}
	}
	return nil
}

// gcBerth: fill a new Berth with the default reviewAfter (24h: the fill's own uploads
// are not reviewed while their images are being pushed), restart it with reviewAfter 0,
// then delete and measure while a manifest GET load and a push client run.
func (b *bench) gcBerth(ctx context.Context) (*gcResult, error) {
	r := &gcResult{}
	data := filepath.Join(b.dir, "gc-berth-data")
	t, err := b.startBerthWith(ctx, berthSpec{name: "berth", logName: "gc-berth-fill", data: data, noSettle: true})
	if err != nil {
		return nil, err
	}
	if r.fill, err = b.gcFillRegistry(ctx, t); err != nil {
		return nil, err
	}
	logf("  gc fill berth: %d images in %.1fs", r.fill.images, r.fill.took.Seconds())
	t.stop()
	t, err = b.startBerthWith(ctx, berthSpec{name: "berth", logName: "gc-berth", data: data, config: "gc:\n  reviewAfter: 0s\n", noSettle: true,
		profiled: b.o.profileDir != ""})
	if err != nil {
		return nil, err
	}
	defer t.stop()
	root := filepath.Join(data, "storage", "blobs")
	var bytesBefore int64
	r.filesBefore, bytesBefore = storedBlobs(root)
	accept := map[string]string{"Accept": acceptAll}
	kept := b.gcImage(0)
	path := "/v2/" + kept.repo + "/manifests/" + kept.tag
	syscall.Sync()
	if r.before, err = loadGen(ctx, t, http.MethodGet, path, accept, b.o.conns, b.o.warmup, b.o.duration, "gc-manifest-get-before"); err != nil {
		return nil, err
	}
	m0, err := t.http.metrics(ctx)
	if err != nil {
		return nil, err
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	var loadErr error
	r.quiet = b.o.gcQuiet
	wg.Go(func() {
		if r.quiet {
			return
		}
		r.during, loadErr = loadUntil(ctx, t, http.MethodGet, path, accept, b.o.conns, done, gcLimit(ctx), "gc-manifest-get-during")
	})
	var pushErr string
	var liveBytes int64
	wg.Go(func() {
		// A probe, not a load: every push queues reviews due at once (reviewAfter 0), and
		// a push loop would feed the collector as fast as it drains.
		layer := randBytes(29_000_000, 4096)
		tick := time.NewTicker(gcPushEvery)
		defer tick.Stop()
		for n := 0; !r.quiet; n++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			layer[0], layer[1], layer[2] = byte(n), byte(n>>8), byte(n>>16) // a new layer each push
			salt := fmt.Sprint("live-", n)
			if _, err := t.http.pushImage(ctx, "gc/live", fmt.Sprintf("p%06d", n), [][]byte{layer}, salt); err != nil {
				r.pushesBad++
				if pushErr == "" {
					pushErr = err.Error()
				}
				continue
			}
			r.pushesOK++
			cfg := imageConfig([]descriptor{{MediaType: mtOCILayer, Digest: digestOf(layer), Size: int64(len(layer))}}, salt) // as pushImage stores it
			liveBytes += int64(len(layer) + len(cfg))
		}
	})
	t.profileStart("gc-reclaim")
	w := openWindow(t)
	start := time.Now()
	delFailed, delErr := b.gcDeleteGarbage(ctx, t, r.fill)
	logf("  gc berth: deleted %d manifests in %.2fs (%d failed)", r.fill.images/2, time.Since(start).Seconds(), delFailed)
	freedKey := "berth_gc_bytes_freed_total"
	var pollErr error
	limit := gcLimit(ctx)
	for {
		m, err := t.http.metrics(ctx)
		if err == nil {
			_, oldest := sumPrefix(m, `berth_jobs_oldest_due_seconds{kind="gc.`)
			r.oldestDue = max(r.oldestDue, oldest)
			if m[freedKey]-m0[freedKey] >= float64(r.fill.garbage) {
				break
			}
		}
		if time.Since(start) > limit {
			pollErr = fmt.Errorf("gc on berth: bytes not reclaimed after %s (freed %.0f of %d)", limit.Round(time.Second), m[freedKey]-m0[freedKey], r.fill.garbage)
			break
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			pollErr = err
			break
		}
	}
	r.reclaim = time.Since(start)
	_, cpu := w.close("berth gc-reclaim")
	t.profileStop()
	close(done)
	wg.Wait()
	if pollErr != nil {
		return nil, pollErr
	}
	logf("  gc berth: reclaimed in %.2fs; %d manifest GETs (%d failed), %d pushes (%d failed)",
		r.reclaim.Seconds(), r.during.requests, r.during.errors, r.pushesOK, r.pushesBad)
	m1, err := t.http.metrics(ctx)
	if err != nil {
		return nil, err
	}
	lagSum := m1["berth_gc_review_lag_seconds_sum"] - m0["berth_gc_review_lag_seconds_sum"]
	if n := m1["berth_gc_review_lag_seconds_count"] - m0["berth_gc_review_lag_seconds_count"]; n > 0 {
		r.lagMean = lagSum / n
	}
	r.failed = r.during.errors + int64(delFailed) + r.pushesBad
	delta := func(prefix string) float64 {
		s1, _ := sumPrefix(m1, prefix)
		s0, _ := sumPrefix(m0, prefix)
		return s1 - s0
	}
	runs := delta(`berth_jobs_runs_total{kind="gc.`)
	handler := delta(`berth_jobs_run_duration_seconds_sum{kind="gc.`)
	handled := delta(`berth_jobs_run_duration_seconds_count{kind="gc.`)
	serving := " (serving the load too)"
	if r.quiet {
		serving = " (no client load)"
	}
	r.notes = append(r.notes, fmt.Sprintf("collector: %.0f GC task runs during the reclaim (%.0f/s), handler time %.1f ms mean; Berth CPU %.1fs over the %.1fs%s",
		runs, runs/r.reclaim.Seconds(), 1000*handler/max(handled, 1), cpu.Seconds(), r.reclaim.Seconds(), serving))
	var bytesAfter int64
	r.filesAf, bytesAfter = storedBlobs(root)
	// The pushes during GC added one layer and one config each; count them back out.
	r.reclaimed = bytesBefore + liveBytes - bytesAfter
	liveFiles := int(2 * r.pushesOK)
	if r.filesAf != r.fill.keptBlobs+liveFiles {
		msg := fmt.Sprintf("the blob root holds %d files after GC, want %d (kept images' layers and configs) + %d (pushed during GC)",
			r.filesAf, r.fill.keptBlobs, liveFiles)
		if r.pushesBad == 0 {
			return nil, fmt.Errorf("gc on berth: %s", msg)
		}
		// A failed push may leave blobs that GC has not reviewed yet.
		r.notes = append(r.notes, "MISMATCH: "+msg+fmt.Sprintf(" (%d pushes failed)", r.pushesBad))
	}
	pulled, err := b.gcVerify(ctx, t, r.fill)
	if err != nil {
		return nil, err
	}
	r.notes = append(r.notes,
		fmt.Sprintf("blob root %d files, %.1f MB before; %d files after (%d kept + %d pushed during GC); %.1f MB freed (berth_gc_bytes_freed_total), %d kept images pulled and checked after GC",
			r.filesBefore, float64(bytesBefore)/1e6, r.filesAf, r.fill.keptBlobs, liveFiles, (m1[freedKey]-m0[freedKey])/1e6, pulled),
		fmt.Sprintf("during GC: %d manifest GETs (%d failed), %d manifest DELETEs (%d failed), %d small-image pushes (%d failed%s); reviewAfter 0 after a fill with the default 24h, metrics polled every 0.5s",
			r.during.requests, r.during.errors, r.fill.images/2, delFailed, r.pushesOK, r.pushesBad, firstErrNote(pushErr, delErr, loadErr)))
	return r, nil
}

func firstErrNote(push string, errs ...error) string {
	if push != "" {
		return "; first: " + push
	}
	for _, err := range errs {
		if err != nil {
			return "; first: " + err.Error()
		}
	}
	return ""
}

// gcDistribution: fill a new Distribution, delete the same manifests, stop it, run
// `registry garbage-collect --delete-untagged`, start it again.
func (b *bench) gcDistribution(ctx context.Context) (*gcResult, error) {
	r := &gcResult{}
	bin, err := findTool(b.o.registry, "registry")
	if err != nil {
		return nil, err
	}
	root := filepath.Join(b.dir, "gc-distribution-data")
	const logName = "gc-distribution"
	t, err := b.startDistributionWith(ctx, logName, root, "", true)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	if r.fill, err = b.gcFillRegistry(ctx, t); err != nil {
		return nil, err
	}
	logf("  gc fill distribution: %d images in %.1fs", r.fill.images, r.fill.took.Seconds())
	kept := b.gcImage(0)
	syscall.Sync()
	if r.before, err = loadGen(ctx, t, http.MethodGet, "/v2/"+kept.repo+"/manifests/"+kept.tag, map[string]string{"Accept": acceptAll},
		b.o.conns, b.o.warmup, b.o.duration, "gc-manifest-get-before"); err != nil {
		return nil, err
	}
	start := time.Now()
	if failed, err := b.gcDeleteGarbage(ctx, t, r.fill); err != nil {
		return nil, fmt.Errorf("delete manifests on distribution: %d failed: %w", failed, err)
	}
	deletes := time.Since(start)
	offline := time.Now()
	t.stop()
	blobRoot := filepath.Join(root, "docker", "registry", "v2", "blobs")
	var bytesBefore, bytesAfter int64
	r.filesBefore, bytesBefore = storedBlobs(blobRoot)
	gcLog, err := os.Create(filepath.Join(b.dir, "gc-distribution-garbage-collect.log"))
	if err != nil {
		return nil, err
	}
	defer gcLog.Close()
	gcStart := time.Now()
	cmd := exec.CommandContext(ctx, bin, "garbage-collect", "--delete-untagged", filepath.Join(b.dir, logName+".yml"))
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = gcLog, gcLog
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("registry garbage-collect: %w (see %s)", err, gcLog.Name())
	}
	gcTook := time.Since(gcStart)
	r.reclaim = time.Since(start)
	r.filesAf, bytesAfter = storedBlobs(blobRoot)
	r.reclaimed = bytesBefore - bytesAfter
	t2, err := b.startDistributionWith(ctx, logName+"-restarted", root, "", true)
	if err != nil {
		return nil, err
	}
	defer t2.stop()
	r.offline = time.Since(offline)
	logf("  gc distribution: deletes %.2fs, garbage-collect %.2fs, offline %.2fs; %d -> %d files", deletes.Seconds(), gcTook.Seconds(), r.offline.Seconds(), r.filesBefore, r.filesAf)
	// Distribution stores manifests as blobs too: the kept images' manifests stay.
	if want := r.fill.keptBlobs + r.fill.images/2; r.filesAf != want {
		return nil, fmt.Errorf("gc on distribution: the blob root holds %d files after garbage-collect, want %d (kept layers, configs and manifests)", r.filesAf, want)
	}
	pulled, err := b.gcVerify(ctx, t2, r.fill)
	if err != nil {
		return nil, err
	}
	r.oldestDue, r.lagMean = nan, nan
	r.notes = append(r.notes, fmt.Sprintf("blob root %d files, %.1f MB before; %d after (kept layers, configs and manifests: Distribution stores manifests as blobs), %.1f MB freed; manifest DELETEs %.2fs, stop + `registry garbage-collect --delete-untagged` %.2fs, restart; offline %.2fs (reads and pushes during GC: 0, refused); %d kept images pulled and checked after the restart",
		r.filesBefore, float64(bytesBefore)/1e6, r.filesAf, float64(r.reclaimed)/1e6, deletes.Seconds(), gcTook.Seconds(), r.offline.Seconds(), pulled))
	return r, nil
}
