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
