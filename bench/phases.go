package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// measure runs fn against t and returns its wall time and t's CPU time meanwhile. With
// profile set it also brackets fn with a CPU profile of Berth named key (-profile mode).
func measure(t *target, key string, profile bool, fn func() error) (time.Duration, time.Duration, error) {
	if profile {
		t.profileStart(key)
		defer t.profileStop()
	}
	w := openWindow(t)
	err := fn()
	el, cpu := w.close(t.name + " " + key)
	return el, cpu, err
}

// repeated runs fn b.o.reps times on every target, alternating which registry goes
// first, after a sync so that no one's dirty pages are written back during another's
// turn. It returns each target's median wall time and its total CPU time. Berth is
// profiled (in -profile mode) across all of its repetitions.
func (b *bench) repeated(key string, fn func(t *target, rep int) error) (map[string]time.Duration, map[string]time.Duration, error) {
	times := map[string][]time.Duration{}
	cpu := map[string]time.Duration{}
	for _, t := range b.targets {
		t.profileStart(key)
	}
	defer func() {
		for _, t := range b.targets {
			t.profileStop()
		}
	}()
	for rep := range b.o.reps {
		for _, t := range rotated(b.targets, rep) {
			syscall.Sync()
			el, c, err := measure(t, key, false, func() error { return fn(t, rep) })
			if err != nil {
				return nil, nil, fmt.Errorf("%s on %s: %w", key, t.name, err)
			}
			times[t.name] = append(times[t.name], el)
			cpu[t.name] += c
			logf("  %s #%d %s: %.3fs, CPU %.2fs", key, rep+1, t.name, el.Seconds(), c.Seconds())
		}
	}
	med := map[string]time.Duration{}
	for name, ts := range times {
		med[name] = median(ts)
	}
	return med, cpu, nil
}

func randBytes(seed uint64, n int64) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	buf := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(buf)
	return buf
}

// bigBlob is the big random layer on disk.
type bigBlob struct {
	dir    string // served by the reference file server
	path   string
	size   int64
	digest string
}

func (b *bench) bigLayer() (*bigBlob, error) {
	if b.big != nil {
		return b.big, nil
	}
	dir := filepath.Join(b.dir, "src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "layer.bin")
	logf("writing %s of random bytes to %s", fmtSize(b.o.size), path)
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var seed [32]byte
	copy(seed[:], "berth-bench big layer")
	rng := rand.NewChaCha8(seed)
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := b.o.size; left > 0; {
		n := min(int64(len(buf)), left)
		_, _ = rng.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			return nil, err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	b.big = &bigBlob{dir: dir, path: path, size: b.o.size, digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}
	return b.big, nil
}

// layoutBlob is a blob of an OCI image layout: bytes, or a file to hard-link.
type layoutBlob struct {
	digest   string
	data     []byte
	linkFrom string
}

// writeLayout writes an OCI image layout holding one image, for `crane push DIR`.
func writeLayout(dir string, manifest []byte, blobs []layoutBlob) error {
	bdir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	mdgst := digestOf(manifest)
	blobs = append(blobs, layoutBlob{digest: mdgst, data: manifest})
	for _, bl := range blobs {
		p := filepath.Join(bdir, strings.TrimPrefix(bl.digest, "sha256:"))
		var err error
		if bl.linkFrom != "" {
			err = os.Link(bl.linkFrom, p)
		} else {
			err = os.WriteFile(p, bl.data, 0o644)
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{{MediaType: mtOCIManifest, Digest: mdgst, Size: int64(len(manifest))}},
	})
	return os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644)
}

// runCrane runs crane with its state kept in the scratch directory.
func (b *bench) runCrane(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.crane, args...)
	home := filepath.Join(b.dir, "home")
	_ = os.MkdirAll(filepath.Join(home, "docker"), 0o755)
	cmd.Env = cleanEnv("HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, "docker"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("crane %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// phasePush: the big layer pushed three ways, each registry in turn.
func (b *bench) phasePush(ctx context.Context) error {
	big, err := b.bigLayer()
	if err != nil {
		return err
	}
	// crane pushes an OCI layout: one image whose only layer is the big file (hard-linked).
	layer := descriptor{MediaType: mtOCILayer, Digest: big.digest, Size: big.size}
	cfg := imageConfig([]descriptor{layer}, "big")
	man := manifestFor(cfg, []descriptor{layer})
	layout := filepath.Join(b.dir, "layout-big")
	if err := writeLayout(layout, man, []layoutBlob{{digest: big.digest, linkFrom: big.path}, {digest: digestOf(cfg), data: cfg}}); err != nil {
		return err
	}
	variants := []struct {
		key, figure string
		push        func(t *target, rep int) error
	}{
		// Each repetition pushes into a new repository: clients check blob existence per
		// repository, so every push really uploads (the registries then deduplicate).
		{"push-crane", "push " + fmtSize(big.size) + " layer: crane push (OCI layout)", func(t *target, rep int) error {
			return b.runCrane(ctx, "push", layout, fmt.Sprintf("%s/bench/crane-big-%d:v1", t.host, rep))
		}},
		{"push-monolithic", "push " + fmtSize(big.size) + " layer: HTTP POST + PUT", func(t *target, rep int) error {
			f, err := os.Open(big.path)
			if err != nil {
				return err
			}
			defer f.Close()
			repo := "bench/http-mono"
			if rep > 0 {
				repo = fmt.Sprintf("bench/http-mono-%d", rep)
			}
			return t.http.pushMonolithic(ctx, repo, big.digest, f, big.size)
		}},
		{"push-chunked", "push " + fmtSize(big.size) + " layer: HTTP PATCH " + fmtSize(b.o.chunk) + " chunks", func(t *target, rep int) error {
			f, err := os.Open(big.path)
			if err != nil {
				return err
			}
			defer f.Close()
			return t.http.pushChunked(ctx, fmt.Sprintf("bench/http-chunked-%d", rep), big.digest, f, big.size, b.o.chunk)
		}},
	}
	limit, err := b.pushLimit(ctx)
	if err != nil {
		return err
	}
	for _, v := range variants {
		times, cpus, err := b.repeated(v.key, v.push)
		if err != nil {
			return err
		}
		speed, cpu := map[string]float64{}, map[string]float64{}
		for _, t := range b.targets {
			speed[t.name] = mbps(big.size, times[t.name])
			cpu[t.name] = cpuPerGB(cpus[t.name], big.size*int64(b.o.reps))
		}
		b.res.add("throughput", v.figure, "MB/s", speed).relative(">=1.3x Dist", 1.3)
		b.limitRow(v.figure, speed, limit, "socket -> sha256 -> write -> fsync").target(">=80%", atLeast(80))
		b.res.add("registry CPU", v.figure, "CPU s/GB", cpu)
	}
	return nil
}

// phasePull: the big blob fetched with a plain HTTP GET, against the same file served by
// a plain Go http.FileServer.
func (b *bench) phasePull(ctx context.Context) error {
	big, err := b.bigLayer()
	if err != nil {
		return err
	}
	const repo = "bench/http-mono"
	for _, t := range b.targets {
		ok, err := t.http.blobExists(ctx, repo, big.digest)
		if err != nil {
			return err
		}
		if !ok {
			logf("  pushing the big layer to %s (not measured)", t.name)
			f, err := os.Open(big.path)
			if err != nil {
				return err
			}
			err = t.http.pushMonolithic(ctx, repo, big.digest, f, big.size)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	fs, err := b.startFileServer(ctx, big.dir)
	if err != nil {
		return err
	}
	paths := map[string]string{"fileserver": "/" + filepath.Base(big.path)}
	for _, t := range b.targets {
		paths[t.name] = "/v2/" + repo + "/blobs/" + big.digest
	}
	buf := make([]byte, 1<<20)
	times := map[string][]time.Duration{}
	cpus := map[string]time.Duration{}
	for _, t := range b.targets {
		t.profileStart("pull")
		defer t.profileStop()
	}
	// A pull takes a fraction of a second: repeat it more often than the other figures.
	reps := 3 * b.o.reps
	var raw []time.Duration // the pipeline limit's pulls
	for rep := range reps {
		el, err := rawPull(ctx, fs, big, buf)
		if err != nil {
			return err
		}
		raw = append(raw, el)
		logf("  pull #%d pipeline limit (raw sendfile): %.3fs, %.0f MB/s", rep+1, el.Seconds(), mbps(big.size, el))
		for _, t := range append([]*target{fs}, rotated(b.targets, rep)...) {
			var n int64
			el, c, err := measure(t, "pull", false, func() error {
				var err error
				n, err = t.http.getCount(ctx, paths[t.name], buf)
				return err
			})
			if err != nil {
				return fmt.Errorf("pull from %s: %w", t.name, err)
			}
			if n != big.size {
				return fmt.Errorf("pull from %s: got %d bytes, want %d", t.name, n, big.size)
			}
			times[t.name] = append(times[t.name], el)
			cpus[t.name] += c
			logf("  pull #%d %s: %.3fs, %.0f MB/s, CPU %.2fs", rep+1, t.name, el.Seconds(), mbps(n, el), c.Seconds())
		}
	}
	speed, pct, cpu := map[string]float64{}, map[string]float64{}, map[string]float64{}
	ref := mbps(big.size, median(times["fileserver"]))
	for _, t := range b.targets {
		speed[t.name] = mbps(big.size, median(times[t.name]))
		pct[t.name] = 100 * speed[t.name] / ref
		cpu[t.name] = cpuPerGB(cpus[t.name], big.size*int64(reps))
	}
	fig := "pull " + fmtSize(big.size) + " blob: HTTP GET"
	b.res.add("throughput", fig, "MB/s", speed)
	b.res.add("throughput", fig+", % of plain Go file server", "%", pct).target(">=90%", atLeast(90))
	b.limitRow(fig, speed, b.pullLimit(big, raw), "sendfile")
	b.res.add("registry CPU", fig, "CPU s/GB", cpu)
	b.res.note("pull reference: plain Go http.FileServer (separate process) serving the same source file: %.0f MB/s, %.2f CPU s/GB (median of %d)",
		ref, cpuPerGB(cpus["fileserver"], big.size*int64(reps)), reps)
	return nil
}

// phaseLayers: one image of many small layers, with crane and with a plain HTTP client.
func (b *bench) phaseLayers(ctx context.Context) error {
	n, size := b.o.layers, b.o.layerSize
	build := func(seed uint64) ([][]byte, []descriptor, []byte, []byte) {
		blobs := make([][]byte, n)
		descs := make([]descriptor, n)
		for i := range blobs {
			blobs[i] = randBytes(seed+uint64(i), size)
			descs[i] = descriptor{MediaType: mtOCILayer, Digest: digestOf(blobs[i]), Size: size}
		}
		cfg := imageConfig(descs, fmt.Sprint("layers-", seed))
		return blobs, descs, cfg, manifestFor(cfg, descs)
	}
	// crane: an OCI layout of the image.
	blobs, descs, cfg, man := build(1_000_000)
	lbs := []layoutBlob{{digest: digestOf(cfg), data: cfg}}
	for i := range blobs {
		lbs = append(lbs, layoutBlob{digest: descs[i].Digest, data: blobs[i]})
	}
	layout := filepath.Join(b.dir, "layout-layers")
	if err := writeLayout(layout, man, lbs); err != nil {
		return err
	}
	// plain HTTP: other bytes, 4 connections (as crane's default 4 jobs), then the manifest.
	hblobs, _, hcfg, hman := build(2_000_000)
	httpPush := func(t *target, rep int) error {
		repo := fmt.Sprintf("bench/http-layers-%d", rep)
		jobs := make(chan int)
		errc := make(chan error, 4)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					if _, err := t.http.pushBytes(ctx, repo, hblobs[i]); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
	feed:
		for i := range hblobs {
			select {
			case jobs <- i:
			case err := <-errc:
				close(jobs)
				wg.Wait()
				return err
			case <-ctx.Done():
				break feed
			}
		}
		close(jobs)
		wg.Wait()
		select {
		case err := <-errc:
			return err
		default:
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := t.http.pushBytes(ctx, repo, hcfg); err != nil {
			return err
		}
		return t.http.putManifest(ctx, repo, "v1", mtOCIManifest, hman)
	}
	fig := fmt.Sprintf("%d x %s layers, one image", n, fmtSize(size))
	variants := []struct {
		key, figure string
		push        func(t *target, rep int) error
	}{
		{"layers-crane", fig + ": crane push", func(t *target, rep int) error {
			return b.runCrane(ctx, "push", layout, fmt.Sprintf("%s/bench/crane-layers-%d:v1", t.host, rep))
		}},
		{"layers-http", fig + ": HTTP POST+PUT, 4 conns", httpPush},
	}
	for _, v := range variants {
		times, cpus, err := b.repeated(v.key, v.push)
		if err != nil {
			return err
		}
		secs, cpu := map[string]float64{}, map[string]float64{}
		for _, t := range b.targets {
			secs[t.name] = times[t.name].Seconds()
			cpu[t.name] = cpus[t.name].Seconds() * 1000 / float64(n*b.o.reps)
		}
		b.res.add("time", v.figure, "s", secs)
		b.res.add("registry CPU", v.figure, "CPU ms/layer", cpu)
	}
	return nil
}

// smallImage is a one-layer image pushed once per registry (manifest and blob HEAD phases).
type smallImage struct {
	repo, tag, manifest, layer string
}

func (b *bench) smallImage(ctx context.Context, t *target) (smallImage, error) {
	layer := randBytes(3_000_000, 4096)
	img := smallImage{repo: "bench/manifest", tag: "v1", layer: digestOf(layer)}
	var err error
	img.manifest, err = t.http.pushImage(ctx, img.repo, img.tag, [][]byte{layer}, "manifest")
	return img, err
}

// rate runs one request-rate figure on every target. The measured duration is cut into
// slices of about a second that alternate between the registries, so load from outside
// the benchmark, if any, falls on both alike.
func (b *bench) rate(ctx context.Context, key, method string, path func(t *target) string, header map[string]string) (map[string]float64, map[string]float64, error) {
	for _, t := range b.targets {
		// One checked request first, for a readable error.
		req, _ := http.NewRequestWithContext(ctx, method, t.http.url(path(t)), nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		if _, err := t.http.do(req, false, http.StatusOK); err != nil {
			return nil, nil, err
		}
	}
	nslices := max(1, int(b.o.duration/time.Second))
	slice := b.o.duration / time.Duration(nslices)
	sum := map[string]*rateResult{}
	for _, t := range b.targets {
		sum[t.name] = &rateResult{}
		t.profileStart(key)
	}
	defer func() {
		for _, t := range b.targets {
			t.profileStop()
		}
	}()
	for i := range nslices {
		order := rotated(b.targets, i)
		for _, t := range order {
			r, err := loadGen(ctx, t, method, path(t), header, b.o.conns, b.o.warmup, slice, key)
			if err != nil {
				return nil, nil, err
			}
			s := sum[t.name]
			s.requests += r.requests
			s.elapsed += r.elapsed
			s.cpu += r.cpu
			s.client += r.client
		}
	}
	rps, cpu := map[string]float64{}, map[string]float64{}
	for _, t := range b.targets {
		r := sum[t.name]
		rps[t.name], cpu[t.name] = r.perSecond(), r.cpuPerRequestMS()
		logf("  %s %s: %d requests in %.2fs = %.0f req/s, server CPU %.3f ms/req, load generator CPU %.3f ms/req",
			key, t.name, r.requests, r.elapsed.Seconds(), rps[t.name], cpu[t.name], r.client.Seconds()*1000/float64(r.requests))
	}
	return rps, cpu, nil
}

// rotated is s with its first rep % len(s) elements moved to the end: over len(s)
// repetitions every target goes first once (for two targets, alternation).
func rotated[T any](s []T, rep int) []T {
	if len(s) == 0 {
		return nil
	}
	k := rep % len(s)
	return append(append([]T{}, s[k:]...), s[:k]...)
}

// phaseManifest: manifest GET and HEAD by tag and by digest.
func (b *bench) phaseManifest(ctx context.Context) error {
	imgs := map[string]smallImage{}
	for _, t := range b.targets {
		img, err := b.smallImage(ctx, t)
		if err != nil {
			return err
		}
		imgs[t.name] = img
	}
	accept := map[string]string{"Accept": acceptAll}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, by := range []string{"tag", "digest"} {
			path := func(t *target) string {
				img := imgs[t.name]
				ref := img.tag
				if by == "digest" {
					ref = img.manifest
				}
				return "/v2/" + img.repo + "/manifests/" + ref
			}
			key := "manifest-" + strings.ToLower(method) + "-" + by
			fig := fmt.Sprintf("manifest %s by %s, %d conns", method, by, b.o.conns)
			rps, cpu, err := b.rate(ctx, key, method, path, accept)
			if err != nil {
				return err
			}
			b.res.add("request rate", fig, "req/s", rps).relative(">=4x Dist", 4) // issue 12 (and >= 2x zot: Berth/zot column)
			b.res.add("registry CPU", fig, "CPU ms/req", cpu).target("<=0.08", atMost(0.08))
		}
	}
	return nil
}

// phaseBlobHead: blob HEAD requests.
func (b *bench) phaseBlobHead(ctx context.Context) error {
	imgs := map[string]smallImage{}
	for _, t := range b.targets {
		img, err := b.smallImage(ctx, t)
		if err != nil {
			return err
		}
		imgs[t.name] = img
	}
	fig := fmt.Sprintf("blob HEAD, %d conns", b.o.conns)
	rps, cpu, err := b.rate(ctx, "blob-head", http.MethodHead, func(t *target) string {
		return "/v2/" + imgs[t.name].repo + "/blobs/" + imgs[t.name].layer
	}, nil)
	if err != nil {
		return err
	}
	b.res.add("request rate", fig, "req/s", rps).relative(">=3x Dist", 3) // issue 12 (and >= 3x zot: Berth/zot column)
	b.res.add("registry CPU", fig, "CPU ms/req", cpu)
	return nil
}

// phaseTags: create many tags on one manifest, then walk the tag list page by page.
func (b *bench) phaseTags(ctx context.Context) error {
	const repo = "bench/tags"
	n := b.o.tags
	tagName := func(i int) string { return fmt.Sprintf("t%06d", i) }
	create, createCPU, walk, walkCPU := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	pagesSeen := map[string]int{}
	for _, t := range b.targets {
		layer := randBytes(4_000_000, 4096)
		if _, err := t.http.pushImage(ctx, repo, tagName(0), [][]byte{layer}, "tags"); err != nil {
			return err
		}
		man := manifestFor(imageConfig([]descriptor{{MediaType: mtOCILayer, Digest: digestOf(layer), Size: 4096}}, "tags"),
			[]descriptor{{MediaType: mtOCILayer, Digest: digestOf(layer), Size: 4096}})
		el, c, err := measure(t, "tags-create", true, func() error {
			return parallel(ctx, b.o.tagWorkers, n-1, func(i int) error {
				return t.http.putManifest(ctx, repo, tagName(i+1), mtOCIManifest, man)
			})
		})
		if err != nil {
			return fmt.Errorf("create tags on %s: %w", t.name, err)
		}
		create[t.name], createCPU[t.name] = el.Seconds(), c.Seconds()*1000/float64(n)
		logf("  create %d tags on %s: %.2fs, CPU %.2fs", n, t.name, el.Seconds(), c.Seconds())

		var times []time.Duration
		var cpuSum time.Duration
		t.profileStart("tags-list")
		for rep := range b.o.reps {
			var pages, count int
			el, c, err := measure(t, "tags-list", false, func() error {
				var err error
				pages, count, err = b.walkTags(ctx, t, repo)
				return err
			})
			if err != nil {
				t.profileStop()
				return fmt.Errorf("list tags on %s: %w", t.name, err)
			}
			if count != n {
				return fmt.Errorf("list tags on %s: walked %d tags, want %d", t.name, count, n)
			}
			times = append(times, el)
			cpuSum += c
			pagesSeen[t.name] = pages
			logf("  tag walk #%d on %s: %d pages, %.3fs, CPU %.2fs", rep+1, t.name, pages, el.Seconds(), c.Seconds())
		}
		t.profileStop()
		walk[t.name] = median(times).Seconds()
		walkCPU[t.name] = cpuSum.Seconds() / float64(b.o.reps)
	}
	b.res.add("time", fmt.Sprintf("create %d tags (manifest PUT, %d conns)", n, b.o.tagWorkers), "s", create)
	walkFig := fmt.Sprintf("list %d tags, n=%d, following Link", n, b.o.page)
	b.res.add("time", walkFig, "s", walk).target("<=0.15", atMost(0.15))
	b.res.add("registry CPU", fmt.Sprintf("create %d tags", n), "CPU ms/tag", createCPU)
	b.res.add("registry CPU", walkFig, "CPU s/walk", walkCPU)
	var pages []string
	for _, t := range b.targets {
		pages = append(pages, fmt.Sprintf("%s %d", t.label, pagesSeen[t.name]))
	}
	b.res.note("tag walk pages: %s (median of %d walks)", strings.Join(pages, ", "), b.o.reps)
	return nil
}

// walkTags lists the repository's tags with n=page, following Link headers, and checks
// they arrive in order.
func (b *bench) walkTags(ctx context.Context, t *target, repo string) (pages, count int, err error) {
	next := fmt.Sprintf("/v2/%s/tags/list?n=%d", repo, b.o.page)
	last := ""
	for next != "" {
		if pages > b.o.tags/b.o.page+10 {
			return pages, count, errors.New("too many pages")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.http.url(next), nil)
		resp, err := t.http.do(req, true, http.StatusOK)
		if err != nil {
			return pages, count, err
		}
		var body struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			return pages, count, err
		}
		pages++
		for _, tag := range body.Tags {
			if tag <= last {
				return pages, count, fmt.Errorf("tag %q after %q", tag, last)
			}
			last = tag
		}
		count += len(body.Tags)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
			if start < 0 || end < start {
				return pages, count, fmt.Errorf("bad Link header %q", link)
			}
			u, err := t.base.Parse(link[start+1 : end])
			if err != nil {
				return pages, count, err
			}
			next = u.RequestURI()
		}
	}
	return pages, count, nil
}

// phaseConcurrent: many small distinct images pushed at once.
func (b *bench) phaseConcurrent(ctx context.Context) error {
	n := b.o.pushes
	times, cpus, err := b.repeated("concurrent", func(t *target, rep int) error {
		// Distinct images every time: fresh bytes and fresh repositories.
		layers := make([][]byte, n)
		for i := range layers {
			layers[i] = randBytes(uint64(5_000_000+rep*10_000+i), 16<<10)
		}
		errc := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				repo := fmt.Sprintf("bench/concurrent-%d-%03d", rep, i)
				if _, err := t.http.pushImage(ctx, repo, "v1", [][]byte{layers[i]}, repo); err != nil {
					errc <- err
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errc:
			return err
		default:
			return nil
		}
	})
	if err != nil {
		return err
	}
	secs, cpu := map[string]float64{}, map[string]float64{}
	for _, t := range b.targets {
		secs[t.name] = times[t.name].Seconds()
		cpu[t.name] = cpus[t.name].Seconds() * 1000 / float64(n*b.o.reps)
	}
	fig := fmt.Sprintf("%d concurrent pushes of small images (HTTP)", n)
	b.res.add("time", fig, "s", secs)
	b.res.add("registry CPU", fig, "CPU ms/image", cpu)
	return nil
}

// memoryFigures: idle RSS after start, and peak RSS over the whole run.
func (b *bench) memoryFigures() {
	if len(b.targets) == 0 {
		return
	}
	idle, peak := map[string]float64{}, map[string]float64{}
	for _, t := range b.targets {
		idle[t.name] = float64(t.idleRSS) / (1 << 20)
		if hwm, err := t.memKB("VmHWM"); err == nil {
			peak[t.name] = float64(hwm) / 1024
		}
	}
	b.res.add("memory", "RSS idle after start (VmRSS)", "MiB", idle).target("<=25", atMost(25))
	b.res.add("memory", "peak RSS over the run (VmHWM)", "MiB", peak).target("<=60", atMost(60))
}
