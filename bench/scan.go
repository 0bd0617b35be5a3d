package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-registry/berth/internal/scan/trivydbtest"
)

// The scan phase (issue 11) compares scanning through Berth (Trivy run as jobs, each
// image's SBOM kept, stored SBOMs evaluated again when the database changes) with what a
// team does without it: trivy image run from outside on every image, with the same
// Trivy build and the same database. It is not a registry-against-registry figure, so
// its rows go to their own table.

const (
	scanAdmin, scanPassword = "admin", "bench-scan-password"
	scanWorkers             = 2 // Berth's scan.workers and trivy's parallelism from outside
)

// scanLayer is a gzip tar layer and its diff ID.
type scanLayer struct {
	gz     []byte
	diffID string
}

func newScanLayer(inline map[string]string) (scanLayer, error) {
	var raw bytes.Buffer
	if err := trivydbtest.TarGz(&raw, nil, inline); err != nil {
		return scanLayer{}, err
	}
	// The diff ID is the digest of the uncompressed tar, as Trivy keys layers by it.
	zr, err := gzip.NewReader(bytes.NewReader(raw.Bytes()))
	if err != nil {
		return scanLayer{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return scanLayer{}, err
	}
	return scanLayer{gz: raw.Bytes(), diffID: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}

// pushScanImage pushes an image of layers (blobs already present are not sent again)
// and returns its manifest digest.
func pushScanImage(ctx context.Context, c *client, repo, tag string, layers []scanLayer) (string, error) {
	descs := make([]descriptor, len(layers))
	diffIDs := make([]string, len(layers))
	for i, l := range layers {
		dgst := digestOf(l.gz)
		ok, err := c.blobExists(ctx, repo, dgst)
		if err != nil {
			return "", err
		}
		if !ok {
			if _, err := c.pushBytes(ctx, repo, l.gz); err != nil {
				return "", err
			}
		}
		descs[i] = descriptor{MediaType: mtOCILayer, Digest: dgst, Size: int64(len(l.gz))}
		diffIDs[i] = l.diffID
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	if _, err := c.pushBytes(ctx, repo, cfg); err != nil {
		return "", err
	}
	m := manifestFor(cfg, descs)
	if err := c.putManifest(ctx, repo, tag, mtOCIManifest, m); err != nil {
		return "", err
	}
	return digestOf(m), nil
}

// pushTrivyDB pushes a database layer as trivy-db is published.
func pushTrivyDB(ctx context.Context, c *client, repo, tag, path string) error {
	layer, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := c.pushBytes(ctx, repo, layer); err != nil {
		return err
	}
	cfg := []byte("{}")
	if _, err := c.pushBytes(ctx, repo, cfg); err != nil {
		return err
	}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtOCIManifest, "artifactType": trivydbtest.ArtifactType,
		"config": descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: digestOf(cfg), Size: int64(len(cfg))},
		"layers": []map[string]any{{"mediaType": trivydbtest.LayerType, "digest": digestOf(layer), "size": len(layer),
			"annotations": map[string]string{"org.opencontainers.image.title": "db.tar.gz"}}}})
	return c.putManifest(ctx, repo, tag, mtOCIManifest, m)
}

// adminJSON calls Berth's admin API.
func adminJSON(ctx context.Context, c *client, method, path string, body, out any, want ...int) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, c.url("/api/v1"+path), rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.do(req, true, want...)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// scanReports lists the project's reports and how many were made with a database
// built at or after since.
func scanReports(ctx context.Context, c *client, project string, since time.Time) (total, current int, err error) {
	var out struct {
		Artifacts []struct {
			Status      string
			DBUpdatedAt time.Time
		}
	}
	if err := adminJSON(ctx, c, http.MethodGet, "/projects/"+project+"/scan/reports?n=10000", nil, &out, http.StatusOK); err != nil {
		return 0, 0, err
	}
	for _, a := range out.Artifacts {
		if a.Status != "ok" {
			return 0, 0, errors.New("a scan failed; see berth-scan.log")
		}
		total++
		if !a.DBUpdatedAt.Before(since) {
			current++
		}
	}
	return total, current, nil
}

// waitReports waits until project has n reports made with a database built at or after
// since, and returns when that happened.
func waitReports(ctx context.Context, c *client, project string, n int, since time.Time, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		_, cur, err := scanReports(ctx, c, project, since)
		if err != nil {
			return time.Time{}, err
		}
		if cur >= n {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d of %d scan reports of %s after %v", cur, n, project, limit)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// trivyOutside runs trivy image on each reference, scanWorkers at a time, with one
// cache directory holding the database (and, shared between the runs as on a CI runner,
// the layers already analysed).
func trivyOutside(ctx context.Context, trivy, cacheDir string, refs []string) (time.Duration, error) {
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, scanWorkers)
	for range scanWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(refs) {
					return
				}
				if out, err := trivyRun(ctx, trivy, "image", "--quiet", "--format", "json", "--cache-dir", cacheDir, "--skip-db-update",
					"--skip-java-db-update", "--offline-scan", "--scanners", "vuln", refs[i]); err != nil {
					errs <- fmt.Errorf("trivy image %s: %v: %s", refs[i], err, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return time.Since(start), <-errs
}

func trivyRun(ctx context.Context, trivy string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, trivy, args...)
	cmd.Env = cleanEnv("TRIVY_INSECURE=true", "TRIVY_NO_PROGRESS=true", "TRIVY_DISABLE_TELEMETRY=true",
		"TRIVY_USERNAME="+scanAdmin, "TRIVY_PASSWORD="+scanPassword)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &out
	err := cmd.Run()
	return bytes.TrimSpace(out.Bytes()), err
}

func (b *bench) phaseScan(ctx context.Context) error {
	trivy, err := findTool(b.o.trivy, "trivy")
	if err != nil {
		return err
	}
	dir := filepath.Join(b.dir, "scan")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	v1 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	advs := []trivydbtest.Advisory{{ID: "CVE-2099-0001", Severity: "HIGH", Title: "musl overflow", AlpinePkg: "musl", Fixed: "1.2.4-r3"}}
	db1, err := trivydbtest.Build(filepath.Join(dir, "db1"), v1, advs)
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf("auth:\n  enabled: true\n  admin:\n    username: %s\n    password: %s\nscan:\n  enabled: true\n  workers: %d\n  dbCheckInterval: 1s\n  trivy:\n    path: %s\n",
		scanAdmin, scanPassword, scanWorkers, trivy)
	t, err := b.startBerthWith(ctx, berthSpec{name: "berth", logName: "berth-scan", data: filepath.Join(dir, "berth-data"), config: cfg, noSettle: true})
	if err != nil {
		return err
	}
	defer t.stop()
	c := t.http
	c.user, c.pass = scanAdmin, scanPassword
	for _, p := range []string{"aquasecurity", "big", "many"} {
		if err := adminJSON(ctx, c, http.MethodPost, "/projects", map[string]any{"name": p}, nil, http.StatusCreated); err != nil {
			return err
		}
	}
	for _, p := range []string{"big", "many"} {
		if err := adminJSON(ctx, c, http.MethodPut, "/projects/"+p+"/scan-policy", map[string]any{"scanOnPush": true, "mode": "off"}, nil, http.StatusOK); err != nil {
			return err
		}
	}
	if err := pushTrivyDB(ctx, c, "aquasecurity/trivy-db", "2", db1); err != nil {
		return err
	}
	// The outside runs read the same database, downloaded from Berth once, untimed.
	outsideDB := filepath.Join(dir, "trivy-cache")
	if out, err := trivyRun(ctx, trivy, "image", "--quiet", "--download-db-only", "--db-repository", t.host+"/aquasecurity/trivy-db:2", "--cache-dir", outsideDB); err != nil {
		return fmt.Errorf("trivy: download the database: %v: %s", err, out)
	}

	// One big image: push to report.
	alpine, err := newScanLayer(trivydbtest.AlpineFiles(map[string]string{"musl": "1.2.4-r2", "busybox": "1.36.1-r15"}))
	if err != nil {
		return err
	}
	big, err := newScanLayer(map[string]string{"opt/data.bin": string(randBytes(11, b.o.scanSize))})
	if err != nil {
		return err
	}
	// A first image loads Berth's copy of the database (once per replica), untimed.
	if _, err := pushScanImage(ctx, c, "big/warmup", "1", []scanLayer{alpine}); err != nil {
		return err
	}
	if _, err := waitReports(ctx, c, "big", 1, v1, 10*time.Minute); err != nil {
		return err
	}
	pushStart := time.Now()
	bigDigest, err := pushScanImage(ctx, c, "big/app", "1", []scanLayer{alpine, big})
	if err != nil {
		return err
	}
	pushed := time.Now()
	done, err := waitReports(ctx, c, "big", 2, v1, 10*time.Minute)
	if err != nil {
		return err
	}
	bigCache := filepath.Join(dir, "trivy-cache-big")
	if err := os.CopyFS(bigCache, os.DirFS(outsideDB)); err != nil {
		return err
	}
	outsideBig, err := trivyOutside(ctx, trivy, bigCache, []string{t.host + "/big/app@" + bigDigest})
	if err != nil {
		return err
	}
	label := fmt.Sprintf("push to result, one %s image (Berth: from the end of the push; push took %.2f s)", fmtSize(int64(len(big.gz))), pushed.Sub(pushStart).Seconds())
	b.res.addTo("scan", "Scanning (Trivy through Berth vs trivy image from outside)", label, "s",
		map[string]float64{"berth": done.Sub(pushed).Seconds(), "trivy": outsideBig.Seconds()})

	// Many images sharing their base layers: pushed with scan on push, done when every
	// report is in.
	n := b.o.scanImages
	base, err := newScanLayer(map[string]string{"usr/lib/base.bin": string(randBytes(12, 20<<20))})
	if err != nil {
		return err
	}
	fixedAlpine, err := newScanLayer(trivydbtest.AlpineFiles(map[string]string{"musl": "1.2.4-r3", "busybox": "1.36.1-r15"}))
	if err != nil {
		return err
	}
	var refs []string
	start := time.Now()
	for i := range n {
		osLayer := alpine
		if i%2 == 1 {
			osLayer = fixedAlpine
		}
		own, err := newScanLayer(map[string]string{"app/id": fmt.Sprint(i)})
		if err != nil {
			return err
		}
		d, err := pushScanImage(ctx, c, "many/app", fmt.Sprint(i), []scanLayer{osLayer, base, own})
		if err != nil {
			return err
		}
		refs = append(refs, t.host+"/many/app@"+d)
	}
	pushedAll := time.Since(start)
	done, err = waitReports(ctx, c, "many", n, v1, 30*time.Minute)
	if err != nil {
		return err
	}
	throughBerth := done.Sub(start)
	manyCache := filepath.Join(dir, "trivy-cache-many")
	if err := os.CopyFS(manyCache, os.DirFS(outsideDB)); err != nil {
		return err
	}
	outside, err := trivyOutside(ctx, trivy, manyCache, refs)
	if err != nil {
		return err
	}
	b.res.addTo("scan", "Scanning (Trivy through Berth vs trivy image from outside)",
		fmt.Sprintf("scan %d images sharing base layers (Berth: from the first push, pushes took %.1f s)", n, pushedAll.Seconds()), "s",
		map[string]float64{"berth": throughBerth.Seconds(), "trivy": outside.Seconds()})

	// A newer database: Berth evaluates the stored SBOMs again without reading layers;
	// from outside, every image is scanned again.
	v2 := v1.Add(30 * time.Minute)
	db2, err := trivydbtest.Build(filepath.Join(dir, "db2"), v2, append(advs,
		trivydbtest.Advisory{ID: "CVE-2099-0002", Severity: "MEDIUM", Title: "busybox bug", AlpinePkg: "busybox", Fixed: "1.36.1-r16"}))
	if err != nil {
		return err
	}
	reStart := time.Now()
	if err := pushTrivyDB(ctx, c, "aquasecurity/trivy-db", "2", db2); err != nil {
		return err
	}
	done, err = waitReports(ctx, c, "many", n, v2, 30*time.Minute)
	if err != nil {
		return err
	}
	reEval := done.Sub(reStart)
	// From outside: a cold re-scan reads every layer again (a new runner, or Berth
	// without stored SBOMs); a warm one has trivy's layer cache from the first run.
	cold := filepath.Join(dir, "trivy-cache-re")
	if out, err := trivyRun(ctx, trivy, "image", "--quiet", "--download-db-only", "--db-repository", t.host+"/aquasecurity/trivy-db:2", "--cache-dir", cold); err != nil {
		return fmt.Errorf("trivy: download the database: %v: %s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(manyCache, "db")); err != nil {
		return err
	}
	if err := os.CopyFS(filepath.Join(manyCache, "db"), os.DirFS(filepath.Join(cold, "db"))); err != nil {
		return err
	}
	reCold, err := trivyOutside(ctx, trivy, cold, refs)
	if err != nil {
		return err
	}
	reWarm, err := trivyOutside(ctx, trivy, manyCache, refs)
	if err != nil {
		return err
	}
	section := "Scanning (Trivy through Berth vs trivy image from outside)"
	b.res.addTo("scan", section, fmt.Sprintf("database update: Berth re-evaluates %d stored SBOMs (from the push of the database) vs a re-scan reading the layers again", n), "s",
		map[string]float64{"berth": reEval.Seconds(), "trivy": reCold.Seconds()}).
		target("≥ 10x faster than re-scanning", func(b, d float64) bool { return b*10 <= d })
	b.res.addTo("scan", section, fmt.Sprintf("database update: the same vs trivy image with its layer cache from the first run (%d images)", n), "s",
		map[string]float64{"berth": reEval.Seconds(), "trivy": reWarm.Seconds()})
	b.res.note("scan: Berth re-evaluation %.1f s vs its own first scan of the same %d images %.1f s (%.1fx); %d trivy processes at a time on both sides",
		reEval.Seconds(), n, throughBerth.Seconds(), throughBerth.Seconds()/reEval.Seconds(), scanWorkers)
	return nil
}
