package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Manifest media types the clients send and accept.
const (
	mtOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mtOCIConfig   = "application/vnd.oci.image.config.v1+json"
	mtOCILayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	acceptAll     = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
		"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
)

// client is the "plain HTTP" client: net/http with keep-alive, nothing registry-specific.
type client struct {
	base *url.URL
	hc   *http.Client
	// user and pass, when set, go with every request (Basic; Berth caches the check).
	user, pass string
}

func newClient(base *url.URL) *client {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, never a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     256 << 10,
		ReadBufferSize:      64 << 10,
	}
	return &client{base: base, hc: &http.Client{Transport: tr, Timeout: 5 * time.Minute}}
}

type httpError struct {
	method, url string
	status      int
	body        string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.url, e.status, strings.TrimSpace(e.body))
}

// do sends the request and returns the response if its status is one of want; the body
// is drained and closed unless keep is set.
func (c *client) do(req *http.Request, keep bool, want ...int) (*http.Response, error) {
	req.Header.Set("User-Agent", "berth-bench")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	ok := false
	for _, w := range want {
		ok = ok || resp.StatusCode == w
	}
	if !ok {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		resp.Body.Close()
		return nil, &httpError{req.Method, req.URL.String(), resp.StatusCode, string(msg)}
	}
	if !keep {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, nil
}

func (c *client) url(path string) string { return c.base.String() + path }

// location resolves an upload Location header (relative or absolute).
func (c *client) location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s %s: no Location header", resp.Request.Method, resp.Request.URL)
	}
	return c.base.Parse(loc)
}

func withDigest(u *url.URL, dgst string) string {
	v := *u
	q := v.Query()
	q.Set("digest", dgst)
	v.RawQuery = q.Encode()
	return v.String()
}

// startUpload opens an upload session (POST).
func (c *client) startUpload(ctx context.Context, repo string) (*url.URL, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/v2/"+repo+"/blobs/uploads/"), nil)
	resp, err := c.do(req, false, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	return c.location(resp)
}

// pushMonolithic uploads a blob with POST then one PUT carrying the whole body.
func (c *client) pushMonolithic(ctx context.Context, repo, dgst string, body io.Reader, size int64) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, withDigest(loc, dgst), body)
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	_, err = c.do(req, false, http.StatusCreated)
	return err
}

// pushChunked uploads a blob with POST, one PATCH per chunk (Content-Range), then an
// empty PUT with the digest.
func (c *client) pushChunked(ctx context.Context, repo, dgst string, r io.ReaderAt, size, chunk int64) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), io.NewSectionReader(r, off, n))
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+n-1, 10))
		resp, err := c.do(req, false, http.StatusAccepted)
		if err != nil {
			return err
		}
		if loc, err = c.location(resp); err != nil {
			return err
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, withDigest(loc, dgst), http.NoBody)
	req.Header.Set("Content-Type", "application/octet-stream")
	_, err = c.do(req, false, http.StatusCreated)
	return err
}

// pushBytes uploads a small blob (POST + PUT).
func (c *client) pushBytes(ctx context.Context, repo string, data []byte) (string, error) {
	dgst := digestOf(data)
	return dgst, c.pushMonolithic(ctx, repo, dgst, bytes.NewReader(data), int64(len(data)))
}

// putManifest stores a manifest under a tag or digest.
func (c *client) putManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, c.url("/v2/"+repo+"/manifests/"+ref), bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaType)
	_, err := c.do(req, false, http.StatusCreated)
	return err
}

// blobExists reports whether HEAD of the blob answers 200.
func (c *client) blobExists(ctx context.Context, repo, dgst string) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, c.url("/v2/"+repo+"/blobs/"+dgst), nil)
	resp, err := c.do(req, false, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusOK, nil
}

// getCount GETs path and reads the whole body through a 1 MiB buffer, returning its length.
func (c *client) getCount(ctx context.Context, path string, buf []byte) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	resp, err := c.do(req, true, http.StatusOK)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int64
	for {
		m, err := resp.Body.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

type imageManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

// imageConfig returns a minimal OCI image config for the given layers.
func imageConfig(layers []descriptor, salt string) []byte {
	diffIDs := make([]string, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.Digest // not real diff IDs; no registry or crane push checks them
	}
	cfg := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Labels": map[string]string{"bench": salt}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	}
	raw, _ := json.Marshal(cfg)
	return raw
}

func manifestFor(config []byte, layers []descriptor) []byte {
	m := imageManifest{
		SchemaVersion: 2,
		MediaType:     mtOCIManifest,
		Config:        descriptor{MediaType: mtOCIConfig, Digest: digestOf(config), Size: int64(len(config))},
		Layers:        layers,
	}
	raw, _ := json.Marshal(m)
	return raw
}

// pushImage uploads the blobs, the config and the manifest of a small image.
func (c *client) pushImage(ctx context.Context, repo, tag string, blobs [][]byte, salt string) (manifestDigest string, err error) {
	layers := make([]descriptor, len(blobs))
	for i, data := range blobs {
		dgst, err := c.pushBytes(ctx, repo, data)
		if err != nil {
			return "", err
		}
		layers[i] = descriptor{MediaType: mtOCILayer, Digest: dgst, Size: int64(len(data))}
	}
	cfg := imageConfig(layers, salt)
	if _, err := c.pushBytes(ctx, repo, cfg); err != nil {
		return "", err
	}
	m := manifestFor(cfg, layers)
	if err := c.putManifest(ctx, repo, tag, mtOCIManifest, m); err != nil {
		return "", err
	}
	return digestOf(m), nil
}

// mount asks the registry to mount a blob from another repository; it reports whether
// the blob is now in repo. An upload session opened instead (202) is cancelled.
func (c *client) mount(ctx context.Context, repo, dgst, from string) (bool, error) {
	q := url.Values{"mount": {dgst}, "from": {from}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/v2/"+repo+"/blobs/uploads/?"+q.Encode()), nil)
	resp, err := c.do(req, false, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return false, err
	}
	if resp.StatusCode == http.StatusCreated {
		return true, nil
	}
	if loc, err := c.location(resp); err == nil {
		del, _ := http.NewRequestWithContext(ctx, http.MethodDelete, loc.String(), nil)
		_, _ = c.do(del, false, http.StatusNoContent, http.StatusNotFound)
	}
	return false, nil
}

// manifestDigest HEADs a manifest and returns its Docker-Content-Digest.
func (c *client) manifestDigest(ctx context.Context, repo, ref string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, c.url("/v2/"+repo+"/manifests/"+ref), nil)
	req.Header.Set("Accept", acceptAll)
	resp, err := c.do(req, false, http.StatusOK)
	if err != nil {
		return "", err
	}
	return resp.Header.Get("Docker-Content-Digest"), nil
}

// pullResult is one image pull.
type pullResult struct {
	bytes   int64         // manifest, config and layers received
	elapsed time.Duration // from the manifest request to the last byte of the last blob
	ttfb    time.Duration // largest blob: from its request to the first body byte
	tail    time.Duration // largest blob: from its next-to-last byte to its last (a mirror's hold-back)
}

// pullImage pulls an image the way a container runtime does: the manifest by tag, then
// the config and the layers, jobs at a time (containerd downloads 3 at once). Every body
// is read to its end through a 1 MiB buffer and its length checked; digests are not
// recomputed (both registries verify them, and hashing would load the client).
func (c *client) pullImage(ctx context.Context, repo, ref string, jobs int) (pullResult, error) {
	var res pullResult
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v2/"+repo+"/manifests/"+ref), nil)
	req.Header.Set("Accept", acceptAll)
	resp, err := c.do(req, true, http.StatusOK)
	if err != nil {
		return res, err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil {
		return res, err
	}
	var m imageManifest
	if err := json.Unmarshal(raw, &m); err != nil || m.Config.Digest == "" {
		return res, fmt.Errorf("manifest %s:%s: not an image manifest (%v)", repo, ref, err)
	}
	blobs := append([]descriptor{m.Config}, m.Layers...)
	largest := 0
	for i, d := range blobs {
		if d.Size > blobs[largest].Size {
			largest = i
		}
	}
	var mu sync.Mutex
	total := int64(len(raw))
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(jobs, len(blobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for i := range next {
				d := blobs[i]
				g, err := c.getTimed(ctx, "/v2/"+repo+"/blobs/"+d.Digest, buf, d.Size)
				if err == nil && g.n != d.Size {
					err = fmt.Errorf("blob %s of %s: got %d bytes, want %d", d.Digest, repo, g.n, d.Size)
				}
				mu.Lock()
				total += g.n
				if i == largest {
					res.ttfb, res.tail = g.ttfb, g.tail
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for i := range blobs {
		next <- i
	}
	close(next)
	wg.Wait()
	res.bytes, res.elapsed = total, time.Since(start)
	return res, firstErr
}

// timedGet is one body read by getTimed.
type timedGet struct {
	n    int64
	ttfb time.Duration // from sending the request to the first body byte
	tail time.Duration // from holding want-1 bytes to the end of the body
}

// getTimed GETs path, reads the body to its end and times its first and last bytes.
func (c *client) getTimed(ctx context.Context, path string, buf []byte, want int64) (timedGet, error) {
	var g timedGet
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	resp, err := c.do(req, true, http.StatusOK)
	if err != nil {
		return g, err
	}
	defer resp.Body.Close()
	var penultimate time.Time
	for {
		m, err := resp.Body.Read(buf)
		if m > 0 && g.n == 0 {
			g.ttfb = time.Since(start)
		}
		g.n += int64(m)
		if penultimate.IsZero() && g.n >= want-1 {
			penultimate = time.Now()
		}
		if err == io.EOF {
			if !penultimate.IsZero() {
				g.tail = time.Since(penultimate)
			}
			return g, nil
		}
		if err != nil {
			return g, err
		}
	}
}

// serverCounters are a Berth's own request counters, read from its /metrics.
type serverCounters struct {
	bytesOut     float64 // response body bytes, all routes
	blobGets     float64 // GET blob requests answered 200 or 206
	manifestReqs float64 // GET and HEAD manifest requests
	inFlight     float64 // registry API requests being served
}

func (s serverCounters) sub(o serverCounters) serverCounters {
	return serverCounters{s.bytesOut - o.bytesOut, s.blobGets - o.blobGets, s.manifestReqs - o.manifestReqs, s.inFlight}
}

// metrics reads a Berth's /metrics: every sample, keyed by its name with labels as
// exposed (e.g. `berth_gc_deleted_total{what="blob"}`).
func (c *client) metrics(ctx context.Context) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/metrics"), nil)
	resp, err := c.do(req, true, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(raw), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// sumPrefix sums the samples of m whose name (labels included) starts with prefix, and
// returns their largest value too.
func sumPrefix(m map[string]float64, prefix string) (sum, largest float64) {
	for name, v := range m {
		if strings.HasPrefix(name, prefix) {
			sum += v
			largest = max(largest, v)
		}
	}
	return sum, largest
}

// counters reads a Berth's /metrics: what the mirror's upstream served, counted at the
// upstream itself.
func (c *client) counters(ctx context.Context) (serverCounters, error) {
	var s serverCounters
	m, err := c.metrics(ctx)
	if err != nil {
		return s, err
	}
	for name, v := range m {
		switch {
		case strings.HasPrefix(name, "berth_http_response_bytes_total{"):
			s.bytesOut += v
		case strings.HasPrefix(name, "berth_http_requests_total{") && strings.Contains(name, `route="blob"`) && strings.Contains(name, `method="GET"`) &&
			(strings.Contains(name, `code="200"`) || strings.Contains(name, `code="206"`)):
			s.blobGets += v
		case strings.HasPrefix(name, "berth_http_requests_total{") && strings.Contains(name, `route="manifest"`) &&
			(strings.Contains(name, `method="GET"`) || strings.Contains(name, `method="HEAD"`)):
			s.manifestReqs += v
		case name == "berth_http_requests_in_flight":
			s.inFlight = v
		}
	}
	return s, nil
}

// deleteManifest deletes a manifest by digest (202).
func (c *client) deleteManifest(ctx context.Context, repo, dgst string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, c.url("/v2/"+repo+"/manifests/"+dgst), nil)
	_, err := c.do(req, false, http.StatusAccepted)
	return err
}

// waitQuiet waits until the server has served no API request for two polls in a row
// (at most limit), so that its counters include every response.
func (c *client) waitQuiet(ctx context.Context, limit time.Duration) (serverCounters, error) {
	deadline := time.Now().Add(limit)
	quiet := 0
	for {
		s, err := c.counters(ctx)
		if err != nil {
			return s, err
		}
		if s.inFlight == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if quiet >= 2 || time.Now().After(deadline) {
			return s, nil
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return s, ctx.Err()
		}
	}
}
