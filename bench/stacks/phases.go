package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

func (b *bench) targets() []*server { return []*server{b.berth, b.dist} }

// ordered returns ts, reversed when rev is set (alternating who goes first).
func ordered(ts []*server, rev bool) []*server {
	out := append([]*server{}, ts...)
	if rev {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// cost is one measurement: wall time, the registry's CPU and the backends' CPU.
type cost struct {
	el, reg, back time.Duration
}

// once runs fn and measures it against the registry meter reg.
func (b *bench) once(reg cpuMeter, label string, fn func() error) (cost, error) {
	w := openWindow(reg, b.back)
	err := fn()
	el, cpus := w.close(label)
	return cost{el, cpus[0], cpus[1]}, err
}

// repeated runs fn reps times on both registries, alternating who goes first, each run
// after a sync (so that one's writeback does not land in the other's window). It returns
// each registry's median wall time and its total CPU times.
func (b *bench) repeated(key string, reps int, fn func(t *server, rep int) error) (map[*server]time.Duration, map[*server]cost, error) {
	times := map[*server][]time.Duration{}
	sum := map[*server]cost{}
	b.berth.profileStart(key)
	defer b.berth.profileStop()
	for rep := range reps {
		for _, t := range ordered(b.targets(), rep%2 == 1) {
			syscall.Sync()
			c, err := b.once(t, t.name+" "+key, func() error { return fn(t, rep) })
			if err != nil {
				return nil, nil, fmt.Errorf("%s on %s: %w", key, t.name, err)
			}
			times[t] = append(times[t], c.el)
			s := sum[t]
			s.reg += c.reg
			s.back += c.back
			sum[t] = s
			logf("  %s #%d %s: %.3fs, registry CPU %.2fs, S3+PG CPU %.2fs", key, rep+1, t.name, c.el.Seconds(), c.reg.Seconds(), c.back.Seconds())
		}
	}
	med := map[*server]time.Duration{}
	for t, ts := range times {
		med[t] = median(ts)
	}
	return med, sum, nil
}

// ---------------------------------------------------------------- test data

// bigBlob is the big random layer on disk.
type bigBlob struct {
	path   string
	size   int64
	digest string
}

func (b *bench) bigLayer() (*bigBlob, error) {
	if b.big != nil {
		return b.big, nil
	}
	path := filepath.Join(b.dir, "layer.bin")
	logf("writing %s of random bytes to %s", fmtSize(b.o.size), path)
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var seed [32]byte
	copy(seed[:], "berth-scaleout big layer")
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
	b.big = &bigBlob{path: path, size: b.o.size, digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}
	return b.big, nil
}

// srcImage is a one-layer image in bench/src of both registries: the manifest and blob
// HEAD figures read it, and the catalog's repositories mount its blobs.
type srcImage struct {
	layer, config descriptor
	manifest      []byte
}

const srcRepo = "bench/src"

func (b *bench) pushSource(ctx context.Context) (srcImage, error) {
	data := randBytes(3_000_000, 4096)
	layer := descriptor{MediaType: mtOCILayer, Digest: digestOf(data), Size: int64(len(data))}
	cfg := imageConfig([]descriptor{layer}, "scaleout")
	img := srcImage{layer: layer, config: descriptor{MediaType: mtOCIConfig, Digest: digestOf(cfg), Size: int64(len(cfg))},
		manifest: manifestFor(cfg, []descriptor{layer})}
	for _, t := range b.targets() {
		if _, err := newRegClient(t.host).pushImage(ctx, srcRepo, "v1", [][]byte{data}, "scaleout"); err != nil {
			return img, fmt.Errorf("push %s to %s: %w", srcRepo, t.name, err)
		}
	}
	return img, nil
}

// bigRepo holds the big blob for the pull figures.
const bigRepo = "bench/big-mono-0"

// ensureBig pushes the big blob to bigRepo where it is not yet (unmeasured).
func (b *bench) ensureBig(ctx context.Context, ts ...*server) (*bigBlob, error) {
	big, err := b.bigLayer()
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		c := newRegClient(t.host)
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, c.url("/v2/"+bigRepo+"/blobs/"+big.digest), nil)
		resp, err := c.do(req, false, http.StatusOK, http.StatusNotFound)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusOK {
			continue
		}
		logf("  pushing the big layer to %s (not measured)", t.name)
		f, err := os.Open(big.path)
		if err != nil {
			return nil, err
		}
		err = c.pushMonolithic(ctx, bigRepo, big.digest, f, big.size)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return big, nil
}

// ---------------------------------------------------------------- phases

// phasePush: the big layer pushed with one PUT, and with one streamed PATCH then an
// empty PUT (what docker and crane do), each repetition into a new repository.
func (b *bench) phasePush(ctx context.Context) error {
	big, err := b.bigLayer()
	if err != nil {
		return err
	}
	variants := []struct {
		key, figure string
		push        func(c *regClient, f *os.File, rep int) error
	}{
		{"push-put", "push " + fmtSize(big.size) + " layer: POST + PUT", func(c *regClient, f *os.File, rep int) error {
			return c.pushMonolithic(ctx, fmt.Sprintf("bench/big-mono-%d", rep), big.digest, f, big.size)
		}},
		{"push-patch", "push " + fmtSize(big.size) + " layer: POST + streamed PATCH + PUT", func(c *regClient, f *os.File, rep int) error {
			return c.pushChunked(ctx, fmt.Sprintf("bench/big-patch-%d", rep), big.digest, f, big.size, big.size)
		}},
	}
	for _, v := range variants {
		med, cpu, err := b.repeated(v.key, b.o.reps, func(t *server, rep int) error {
			f, err := os.Open(big.path)
			if err != nil {
				return err
			}
			defer f.Close()
			return v.push(newRegClient(t.host), f, rep)
		})
		if err != nil {
			return err
		}
		gb := float64(big.size) * float64(b.o.reps) / 1e9
		b.res.add("throughput", v.figure, "MB/s", mbps(big.size, med[b.berth]), mbps(big.size, med[b.dist]))
		b.res.add("registry CPU", v.figure, "CPU s/GB", cpu[b.berth].reg.Seconds()/gb, cpu[b.dist].reg.Seconds()/gb)
		b.res.add("S3 server + PostgreSQL CPU", v.figure, "CPU s/GB", cpu[b.berth].back.Seconds()/gb, cpu[b.dist].back.Seconds()/gb)
	}
	return nil
}

// phasePull: the big blob fetched with a plain GET, read through a 1 MiB buffer.
func (b *bench) phasePull(ctx context.Context) error {
	big, err := b.ensureBig(ctx, b.targets()...)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	reps := 2 * b.o.reps
	med, cpu, err := b.repeated("pull", reps, func(t *server, rep int) error {
		n, err := newRegClient(t.host).getCount(ctx, "/v2/"+bigRepo+"/blobs/"+big.digest, buf)
		if err == nil && n != big.size {
			err = fmt.Errorf("got %d bytes, want %d", n, big.size)
		}
		return err
	})
	if err != nil {
		return err
	}
	fig := "pull " + fmtSize(big.size) + " blob: GET"
	gb := float64(big.size) * float64(reps) / 1e9
	b.res.add("throughput", fig, "MB/s", mbps(big.size, med[b.berth]), mbps(big.size, med[b.dist]))
	b.res.add("registry CPU", fig, "CPU s/GB", cpu[b.berth].reg.Seconds()/gb, cpu[b.dist].reg.Seconds()/gb)
	b.res.add("S3 server + PostgreSQL CPU", fig, "CPU s/GB", cpu[b.berth].back.Seconds()/gb, cpu[b.dist].back.Seconds()/gb)
	return nil
}

// phaseLayers: one image of many small layers, POST+PUT on 4 connections, then the
// config and the manifest.
func (b *bench) phaseLayers(ctx context.Context) error {
	n, size := b.o.layers, b.o.layerSize
	blobs := make([][]byte, n)
	for i := range blobs {
		blobs[i] = randBytes(uint64(2_000_000+i), size)
	}
	med, cpu, err := b.repeated("layers", b.o.reps, func(t *server, rep int) error {
		c := newRegClient(t.host)
		repo := fmt.Sprintf("bench/layers-%d", rep)
		var mu sync.Mutex
		var firstErr error
		next := make(chan int)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if _, err := c.pushBytes(ctx, repo, blobs[i]); err != nil {
						mu.Lock()
						firstErr = cmpErr(firstErr, err)
						mu.Unlock()
					}
				}
			}()
		}
		for i := range blobs {
			next <- i
		}
		close(next)
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		layers := make([]descriptor, n)
		for i, data := range blobs {
			layers[i] = descriptor{MediaType: mtOCILayer, Digest: digestOf(data), Size: size}
		}
		cfg := imageConfig(layers, "layers")
		if _, err := c.pushBytes(ctx, repo, cfg); err != nil {
			return err
		}
		return c.putManifest(ctx, repo, "v1", mtOCIManifest, manifestFor(cfg, layers))
	})
	if err != nil {
		return err
	}
	fig := fmt.Sprintf("%d x %s layers, one image: POST+PUT, 4 conns", n, fmtSize(size))
	per := float64(n * b.o.reps)
	b.res.add("time", fig, "s", med[b.berth].Seconds(), med[b.dist].Seconds())
	b.res.add("registry CPU", fig, "CPU ms/layer", cpu[b.berth].reg.Seconds()*1000/per, cpu[b.dist].reg.Seconds()*1000/per)
	b.res.add("S3 server + PostgreSQL CPU", fig, "CPU ms/layer", cpu[b.berth].back.Seconds()*1000/per, cpu[b.dist].back.Seconds()*1000/per)
	return nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// distNoCache starts (once) a second Distribution on the same bucket without the blob
// descriptor cache: every HEAD then goes to S3.
func (b *bench) distNoCache(ctx context.Context) (*server, error) {
	for _, s := range b.extra {
		if s.name == "distribution-nocache" {
			return s, nil
		}
	}
	s, err := b.startDist(ctx, "distribution-nocache", false)
	if err != nil {
		return nil, err
	}
	b.extra = append(b.extra, s)
	return s, nil
}

// leg is one side of a rate figure.
type leg struct {
	s    *server
	spec loadSpec
}

// rate measures the legs in slices of about a second that alternate between them. It
// returns one summed result per leg; cpu[0] is the registry's, cpu[1] the backends'.
func (b *bench) rate(ctx context.Context, key string, legs []leg) ([]rateResult, error) {
	hc := httpClient()
	for _, l := range legs {
		req, _ := http.NewRequestWithContext(ctx, l.spec.method, "http://"+l.spec.host+l.spec.path, nil)
		for k, v := range l.spec.header {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s %s on %s: HTTP %d", key, l.spec.method, l.spec.path, l.s.name, resp.StatusCode)
		}
	}
	nslices := max(1, int(b.o.duration/time.Second))
	slice := b.o.duration / time.Duration(nslices)
	sums := make([]rateResult, len(legs))
	b.berth.profileStart(key)
	defer b.berth.profileStop()
	for i := range nslices {
		for j := range legs {
			k := j
			if i%2 == 1 {
				k = len(legs) - 1 - j
			}
			l := legs[k]
			r, err := loadGen(ctx, l.spec, b.o.conns, b.o.warmup, slice, l.s.name+" "+key, l.s, b.back)
			if err != nil {
				return nil, err
			}
			sums[k].addUp(r)
		}
	}
	for k, l := range legs {
		r := sums[k]
		logf("  %s %s: %.0f req/s, registry CPU %.3f ms/req, S3+PG CPU %.3f ms/req, load generator %.3f ms/req",
			key, l.s.name, r.perSecond(), r.cpuMS(0), r.cpuMS(1), r.client.Seconds()*1000/float64(r.requests))
	}
	return sums, nil
}

// rateFigure measures one request on Berth, Distribution and (with -dist-nocache)
// Distribution without its descriptor cache, and adds the rows.
func (b *bench) rateFigure(ctx context.Context, key, figure, method, path string, header map[string]string, targetK float64) error {
	spec := func(s *server) loadSpec { return loadSpec{host: s.host, method: method, path: path, header: header} }
	legs := []leg{{b.berth, spec(b.berth)}, {b.dist, spec(b.dist)}}
	if b.o.distNoCache {
		nc, err := b.distNoCache(ctx)
		if err != nil {
			return err
		}
		legs = append(legs, leg{nc, spec(nc)})
	}
	rs, err := b.rate(ctx, key, legs)
	if err != nil {
		return err
	}
	add := func(fig string, d rateResult) {
		x := b.res.add("request rate", fig, "req/s", rs[0].perSecond(), d.perSecond())
		if targetK > 0 {
			x.relative(fmt.Sprintf(">=%gx Dist", targetK), targetK)
		}
		b.res.add("registry CPU", fig, "CPU ms/req", rs[0].cpuMS(0), d.cpuMS(0))
		b.res.add("S3 server + PostgreSQL CPU", fig, "CPU ms/req", rs[0].cpuMS(1), d.cpuMS(1))
	}
	add(figure, rs[1])
	if len(rs) > 2 {
		add(figure+" (Dist without descriptor cache)", rs[2])
	}
	return nil
}

func (b *bench) phaseManifest(ctx context.Context) error {
	return b.rateFigure(ctx, "manifest-get", fmt.Sprintf("manifest GET by tag, %d conns", b.o.conns), http.MethodGet,
		"/v2/"+srcRepo+"/manifests/v1", map[string]string{"Accept": acceptAll}, 0)
}

func (b *bench) phaseBlobHead(ctx context.Context) error {
	return b.rateFigure(ctx, "blob-head", fmt.Sprintf("blob HEAD, %d conns", b.o.conns), http.MethodHead,
		"/v2/"+srcRepo+"/blobs/"+b.src.layer.Digest, nil, 5)
}

// phaseCatalog: -repos repositories (each: the source layer and config mounted, the
// manifest PUT), then the whole catalog listed with n=page following Link headers.
func (b *bench) phaseCatalog(ctx context.Context) error {
	n := b.o.repos
	name := func(i int) string { return fmt.Sprintf("catalog/r%05d", i) }
	create := map[*server]cost{}
	for _, t := range b.targets() {
		c := newRegClient(t.host)
		cst, err := b.once(t, t.name+" catalog-create", func() error {
			next := make(chan int)
			var mu sync.Mutex
			var firstErr error
			var wg sync.WaitGroup
			for range b.o.repoWorkers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						repo := name(i)
						err := c.mount(ctx, repo, b.src.layer.Digest, srcRepo)
						if err == nil {
							err = c.mount(ctx, repo, b.src.config.Digest, srcRepo)
						}
						if err == nil {
							err = c.putManifest(ctx, repo, "v1", mtOCIManifest, b.src.manifest)
						}
						if err != nil {
							mu.Lock()
							firstErr = cmpErr(firstErr, err)
							mu.Unlock()
						}
					}
				}()
			}
			for i := range n {
				if ctx.Err() != nil {
					break
				}
				next <- i
			}
			close(next)
			wg.Wait()
			return cmpErr(firstErr, ctx.Err())
		})
		if err != nil {
			return fmt.Errorf("create %d repositories on %s: %w", n, t.name, err)
		}
		create[t] = cst
		logf("  created %d repositories on %s in %.2fs (registry CPU %.2fs, S3+PG CPU %.2fs)", n, t.name, cst.el.Seconds(), cst.reg.Seconds(), cst.back.Seconds())
	}
	// The walks: at most -reps each, and no more once a registry's walks took 20s.
	times := map[*server][]time.Duration{}
	cpu := map[*server]cost{}
	pages := map[*server]int{}
	b.berth.profileStart("catalog-walk")
	for rep := range b.o.reps {
		for _, t := range ordered(b.targets(), rep%2 == 1) {
			var total time.Duration
			for _, d := range times[t] {
				total += d
			}
			if total > 20*time.Second {
				continue
			}
			var np, count int
			cst, err := b.once(t, t.name+" catalog-walk", func() error {
				var err error
				np, count, err = walkCatalog(ctx, newRegClient(t.host), b.o.page)
				return err
			})
			if err != nil {
				b.berth.profileStop()
				return fmt.Errorf("catalog walk on %s: %w", t.name, err)
			}
			if count < n {
				b.berth.profileStop()
				return fmt.Errorf("catalog walk on %s: %d repositories, want at least %d", t.name, count, n)
			}
			times[t] = append(times[t], cst.el)
			s := cpu[t]
			s.reg += cst.reg
			s.back += cst.back
			cpu[t] = s
			pages[t] = np
			logf("  catalog walk #%d on %s: %d repositories in %d pages, %.3fs, registry CPU %.2fs, S3+PG CPU %.2fs",
				rep+1, t.name, count, np, cst.el.Seconds(), cst.reg.Seconds(), cst.back.Seconds())
		}
	}
	b.berth.profileStop()
	per := func(t *server, d time.Duration) float64 { return d.Seconds() / float64(len(times[t])) }
	createFig := fmt.Sprintf("create %d repositories (2 mounts + manifest PUT each, %d conns)", n, b.o.repoWorkers)
	b.res.add("time", createFig, "s", create[b.berth].el.Seconds(), create[b.dist].el.Seconds())
	walkFig := fmt.Sprintf("list the catalog of %d+ repositories, n=%d, following Link", n, b.o.page)
	b.res.add("time", walkFig, "s", median(times[b.berth]).Seconds(), median(times[b.dist]).Seconds()).faster(">=20x faster", 20)
	b.res.add("registry CPU", createFig, "CPU ms/repo", create[b.berth].reg.Seconds()*1000/float64(n), create[b.dist].reg.Seconds()*1000/float64(n))
	b.res.add("registry CPU", walkFig, "CPU s/walk", per(b.berth, cpu[b.berth].reg), per(b.dist, cpu[b.dist].reg))
	b.res.add("S3 server + PostgreSQL CPU", createFig, "CPU ms/repo", create[b.berth].back.Seconds()*1000/float64(n), create[b.dist].back.Seconds()*1000/float64(n))
	b.res.add("S3 server + PostgreSQL CPU", walkFig, "CPU s/walk", per(b.berth, cpu[b.berth].back), per(b.dist, cpu[b.dist].back))
	b.res.note("catalog walks: Berth %d pages (median of %d walks), Distribution %d pages (median of %d walks)",
		pages[b.berth], len(times[b.berth]), pages[b.dist], len(times[b.dist]))
	return nil
}

// walkCatalog lists /v2/_catalog with n=page, following Link headers, and checks order.
func walkCatalog(ctx context.Context, c *regClient, page int) (pages, count int, err error) {
	next := fmt.Sprintf("/v2/_catalog?n=%d", page)
	last := ""
	for next != "" {
		if pages > 100000 {
			return pages, count, errors.New("too many pages")
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url(next), nil)
		resp, err := c.do(req, true, http.StatusOK)
		if err != nil {
			return pages, count, err
		}
		var body struct {
			Repositories []string `json:"repositories"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			return pages, count, err
		}
		pages++
		for _, r := range body.Repositories {
			if r <= last {
				return pages, count, fmt.Errorf("repository %q after %q", r, last)
			}
			last = r
		}
		count += len(body.Repositories)
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
			if start < 0 || end < start {
				return pages, count, fmt.Errorf("bad Link header %q", link)
			}
			next = link[start+1 : end]
			if i := strings.Index(next, "/v2/"); i > 0 {
				next = next[i:] // absolute URL
			}
		}
	}
	return pages, count, nil
}
