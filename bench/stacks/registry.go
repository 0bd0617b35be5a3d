package main

// The plain HTTP registry client, shared by copy between bench/stacks (auth) and
// bench/stacks (the file is the same in both): uploads, manifests, mounts, pulls.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Media types the clients send and accept.
const (
	mtOCIManifest = "application/vnd.oci.image.manifest.v1+json"
	mtOCIConfig   = "application/vnd.oci.image.config.v1+json"
	mtOCILayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	acceptAll     = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, " +
		"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
)

// regClient talks to one registry (or a load balancer) with net/http, keep-alive.
type regClient struct {
	host string // 127.0.0.1:port
	hc   *http.Client
	auth string // Authorization header value; empty for none
}

func newRegClient(host string) *regClient { return &regClient{host: host, hc: httpClient()} }

// withAuth returns a client sending the given Authorization header.
func (c *regClient) withAuth(auth string) *regClient {
	d := *c
	d.auth = auth
	return &d
}

func (c *regClient) url(path string) string { return "http://" + c.host + path }

type httpError struct {
	method, url string
	status      int
	body        string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.url, e.status, strings.TrimSpace(e.body))
}

// do sends req and returns the response if its status is one of want; the body is
// drained and closed unless keep is set.
func (c *regClient) do(req *http.Request, keep bool, want ...int) (*http.Response, error) {
	req.Header.Set("User-Agent", "berth-bench")
	if c.auth != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", c.auth)
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

// location resolves an upload Location header.
func (c *regClient) location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s %s: no Location header", resp.Request.Method, resp.Request.URL)
	}
	base, _ := url.Parse("http://" + c.host)
	u, err := base.Parse(loc)
	if err != nil {
		return nil, err
	}
	u.Host = c.host // behind a load balancer the Location may name the Host sent
	return u, nil
}

func withDigest(u *url.URL, dgst string) string {
	v := *u
	q := v.Query()
	q.Set("digest", dgst)
	v.RawQuery = q.Encode()
	return v.String()
}

func (c *regClient) startUpload(ctx context.Context, repo string) (*url.URL, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/v2/"+repo+"/blobs/uploads/"), nil)
	resp, err := c.do(req, false, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	return c.location(resp)
}

// pushMonolithic uploads a blob with POST, then one PUT carrying the whole body.
func (c *regClient) pushMonolithic(ctx context.Context, repo, dgst string, body io.Reader, size int64) error {
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

// pushChunked uploads a blob with POST, one PATCH per chunk, then an empty PUT.
func (c *regClient) pushChunked(ctx context.Context, repo, dgst string, r io.ReaderAt, size, chunk int64) error {
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
func (c *regClient) pushBytes(ctx context.Context, repo string, data []byte) (string, error) {
	dgst := digestOf(data)
	return dgst, c.pushMonolithic(ctx, repo, dgst, bytes.NewReader(data), int64(len(data)))
}

func (c *regClient) putManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, c.url("/v2/"+repo+"/manifests/"+ref), bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaType)
	_, err := c.do(req, false, http.StatusCreated)
	return err
}

// mount asks the registry to mount a blob from another repository (201); an upload
// session opened instead (202) is an error.
func (c *regClient) mount(ctx context.Context, repo, dgst, from string) error {
	q := url.Values{"mount": {dgst}, "from": {from}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/v2/"+repo+"/blobs/uploads/?"+q.Encode()), nil)
	resp, err := c.do(req, false, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("mount %s from %s into %s: HTTP %d, not mounted", dgst, from, repo, resp.StatusCode)
	}
	return nil
}

// getCount GETs path and reads the whole body through buf, returning its length.
func (c *regClient) getCount(ctx context.Context, path string, buf []byte) (int64, error) {
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

// imageConfig returns a minimal OCI image config for the layers.
func imageConfig(layers []descriptor, salt string) []byte {
	diffIDs := make([]string, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.Digest // not real diff IDs; registries do not check them
	}
	raw, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Labels": map[string]string{"bench": salt}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	return raw
}

func manifestFor(config []byte, layers []descriptor) []byte {
	raw, _ := json.Marshal(imageManifest{
		SchemaVersion: 2,
		MediaType:     mtOCIManifest,
		Config:        descriptor{MediaType: mtOCIConfig, Digest: digestOf(config), Size: int64(len(config))},
		Layers:        layers,
	})
	return raw
}

// pushImage uploads the layers, a config and the manifest of a small image and returns
// the manifest's digest.
func (c *regClient) pushImage(ctx context.Context, repo, tag string, blobs [][]byte, salt string) (string, error) {
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

// randBytes returns n pseudo-random bytes from seed.
func randBytes(seed uint64, n int64) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	buf := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(buf)
	return buf
}
