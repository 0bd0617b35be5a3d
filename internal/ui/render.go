package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// pages holds one template per page, each the layout plus the page's own file.
type pages struct{ t map[string]*template.Template }

var funcs = template.FuncMap{
	"bytes": humanBytes,
	"ago":   ago,
	"short": shortDigest,
	"repo":  repoURL,
	"ref":   refURL,
	"join":  strings.Join,
	"q":     url.QueryEscape,
	"path":  url.PathEscape,
	"add":   func(a, b int) int { return a + b },
	"deref": func(p any) int64 {
		switch x := p.(type) {
		case *int64:
			if x != nil {
				return *x
			}
		case *int:
			if x != nil {
				return int64(*x)
			}
		}
		return 0
	},
	"json": func(v any) string {
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	},
	"list":  func(s ...string) []string { return s },
	"pct":   func(f float64) float64 { return f * 100 },
	"sum":   func(a, b float64) float64 { return a + b },
	"int64": func(f float64) int64 { return int64(f) },
	"isnan": math.IsNaN,
	"cmds":  loginCommands,
	"kind":  artifactKind,
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
}

func parsePages() (*pages, error) {
	p := &pages{t: map[string]*template.Template{}}
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", name, err)
		}
		p.t[name] = t
	}
	return p, nil
}

// frame is what the layout reads; Data is the page's own.
type frame struct {
	Title string
	User  string
	Admin bool
	CSRF  string
	OIDC  bool
	Nav   string
	Data  any
}

// render writes page name with data; it renders into a buffer first, so a template
// error never leaves half a page behind a 200.
func (u *UI) render(w http.ResponseWriter, r *http.Request, v *visit, status int, name string, data any) {
	t := u.pages.t[name]
	f := frame{Data: data, Nav: name}
	if m, ok := data.(map[string]any); ok {
		if s, ok := m["Title"].(string); ok {
			f.Title = s
		}
	}
	if v != nil {
		f.User, f.CSRF, f.Admin = v.s.User, v.s.CSRF, v.p.Admin
	}
	var buf bytes.Buffer
	if t == nil {
		u.d.Log.Error("ui: no template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.Execute(&buf, f); err != nil {
		u.d.Log.Error("ui: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func ago(t any) string {
	var tm time.Time
	switch x := t.(type) {
	case time.Time:
		tm = x
	case *time.Time:
		if x == nil {
			return "never"
		}
		tm = *x
	}
	if tm.IsZero() {
		return "never"
	}
	d := time.Since(tm)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	default:
		return tm.UTC().Format("2006-01-02")
	}
}

// shortDigest is the first 12 hex digits of a digest, as docker prints image IDs.
func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return hex[:12]
	}
	return d
}

// repoURL is a repository's page: /r/<name> (a name never holds ':' or '@').
func repoURL(name string) string { return "/r/" + escapeName(name) }

// refURL is a manifest's page: /r/<name>@<digest>.
func refURL(name, digest string) string {
	return "/r/" + escapeName(name) + "@" + url.PathEscape(digest)
}

func escapeName(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// loginCommands are the command-line logins with a CLI secret.
func loginCommands(user, host string) []command {
	return []command{
		{"docker", "docker login " + host + " -u " + user},
		{"crane", "crane auth login " + host + " -u " + user + " -p <secret>"},
		{"helm", "helm registry login " + host + " -u " + user},
	}
}

// artifactKind names what a manifest holds for people: an image, an index, a Helm
// chart, or its artifact type.
func artifactKind(mediaType, artifactType string) string {
	switch {
	case mediaType == "application/vnd.oci.image.index.v1+json" || mediaType == "application/vnd.docker.distribution.manifest.list.v2+json":
		return "index"
	case artifactType == mediaTypeHelmConfig:
		return "Helm chart"
	case artifactType == "" || artifactType == mediaTypeImageConfig || artifactType == mediaTypeDockerConfig:
		return "image"
	}
	return artifactType
}
