package proxy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/berth-registry/berth/internal/config"
)

// NodeConfig renders the client configuration that points a node's container runtime at
// this Berth (berthURL, e.g. http://berth.example:5000) for every configured upstream:
// containerd hosts.toml files, Docker's daemon.json, or CRI-O/podman registries.conf.
func NodeConfig(kind, berthURL string, cfg config.Mirror) (string, error) {
	u, err := url.Parse(berthURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("berth URL %q: want http(s)://host[:port]", berthURL)
	}
	ups := append([]config.Upstream(nil), cfg.Upstreams...)
	sort.Slice(ups, func(i, j int) bool { return ups[i].Name < ups[j].Name })
	var b strings.Builder
	switch kind {
	case "containerd":
		b.WriteString("# containerd: one file per upstream; set config_path = \"/etc/containerd/certs.d\" in\n")
		b.WriteString("# [plugins.\"io.containerd.grpc.v1.cri\".registry] (containerd 1.x) or use ctr --hosts-dir.\n")
		for _, up := range ups {
			server := "https://" + up.Name
			if up.Name == "docker.io" {
				server = "https://registry-1.docker.io"
			}
			fmt.Fprintf(&b, "\n# /etc/containerd/certs.d/%s/hosts.toml\n", up.Name)
			fmt.Fprintf(&b, "server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", server, strings.TrimRight(berthURL, "/"))
			if u.Scheme == "http" {
				b.WriteString("  skip_verify = true\n")
			}
		}
	case "docker":
		if cfg.DefaultUpstream != "docker.io" {
			return "", fmt.Errorf("docker's registry-mirrors setting only mirrors Docker Hub: set mirror.defaultUpstream: docker.io")
		}
		doc := map[string]any{"registry-mirrors": []string{strings.TrimRight(berthURL, "/")}}
		if u.Scheme == "http" {
			doc["insecure-registries"] = []string{u.Host}
		}
		out, _ := json.MarshalIndent(doc, "", "  ")
		b.WriteString("// /etc/docker/daemon.json\n")
		b.Write(out)
		b.WriteString("\n")
	case "crio", "podman":
		b.WriteString("# /etc/containers/registries.conf.d/berth.conf\n")
		for _, up := range ups {
			fmt.Fprintf(&b, "\n[[registry]]\nprefix = %q\nlocation = %q\n\n[[registry.mirror]]\nlocation = %q\n",
				up.Name, up.Name, u.Host+"/"+up.Name)
			if u.Scheme == "http" {
				b.WriteString("insecure = true\n")
			}
		}
	default:
		return "", fmt.Errorf("unknown runtime %q: want containerd, docker or crio", kind)
	}
	return b.String(), nil
}
