package config

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
)

// HF configures the Hugging Face mirror (package hf): a pull-through cache of the Hub's
// read API on Berth's own port under Prefix, for clients pointed at it with
// HF_ENDPOINT=http://berth:5000/hf. Files are stored in the blob store under project
// Project, which is what Berth's auth checks (a project like any other, public or
// private), and a cached revision is also an OCI artifact (CNCF ModelPack) there.
type HF struct {
	Enabled bool `yaml:"enabled"`
	// Prefix is the URL path the mirror answers under (default /hf).
	Prefix string `yaml:"prefix"`
	// Project is the Berth project the cache lives in (default hf); created at start
	// when missing, public when Public is set (afterwards the project's own setting
	// counts, as for any project).
	Project string `yaml:"project"`
	Public  bool   `yaml:"public"`
	// Upstream is the Hub (default https://huggingface.co).
	Upstream string `yaml:"upstream"`
	// Token is the Hub access token Berth uses for gated and private repositories;
	// clients never see it, and their own Authorization is never sent upstream. One of
	// Token, TokenFile and TokenEnv.
	Token     string `yaml:"token" secret:"true"`
	TokenFile string `yaml:"tokenFile"`
	TokenEnv  string `yaml:"tokenEnv"`
	// Allow limits the repositories mirrored ("org/*", "datasets/org/*"); empty allows all.
	Allow []string `yaml:"allow"`
	// RevisionTTL is how long a branch or tag's commit (and the repository info) is
	// served without asking the Hub again; past it the Hub is asked, and when it is
	// down or rate-limits the cached answer is served stale.
	RevisionTTL Duration `yaml:"revisionTTL"`
	// Timeout bounds each request to the Hub (a file download may take longer while
	// bytes flow).
	Timeout Duration `yaml:"timeout"`
	// CacheSize bounds the bytes of files cached (0: unbounded); past it the repositories
	// pulled least recently are evicted whole (files and ModelPack artifacts), except
	// those pulled within CacheMinAge.
	CacheSize   ByteSize `yaml:"cacheSize"`
	CacheMinAge Duration `yaml:"cacheMinAge"`
	// MaxAPIBody bounds a JSON answer of the Hub (repository info, a tree listing).
	MaxAPIBody ByteSize `yaml:"maxAPIBody"`
	// CA is a PEM file of extra roots for the Hub and its CDN; Insecure skips
	// verification (testing only).
	CA       string `yaml:"ca"`
	Insecure bool   `yaml:"insecure"`
	// AllowPrivateRedirects lets the Hub redirect Berth to loopback or private
	// addresses (its CDN on a test network); off, such redirects are refused.
	AllowPrivateRedirects bool `yaml:"allowPrivateRedirects"`
}

func defaultHF() HF {
	return HF{Prefix: "/hf", Project: "hf", Upstream: "https://huggingface.co", RevisionTTL: Duration(5 * time.Minute),
		Timeout: Duration(30 * time.Second), MaxAPIBody: 32 << 20, CacheMinAge: Duration(10 * time.Minute)}
}

func (h HF) validate() []error {
	if !h.Enabled {
		return nil
	}
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if !strings.HasPrefix(h.Prefix, "/") || h.Prefix == "/" || strings.HasSuffix(h.Prefix, "/") || path.Clean(h.Prefix) != h.Prefix {
		bad("hf.prefix %q: want a clean path like /hf", h.Prefix)
	}
	for _, reserved := range []string{"/v2", "/token", "/api", "/metrics", "/healthz", "/readyz"} {
		if h.Prefix == reserved || strings.HasPrefix(h.Prefix+"/", reserved+"/") {
			bad("hf.prefix %q collides with Berth's own %s", h.Prefix, reserved)
		}
	}
	if h.Project == "" || strings.ContainsAny(h.Project, "/ ") || strings.ToLower(h.Project) != h.Project {
		bad("hf.project %q: want a lowercase project name", h.Project)
	}
	if u, err := url.Parse(h.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		bad("hf.upstream %q: want an http(s) URL without credentials", h.Upstream)
	}
	n := 0
	for _, v := range []string{h.Token, h.TokenFile, h.TokenEnv} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		bad("hf: set one of token, tokenFile and tokenEnv")
	}
	if h.RevisionTTL < 0 || h.Timeout <= 0 || h.CacheSize < 0 || h.CacheMinAge < 0 {
		bad("hf: revisionTTL, cacheSize and cacheMinAge must be ≥ 0 and timeout positive")
	}
	if h.MaxAPIBody < 1<<20 {
		bad("hf.maxAPIBody must be at least 1MiB")
	}
	for _, p := range h.Allow {
		if _, err := path.Match(p, ""); err != nil {
			bad("hf.allow %q: %v", p, err)
		}
	}
	return errs
}
