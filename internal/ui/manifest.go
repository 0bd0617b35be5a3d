package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/scan"
)

// maxConfig bounds the config blob a page reads (image configs are kilobytes).
const maxConfig = 4 << 20

// Referrer trees are bounded: a page never walks an unbounded graph.
const (
	maxReferrerDepth = 3
	maxReferrerNodes = 200
)

// manifestDoc is the part of a manifest or index a page shows.
type manifestDoc struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       *oci.Descriptor   `json:"config"`
	Layers       []oci.Descriptor  `json:"layers"`
	Manifests    []platformDesc    `json:"manifests"`
	Subject      *oci.Descriptor   `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

type platformDesc struct {
	oci.Descriptor
	Platform *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	} `json:"platform"`
}

func (p platformDesc) Name() string {
	if p.Platform == nil {
		return "unknown"
	}
	s := p.Platform.OS + "/" + p.Platform.Architecture
	if p.Platform.Variant != "" {
		s += "/" + p.Platform.Variant
	}
	return s
}

// imageConfig is the part of an image config a page shows.
type imageConfig struct {
	OS           string    `json:"os"`
	Architecture string    `json:"architecture"`
	Variant      string    `json:"variant"`
	Created      time.Time `json:"created"`
	Config       struct {
		User         string              `json:"User"`
		Env          []string            `json:"Env"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		WorkingDir   string              `json:"WorkingDir"`
		Labels       map[string]string   `json:"Labels"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
	} `json:"config"`
	History []struct {
		Created    time.Time `json:"created"`
		CreatedBy  string    `json:"created_by"`
		Comment    string    `json:"comment"`
		EmptyLayer bool      `json:"empty_layer"`
	} `json:"history"`
}

// helmChart is a Helm chart's config (application/vnd.cncf.helm.config.v1+json).
type helmChart struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	AppVersion  string `json:"appVersion"`
	Description string `json:"description"`
	Type        string `json:"type"`
}

const (
	mediaTypeImageConfig  = "application/vnd.oci.image.config.v1+json"
	mediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json"
	mediaTypeHelmConfig   = "application/vnd.cncf.helm.config.v1+json"
)

// node is one referrer in the tree, with what it is and, for signatures, the verdict.
type node struct {
	Digest       string
	ArtifactType string
	Kind         string // signature, sbom, attestation, artifact
	Via          string // "referrers API" or the legacy tag it hangs on
	Size         int64
	Created      string
	Verdict      string // verified, failed, unchecked (signatures only)
	Reason       string
	Children     []*node
}

func referrerKind(artifactType string, ann map[string]string) string {
	t := strings.ToLower(artifactType)
	// cosign's bundles name a predicate type for signatures too: its own sign predicate.
	pt := ann["dev.sigstore.bundle.predicateType"]
	switch {
	case (pt != "" && !strings.HasPrefix(pt, "https://sigstore.dev/cosign/sign")) || strings.Contains(t, "in-toto"):
		return "attestation"
	case strings.Contains(t, "sigstore.bundle"), strings.Contains(t, "notary.signature"), strings.Contains(t, "cosign.artifact.sig"):
		return "signature"
	case strings.Contains(t, "spdx"), strings.Contains(t, "cyclonedx"), strings.Contains(t, "sbom"):
		return "sbom"
	}
	return "artifact"
}

func (u *UI) manifest(w http.ResponseWriter, r *http.Request, v *visit, rf ref) error {
	ctx := r.Context()
	acts, err := u.d.Auth.Allowed(ctx, v.p, rf.Repo, []auth.Action{auth.Pull, auth.Delete})
	if err != nil {
		return err
	}
	if !slices.Contains(acts, auth.Pull) {
		return errStatus(http.StatusForbidden, "you may not pull from "+rf.Repo)
	}
	m, err := u.d.Registry.GetManifest(ctx, rf.Repo, registry.Reference{Tag: rf.Tag, Digest: rf.Digest}, true)
	if errors.Is(err, errcode.ManifestUnknown) || errors.Is(err, errcode.NameUnknown) || errors.Is(err, meta.ErrNotFound) {
		return errStatus(http.StatusNotFound, "no such manifest in "+rf.Repo)
	}
	if err != nil {
		return err
	}
	if rf.Tag != "" && rf.Digest == "" {
		// A tag moves; its page is its digest's, which links stay true to.
		http.Redirect(w, r, refURL(rf.Repo, m.Digest)+"?tag="+url.QueryEscape(rf.Tag), http.StatusSeeOther)
		return nil
	}
	var doc manifestDoc
	if err := json.Unmarshal(m.Payload, &doc); err != nil {
		return errStatus(http.StatusUnprocessableEntity, "the manifest is not JSON: "+err.Error())
	}
	data := map[string]any{
		"Title": rf.Repo + "@" + shortDigest(m.Digest), "Repo": rf.Repo, "Digest": m.Digest, "Manifest": m,
		"Doc": doc, "Raw": indented(m.Payload), "CanDelete": slices.Contains(acts, auth.Delete),
		"Tag": r.URL.Query().Get("tag"),
	}
	project, _, _ := strings.Cut(rf.Repo, "/")
	data["Project"] = project
	var total int64
	for _, l := range doc.Layers {
		total += l.Size
	}
	data["LayerBytes"] = total
	if doc.Config != nil {
		switch doc.Config.MediaType {
		case mediaTypeImageConfig, mediaTypeDockerConfig:
			var c imageConfig
			if err := u.readConfig(r, rf.Repo, doc.Config, &c); err != nil {
				data["ConfigError"] = err.Error()
			} else {
				data["Config"] = c
			}
		case mediaTypeHelmConfig:
			var c helmChart
			if err := u.readConfig(r, rf.Repo, doc.Config, &c); err != nil {
				data["ConfigError"] = err.Error()
			} else {
				data["Chart"] = c
			}
		}
	}
	tree, err := u.referrers(r, rf.Repo, m.Digest, 0, new(int))
	if err != nil {
		return err
	}
	u.verdicts(r, rf.Repo, m.Digest, tree, data)
	data["Referrers"] = tree
	tag := data["Tag"].(string)
	_, helm := data["Chart"]
	data["Pull"] = pullCommands(r, rf.Repo, tag, m.Digest)
	if helm {
		data["Pull"] = helmCommands(r, rf.Repo, data["Chart"].(helmChart).Version)
	}
	if rep, ok := u.scanReport(r, v, rf.Repo, m.Digest); ok {
		data["Scan"] = rep
	}
	u.render(w, r, v, http.StatusOK, "manifest", data)
	return nil
}

func (u *UI) readConfig(r *http.Request, repo string, d *oci.Descriptor, into any) error {
	if d.Size > maxConfig {
		return errors.New("the config is larger than 4 MiB; not shown")
	}
	b, err := u.d.Registry.OpenBlob(r.Context(), repo, d.Digest)
	if err != nil {
		return errors.New("the config blob is not stored here")
	}
	defer b.Close()
	raw, err := io.ReadAll(io.LimitReader(b, maxConfig))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return errors.New("the config is not valid JSON")
	}
	return nil
}

// referrers builds the tree of what refers to dgst: through the referrers API, and
// cosign's legacy sha256-<hex>.sig/.att/.sbom tags.
func (u *UI) referrers(r *http.Request, repo, dgst string, depth int, count *int) ([]*node, error) {
	if depth >= maxReferrerDepth {
		return nil, nil
	}
	ctx := r.Context()
	descs, err := u.d.Registry.Referrers(ctx, repo, oci.Digest(dgst), "")
	if err != nil {
		return nil, err
	}
	var out []*node
	for _, d := range descs {
		if *count >= maxReferrerNodes {
			break
		}
		*count++
		n := &node{Digest: string(d.Digest), ArtifactType: d.ArtifactType, Kind: referrerKind(d.ArtifactType, d.Annotations),
			Via: "referrers API", Size: d.Size, Created: d.Annotations["org.opencontainers.image.created"]}
		if n.Children, err = u.referrers(r, repo, n.Digest, depth+1, count); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if _, hex, ok := strings.Cut(dgst, ":"); ok {
		for _, suffix := range []string{"sig", "att", "sbom"} {
			tag := "sha256-" + hex + "." + suffix
			m, err := u.d.Registry.GetManifest(ctx, repo, registry.Reference{Tag: tag}, false)
			if err != nil {
				continue // most images have none
			}
			kind := map[string]string{"sig": "signature", "att": "attestation", "sbom": "sbom"}[suffix]
			*count++
			out = append(out, &node{Digest: m.Digest, ArtifactType: m.ArtifactType, Kind: kind, Via: "tag " + tag, Size: m.Size})
		}
	}
	return out, nil
}

// verdicts marks the signatures in the tree with what the signature policy found.
func (u *UI) verdicts(r *http.Request, repo, dgst string, tree []*node, data map[string]any) {
	if u.d.Trust == nil {
		data["Policy"] = "no signature policies are configured; signatures are listed, not checked"
		return
	}
	vd, err := u.d.Trust.VerifyImage(r.Context(), repo, registry.Reference{Digest: oci.Digest(dgst)})
	if err != nil {
		data["Policy"] = "the signature check failed: " + err.Error()
		return
	}
	if vd.Policy == "" {
		data["Policy"] = "no signature policy applies to this repository; signatures are listed, not checked"
		return
	}
	data["Verdict"] = vd
	byRef := map[string][]bool{}
	reasons := map[string]string{}
	for _, s := range vd.Signatures {
		ref := s.Ref
		if i := strings.IndexByte(ref, '['); i > 0 { // legacy tag "sha256-….sig[0]"
			ref = "tag " + ref[:i]
		}
		byRef[ref] = append(byRef[ref], s.Verified)
		if !s.Verified && s.Reason != "" {
			reasons[ref] = s.Reason
		}
	}
	var mark func([]*node)
	mark = func(ns []*node) {
		for _, n := range ns {
			if n.Kind == "signature" || n.Kind == "attestation" {
				res, ok := byRef[n.Digest]
				if !ok {
					res, ok = byRef[n.Via]
				}
				switch {
				case !ok:
					n.Verdict = "unchecked"
				case slices.Contains(res, true):
					n.Verdict = "verified"
				default:
					n.Verdict, n.Reason = "failed", reasons[n.Digest]+reasons[n.Via]
				}
			}
			mark(n.Children)
		}
	}
	mark(tree)
}

// scanReport reads the image's vulnerability report, if scanning is on and one exists.
func (u *UI) scanReport(r *http.Request, v *visit, repo, dgst string) (*scan.Report, bool) {
	var rep scan.Report
	if _, err := u.get(r, v, apiRepoPath(repo)+"/manifests/"+url.PathEscape(dgst)+"/scan", nil, &rep); err != nil {
		return nil, false
	}
	return &rep, true
}

// command is one copyable command line.
type command struct{ Tool, Line string }

// registryHost is the host clients name this registry by: the one the browser used.
func registryHost(r *http.Request) string { return r.Host }

func pullCommands(r *http.Request, repo, tag, dgst string) []command {
	host := registryHost(r)
	var out []command
	plain := ""
	if r.TLS == nil && r.Header.Get("X-Forwarded-Proto") != "https" {
		plain = " --plain-http"
	}
	add := func(ref string) {
		img := host + "/" + repo + ref
		out = append(out,
			command{"docker", "docker pull " + img},
			command{"crane", "crane pull " + img + " image.tar"},
			command{"cric", "cric pull " + img},
			command{"containerd", "ctr image pull" + plain + " " + img},
		)
	}
	if tag != "" {
		add(":" + tag)
	}
	if dgst != "" {
		add("@" + dgst)
	}
	return out
}

func helmCommands(r *http.Request, repo, version string) []command {
	base := "helm pull oci://" + registryHost(r) + "/" + repo
	out := []command{{"helm", base + " --version " + version}}
	if r.TLS == nil {
		out[0].Line += " --plain-http"
	}
	return out
}

// indented is the manifest pretty-printed for reading (the stored bytes stay as sent).
func indented(raw []byte) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}
