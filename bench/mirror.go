package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// The mirror and cric phases pull and copy images held by an origin: a plain Berth on
// loopback (its CPU is the benchmark's, not background load). It is the mirrors'
// upstream and the copies' source, and it counts what it serves in its own /metrics.

// testImage is one image of the origin.
type testImage struct {
	repo, tag string
	layers    []descriptor
	data      [][]byte // layer bytes; nil for a layer read from file
	file      string   // the big layer's file
	config    []byte
	manifest  []byte
	digest    string // manifest digest
	size      int64  // manifest + config + layers: the bytes of one pull
	label     string // for figures: "1GiB image", "200 x 64KiB-layer image"
}

type origin struct {
	t      *target
	images map[string]*testImage // by repo, once pushed
}

const (
	smallLayers    = 10
	smallLayerSize = 1 << 20
)

// newTestImage builds an image from layers held in memory, or from the big layer file.
func newTestImage(repo, label string, data [][]byte, big *bigBlob) *testImage {
	img := &testImage{repo: repo, tag: "v1", label: label, data: data}
	if big != nil {
		img.layers = []descriptor{{MediaType: mtOCILayer, Digest: big.digest, Size: big.size}}
		img.data = [][]byte{nil}
		img.file = big.path
	} else {
		for _, d := range data {
			img.layers = append(img.layers, descriptor{MediaType: mtOCILayer, Digest: digestOf(d), Size: int64(len(d))})
		}
	}
	img.config = imageConfig(img.layers, repo)
	img.manifest = manifestFor(img.config, img.layers)
	img.digest = digestOf(img.manifest)
	img.size = int64(len(img.manifest) + len(img.config))
	for _, l := range img.layers {
		img.size += l.Size
	}
	return img
}

// testImageByName returns one of the fixed images: big (the big layer alone), small
// (10 x 1 MiB layers) or layers (-layers x -layer-size).
func (b *bench) testImageByName(name string) (*testImage, error) {
	switch name {
	case "big":
		big, err := b.bigLayer()
		if err != nil {
			return nil, err
		}
		return newTestImage("bench/big", fmtSize(big.size)+" image", nil, big), nil
	case "small":
		data := make([][]byte, smallLayers)
		for i := range data {
			data[i] = randBytes(uint64(6_000_000+i), smallLayerSize)
		}
		return newTestImage("bench/small", fmt.Sprintf("%d x %s-layer image", smallLayers, fmtSize(smallLayerSize)), data, nil), nil
	case "layers":
		data := make([][]byte, b.o.layers)
		for i := range data {
			data[i] = randBytes(uint64(7_000_000+i), b.o.layerSize)
		}
		return newTestImage("bench/layers", fmt.Sprintf("%d x %s-layer image", b.o.layers, fmtSize(b.o.layerSize)), data, nil), nil
	}
	return nil, fmt.Errorf("no test image %q", name)
}

// originImage starts the origin on first use and pushes the named image to it once.
func (b *bench) originImage(ctx context.Context, name string) (*testImage, error) {
	if b.origin == nil {
		t, err := b.startBerthWith(ctx, berthSpec{name: "origin", logName: "origin", data: filepath.Join(b.dir, "origin-data"), helper: true})
		if err != nil {
			return nil, err
		}
		b.origin = &origin{t: t, images: map[string]*testImage{}}
	}
	img, err := b.testImageByName(name)
	if err != nil {
		return nil, err
	}
	if have, ok := b.origin.images[img.repo]; ok {
		return have, nil
	}
	logf("  pushing %s (%s) to the origin (not measured)", img.repo, img.label)
	if err := pushTestImage(ctx, b.origin.t.http, img.repo, img, ""); err != nil {
		return nil, fmt.Errorf("push %s to the origin: %w", img.repo, err)
	}
	b.origin.images[img.repo] = img
	return img, nil
}

// pushTestImage pushes img into repo, 4 blobs at a time, skipping blobs already there and
// mounting the big layer from mountFrom when that repository has it.
func pushTestImage(ctx context.Context, c *client, repo string, img *testImage, mountFrom string) error {
	jobs := make(chan int)
	errc := make(chan error, len(img.layers))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := pushLayer(ctx, c, repo, img, i, mountFrom); err != nil {
					errc <- err
				}
			}
		}()
	}
	for i := range img.layers {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	if _, err := c.pushBytes(ctx, repo, img.config); err != nil {
		return err
	}
	return c.putManifest(ctx, repo, img.tag, mtOCIManifest, img.manifest)
}

func pushLayer(ctx context.Context, c *client, repo string, img *testImage, i int, mountFrom string) error {
	d := img.layers[i]
	if ok, err := c.blobExists(ctx, repo, d.Digest); err != nil || ok {
		return err
	}
	if img.data[i] != nil {
		return c.pushMonolithic(ctx, repo, d.Digest, bytes.NewReader(img.data[i]), d.Size)
	}
	if mountFrom != "" {
		if ok, err := c.blobExists(ctx, mountFrom, d.Digest); err == nil && ok {
			if ok, err := c.mount(ctx, repo, d.Digest, mountFrom); err == nil && ok {
				return nil
			}
		}
	}
	f, err := os.Open(img.file)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.pushMonolithic(ctx, repo, d.Digest, f, d.Size)
}

// mirrorUpstream is the upstream name the Berth mirror is configured with; clients reach
// it with the path prefix /v2/registry.k8s.io/<repo>/...
const mirrorUpstream = "registry.k8s.io"

// mirrorInst is one mirror process with an empty cache.
type mirrorInst struct {
	t      *target
	prefix string // repository prefix routed to the upstream
	data   string
}

// startMirror starts a fresh, empty mirror of the origin: Berth with one upstream, or
// Distribution in proxy mode (started after the origin answers, as it must be).
func (b *bench) startMirror(ctx context.Context, kind string, run int, upstream string) (*mirrorInst, error) {
	switch kind {
	case "berth":
		data := filepath.Join(b.dir, fmt.Sprintf("berth-mirror-%d", run))
		cfg := fmt.Sprintf("mirror:\n  upstreams:\n    - name: %s\n      url: http://%s\n", mirrorUpstream, upstream)
		t, err := b.startBerthWith(ctx, berthSpec{name: "berth", logName: fmt.Sprintf("berth-mirror-%d", run), data: data, config: cfg,
			profiled: b.o.profileDir != "", noSettle: true})
		if err != nil {
			return nil, err
		}
		return &mirrorInst{t: t, prefix: mirrorUpstream + "/", data: data}, nil
	case "distribution":
		data := filepath.Join(b.dir, fmt.Sprintf("distribution-proxy-%d", run))
		t, err := b.startDistributionWith(ctx, fmt.Sprintf("distribution-proxy-%d", run), data, "http://"+upstream, true)
		if err != nil {
			return nil, err
		}
		return &mirrorInst{t: t, prefix: "", data: data}, nil
	}
	return nil, fmt.Errorf("unknown mirror %q", kind)
}

func (m *mirrorInst) close() {
	m.t.stop()
	if err := os.RemoveAll(m.data); err != nil {
		logf("remove %s: %v", m.data, err)
	}
}

// settle waits until a mirror has finished with a pull: the upstream has no request in
// flight, dirty pages are written back, and the mirror has used no CPU for 200 ms (it may
// still be committing a blob its clients already received).
func (b *bench) settle(ctx context.Context, m *target) error {
	if _, err := b.origin.t.http.waitQuiet(ctx, time.Minute); err != nil {
		return err
	}
	syscall.Sync()
	deadline := time.Now().Add(10 * time.Second)
	last, still := m.cpu(), 0
	for still < 2 && time.Now().Before(deadline) {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		c := m.cpu()
		if c == last {
			still++
		} else {
			still = 0
		}
		last = c
	}
	return nil
}

// pullJobs is how many blobs a pull fetches at once (containerd's default).
const pullJobs = 3

// phaseMirror: each registry as a pull-through cache of the origin, against pulling
// from the origin directly and from a plain instance of the same registry.
func (b *bench) phaseMirror(ctx context.Context) error {
	big, err := b.originImage(ctx, "big")
	if err != nil {
		return err
	}
	small, err := b.originImage(ctx, "small")
	if err != nil {
		return err
	}
	up := b.origin.t
	// zot's pull-through cache is its sync extension, which its minimal build (no build
	// tags) leaves out: the phase compares Berth's mirror with Distribution's proxy.
	kinds := slices.DeleteFunc(slices.Clone(b.o.targets), func(k string) bool { return k == "zot" })
	locals := slices.DeleteFunc(slices.Clone(b.targets), func(t *target) bool { return t.name == "zot" })
	if len(kinds) < len(b.o.targets) {
		b.res.note("mirror: zot not run (its pull-through cache, the sync extension, is not in the minimal build)")
	}
	pullReps := 3 * b.o.reps

	// The mirrors' upstream, and the direct pulls: the origin, or a link to it.
	upAddr, direct := up.host, up.http
	link := ""
	if b.o.upstreamRate > 0 {
		th, err := startThrottle(up.host, b.o.upstreamRate)
		if err != nil {
			return err
		}
		upAddr, direct = th.addr(), newClient(&url.URL{Scheme: "http", Host: th.addr()})
		defer func() {
			th.close()
			direct.hc.CloseIdleConnections() // ends the relays of idle keep-alive connections
		}()
		link = fmt.Sprintf(" through a %.0f MB/s link", float64(b.o.upstreamRate)/1e6)
		pullReps = b.o.reps // a direct pull is no longer short
	}

	// Direct from the upstream: the reference for cold pulls and for TTFB.
	var directT, directTTFB, directSmall []time.Duration
	for rep := range pullReps {
		var r pullResult
		el, _, err := measure(up, "mirror-direct", false, func() error {
			var err error
			r, err = direct.pullImage(ctx, big.repo, big.tag, pullJobs)
			return err
		})
		if err != nil {
			return fmt.Errorf("direct pull from the upstream: %w", err)
		}
		directT, directTTFB = append(directT, el), append(directTTFB, r.ttfb)
		rs, err := direct.pullImage(ctx, small.repo, small.tag, pullJobs)
		if err != nil {
			return fmt.Errorf("direct pull from the upstream: %w", err)
		}
		directSmall = append(directSmall, rs.elapsed)
		logf("  direct pull #%d from the upstream: %.3fs, %.0f MB/s, TTFB %.2f ms; small image %.3fs",
			rep+1, el.Seconds(), mbps(big.size, el), ms(r.ttfb), rs.elapsed.Seconds())
	}
	directMBps := mbps(big.size, median(directT))
	upTTFB := ms(median(directTTFB))

	// A local pull: the same image pushed to the plain instance of each registry.
	const localRepo = "bench/mirror-local"
	local := map[string][]time.Duration{}
	for _, t := range locals {
		logf("  pushing %s to %s as %s (not measured)", big.label, t.name, localRepo)
		if err := pushTestImage(ctx, t.http, localRepo, big, "bench/http-mono"); err != nil {
			return fmt.Errorf("push to %s: %w", t.name, err)
		}
	}
	for rep := range pullReps {
		for _, t := range rotated(locals, rep) {
			el, _, err := measure(t, "mirror-local", false, func() error {
				_, err := t.http.pullImage(ctx, localRepo, big.tag, pullJobs)
				return err
			})
			if err != nil {
				return fmt.Errorf("local pull from %s: %w", t.name, err)
			}
			local[t.name] = append(local[t.name], el)
			logf("  local pull #%d %s: %.3fs, %.0f MB/s", rep+1, t.name, el.Seconds(), mbps(big.size, el))
		}
	}

	// Cold and warm pulls, each repetition on a new, empty mirror. After each warm pull
	// the plain instance is pulled once more (localTurn): the warm pull's reference is
	// then measured at the same moment, in the same state of the machine's page cache
	// and writeback, not only minutes before against a settled instance.
	type runs struct {
		cold, ttfb, warm, localTurn, coldSmall, warmSmall []time.Duration
		coldCPU                                           time.Duration
		coldUp, warmUp                                    serverCounters
	}
	res := map[string]*runs{}
	for _, k := range kinds {
		res[k] = &runs{}
	}
	const warmPulls = 3
	run := 0
	for rep := range b.o.reps {
		for _, k := range rotated(kinds, rep) {
			r := res[k]
			run++
			syscall.Sync()
			m, err := b.startMirror(ctx, k, run, upAddr)
			if err != nil {
				return err
			}
			err = func() error {
				defer m.close()
				c := m.t.http
				before, err := up.http.waitQuiet(ctx, time.Minute)
				if err != nil {
					return err
				}
				var p pullResult
				el, cpu, err := measure(m.t, fmt.Sprintf("mirror-cold-%d", rep+1), true, func() error {
					var err error
					p, err = c.pullImage(ctx, m.prefix+big.repo, big.tag, pullJobs)
					return err
				})
				if err != nil {
					return fmt.Errorf("cold pull: %w", err)
				}
				if err := b.settle(ctx, m.t); err != nil {
					return err
				}
				after, err := up.http.counters(ctx)
				if err != nil {
					return err
				}
				cu := after.sub(before)
				r.cold, r.ttfb, r.coldCPU = append(r.cold, el), append(r.ttfb, p.ttfb), r.coldCPU+cpu
				r.coldUp.bytesOut += cu.bytesOut
				r.coldUp.blobGets += cu.blobGets
				r.coldUp.manifestReqs += cu.manifestReqs
				logf("  cold pull #%d %s: %.3fs, %.0f MB/s (%.0f%% of direct), TTFB %.2f ms, last byte held %.1f ms, CPU %.2fs; upstream served %.2fx the image in %.0f blob GETs",
					rep+1, k, el.Seconds(), mbps(big.size, el), 100*mbps(big.size, el)/directMBps, ms(p.ttfb), ms(p.tail), cpu.Seconds(), cu.bytesOut/float64(big.size), cu.blobGets)
				for i := range warmPulls {
					w0, err := up.http.counters(ctx)
					if err != nil {
						return err
					}
					el, _, err := measure(m.t, "mirror-warm", false, func() error {
						_, err := c.pullImage(ctx, m.prefix+big.repo, big.tag, pullJobs)
						return err
					})
					if err != nil {
						return fmt.Errorf("warm pull: %w", err)
					}
					w1, err := up.http.waitQuiet(ctx, time.Minute)
					if err != nil {
						return err
					}
					wu := w1.sub(w0)
					r.warm = append(r.warm, el)
					r.warmUp.bytesOut += wu.bytesOut
					r.warmUp.blobGets += wu.blobGets
					r.warmUp.manifestReqs += wu.manifestReqs
					logf("  warm pull #%d.%d %s: %.3fs, %.0f MB/s; upstream: %.0f bytes, %.0f manifest requests",
						rep+1, i+1, k, el.Seconds(), mbps(big.size, el), wu.bytesOut, wu.manifestReqs)
					if lt := localTarget(locals, k); lt != nil {
						el, _, err := measure(lt, "mirror-local", false, func() error {
							_, err := lt.http.pullImage(ctx, localRepo, big.tag, pullJobs)
							return err
						})
						if err != nil {
							return fmt.Errorf("local pull from %s: %w", lt.name, err)
						}
						r.localTurn = append(r.localTurn, el)
						logf("  local pull #%d.%d %s, in turn: %.3fs, %.0f MB/s", rep+1, i+1, lt.name, el.Seconds(), mbps(big.size, el))
					}
				}
				ps, err := c.pullImage(ctx, m.prefix+small.repo, small.tag, pullJobs)
				if err != nil {
					return fmt.Errorf("cold pull of the small image: %w", err)
				}
				r.coldSmall = append(r.coldSmall, ps.elapsed)
				if err := b.settle(ctx, m.t); err != nil {
					return err
				}
				for range warmPulls {
					pw, err := c.pullImage(ctx, m.prefix+small.repo, small.tag, pullJobs)
					if err != nil {
						return fmt.Errorf("warm pull of the small image: %w", err)
					}
					r.warmSmall = append(r.warmSmall, pw.elapsed)
				}
				logf("  small image #%d %s: cold %.3fs, warm %.3fs", rep+1, k, ps.elapsed.Seconds(), median(r.warmSmall[len(r.warmSmall)-warmPulls:]).Seconds())
				return nil
			}()
			if err != nil {
				return fmt.Errorf("%s mirror: %w", k, err)
			}
		}
	}

	// Many clients pulling the same image from an empty mirror at once.
	type crowd struct {
		elapsed  time.Duration
		cpu      time.Duration
		up       serverCounters
		peakRSS  float64
		timedOut bool
	}
	crowds := map[string]*crowd{}
	for _, k := range kinds {
		run++
		syscall.Sync()
		m, err := b.startMirror(ctx, k, run, upAddr)
		if err != nil {
			return err
		}
		cr := &crowd{}
		err = func() error {
			defer m.close()
			before, err := up.http.waitQuiet(ctx, time.Minute)
			if err != nil {
				return err
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			el, cpu, err := measure(m.t, "mirror-concurrent", true, func() error {
				start := make(chan struct{})
				errc := make(chan error, b.o.clients)
				var wg sync.WaitGroup
				for range b.o.clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						if _, err := m.t.http.pullImage(cctx, m.prefix+big.repo, big.tag, pullJobs); err != nil {
							errc <- err
						}
					}()
				}
				close(start)
				wg.Wait()
				select {
				case err := <-errc:
					return err
				default:
					return nil
				}
			})
			if err != nil {
				if !errors.Is(cctx.Err(), context.DeadlineExceeded) || ctx.Err() != nil {
					return fmt.Errorf("%d concurrent cold pulls: %w", b.o.clients, err)
				}
				cr.timedOut = true
			}
			if hwm, err := m.t.memKB("VmHWM"); err == nil {
				cr.peakRSS = float64(hwm) / 1024
			}
			after, err := up.http.waitQuiet(ctx, time.Minute)
			if err != nil {
				return err
			}
			cr.elapsed, cr.cpu, cr.up = el, cpu, after.sub(before)
			logf("  %d concurrent cold pulls %s: %.2fs, CPU %.2fs, peak RSS %.1f MiB; upstream served %.2fx the image (%.0f bytes) in %.0f blob GETs, %.0f manifest requests",
				b.o.clients, k, el.Seconds(), cpu.Seconds(), cr.peakRSS, cr.up.bytesOut/float64(big.size), cr.up.bytesOut, cr.up.blobGets, cr.up.manifestReqs)
			return nil
		}()
		if err != nil {
			return fmt.Errorf("%s mirror: %w", k, err)
		}
		crowds[k] = cr
	}

	// Figures.
	v := func(f func(k string) float64) map[string]float64 {
		out := map[string]float64{}
		for _, k := range kinds {
			out[k] = f(k)
		}
		return out
	}
	cold := v(func(k string) float64 { return mbps(big.size, median(res[k].cold)) })
	warm := v(func(k string) float64 { return mbps(big.size, median(res[k].warm)) })
	localMBps := map[string]float64{}
	for name, ts := range local {
		localMBps[name] = mbps(big.size, median(ts))
	}
	pctLocal := v(func(k string) float64 {
		if len(res[k].localTurn) > 0 {
			return 100 * warm[k] / mbps(big.size, median(res[k].localTurn))
		}
		return nan
	})
	sec := "mirror"
	bl := big.label
	b.res.add(sec, "cold pull "+bl+" (empty cache)", "MB/s", cold)
	b.res.add(sec, "cold pull "+bl+", % of direct pull from the upstream", "%", v(func(k string) float64 { return 100 * cold[k] / directMBps })).target(">=85%", atLeast(85))
	// A cold pull receives, hashes, writes and fsyncs every byte like a push (and sends
	// it on): the push limit bounds it (issue 12: >= 75 %).
	limit, err := b.pushLimit(ctx)
	if err != nil {
		return err
	}
	b.limitRowIn(sec, "cold pull "+bl, cold, limit, "push: socket -> sha256 -> write -> fsync").target(">=75%", atLeast(75))
	b.res.add(sec, "warm pull "+bl+" (second pull, from cache)", "MB/s", warm)
	b.res.add(sec, "warm pull "+bl+", % of a local pull in turn", "%", pctLocal).target(">=90% (as local)", atLeast(90))
	b.res.add(sec, "time to first byte, cold "+fmtSize(big.layers[0].Size)+" blob", "ms", v(func(k string) float64 { return ms(median(res[k].ttfb)) })).
		target(fmt.Sprintf("<=%.1f (upstream+10)", upTTFB+10), atMost(upTTFB+10))
	b.res.add(sec, "cold pull "+small.label, "s", v(func(k string) float64 { return median(res[k].coldSmall).Seconds() }))
	b.res.add(sec, "warm pull "+small.label, "s", v(func(k string) float64 { return median(res[k].warmSmall).Seconds() }))
	b.res.add(sec, "upstream bytes, one cold pull of "+bl, "x image", v(func(k string) float64 {
		return res[k].coldUp.bytesOut / float64(big.size) / float64(len(res[k].cold))
	}))
	crowdVal := func(f func(c *crowd) float64) map[string]float64 {
		return v(func(k string) float64 {
			if crowds[k].timedOut {
				return nan
			}
			return f(crowds[k])
		})
	}
	n := b.o.clients
	b.res.add(sec, fmt.Sprintf("%d concurrent cold pulls of %s, all done", n, bl), "s", crowdVal(func(c *crowd) float64 { return c.elapsed.Seconds() }))
	b.res.add(sec, fmt.Sprintf("upstream bytes, %d concurrent cold pulls of %s", n, bl), "x image",
		v(func(k string) float64 { return crowds[k].up.bytesOut / float64(big.size) })).target("<=1x image", atMost(1.005))
	b.res.add("registry CPU", "mirror: cold pull "+bl, "CPU s/GB", v(func(k string) float64 {
		return cpuPerGB(res[k].coldCPU, big.size*int64(len(res[k].cold)))
	}))
	b.res.add("registry CPU", fmt.Sprintf("mirror: %d concurrent cold pulls of %s", n, bl), "CPU s/GB", crowdVal(func(c *crowd) float64 {
		return cpuPerGB(c.cpu, big.size*int64(n))
	}))
	b.res.add("memory", fmt.Sprintf("mirror: peak RSS, %d concurrent cold pulls (VmHWM)", n), "MiB", v(func(k string) float64 { return crowds[k].peakRSS }))

	b.res.note("mirror upstream: a plain Berth on loopback%s (the mirror's `%s` upstream; Distribution via proxy.remoteurl); direct pull of the %s from it %.0f MB/s, TTFB %.2f ms, %s %.3fs (median of %d); cold figures: median of %d, each on a new empty mirror",
		link, mirrorUpstream, bl, directMBps, upTTFB, small.label, median(directSmall).Seconds(), pullReps, b.o.reps)
	for _, t := range locals {
		r, ok := res[t.name]
		if !ok || len(r.localTurn) == 0 {
			b.res.note("local pull of the %s from a plain %s: %.0f MB/s (median of %d)", bl, t.label, localMBps[t.name], pullReps)
			continue
		}
		b.res.note("local pull of the %s from a plain %s: %.0f MB/s before the mirrors (median of %d); %.0f MB/s in turn with the warm pulls (median of %d)",
			bl, t.label, localMBps[t.name], pullReps, mbps(big.size, median(r.localTurn)), len(r.localTurn))
	}
	for _, k := range kinds {
		c, r := crowds[k], res[k]
		timeout := ""
		if c.timedOut {
			timeout = " (did NOT finish within 2 min)"
		}
		b.res.note("mirror %s: %d concurrent cold pulls%s made the upstream serve %.0f bytes (%.2fx the %d-byte image) in %.0f blob GETs and %.0f manifest requests; %d warm pulls made it serve %.0f bytes and %.0f manifest requests",
			k, n, timeout, c.up.bytesOut, c.up.bytesOut/float64(big.size), big.size, c.up.blobGets, c.up.manifestReqs, len(r.warm), r.warmUp.bytesOut, r.warmUp.manifestReqs)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// throttle is a TCP proxy in front of the origin that forwards the origin's bytes at no
// more than rate bytes per second over all its connections together: a network link
// between the mirrors (and the direct pulls) and their upstream (-upstream-rate).
type throttle struct {
	ln       net.Listener
	upstream string
	rate     float64

	mu   sync.Mutex
	next time.Time // when the link is free again
}

func startThrottle(upstream string, rate int64) (*throttle, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &throttle{ln: ln, upstream: upstream, rate: float64(rate)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go t.relay(c)
		}
	}()
	return t, nil
}

func (t *throttle) addr() string { return t.ln.Addr().String() }

func (t *throttle) close() { t.ln.Close() }

// wait books n bytes on the link and sleeps until they have gone through it. The link
// may lend at most 10 ms of idle time to a burst (timer and scheduling slack).
func (t *throttle) wait(n int) {
	t.mu.Lock()
	now := time.Now()
	if t.next.Before(now.Add(-10 * time.Millisecond)) {
		t.next = now.Add(-10 * time.Millisecond)
	}
	t.next = t.next.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
	until := t.next
	t.mu.Unlock()
	if d := time.Until(until); d > 0 {
		time.Sleep(d)
	}
}

func (t *throttle) relay(c net.Conn) {
	defer c.Close()
	u, err := net.DialTimeout("tcp", t.upstream, 5*time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	go func() {
		_, _ = io.Copy(u, c) // requests go through unthrottled
		u.Close()
	}()
	buf := make([]byte, 256<<10)
	for {
		n, err := u.Read(buf)
		if n > 0 {
			t.wait(n)
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// localTarget is the plain instance of a mirror kind (the same registry), or nil.
func localTarget(locals []*target, kind string) *target {
	for _, t := range locals {
		if t.name == kind {
			return t
		}
	}
	return nil
}
