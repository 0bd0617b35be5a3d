package proxy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/berth-registry/berth/internal/config"
)

// ContainerdCertsDir is where containerd reads hosts.toml files (its config_path).
const ContainerdCertsDir = "/etc/containerd/certs.d"

// caFile is the name the CA gets beside each hosts.toml; containerd resolves a
// relative ca path against the host's directory.
const caFile = "berth-ca.crt"

// NodeFile is one file of a node's runtime configuration: its path on the node and
// its content.
type NodeFile struct {
	Path    string
	Content string
}

// NodeFiles renders the configuration that points a node's container runtime at this
// Berth (berthURL, e.g. https://berth.example:5000) for every configured upstream:
// containerd's certs.d tree (one hosts.toml per upstream), Docker's daemon.json, or
// CRI-O/podman's registries.conf. caPEM, when Berth's certificate comes from its own CA,
// is installed where each runtime looks for registry CAs, so nothing skips verification;
// over plain http no TLS setting is written at all.
func NodeFiles(kind, berthURL string, cfg config.Mirror, caPEM []byte) ([]NodeFile, error) {
	u, err := url.Parse(berthURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("berth URL %q: want http(s)://host[:port]", berthURL)
	}
	if u.Scheme == "http" {
		caPEM = nil
	}
	ups := append([]config.Upstream(nil), cfg.Upstreams...)
	sort.Slice(ups, func(i, j int) bool { return ups[i].Name < ups[j].Name })
	var files []NodeFile
	switch kind {
	case "containerd":
		for _, up := range ups {
			server := "https://" + up.Name
			if up.Name == "docker.io" {
				server = "https://registry-1.docker.io"
			}
			dir := path.Join(ContainerdCertsDir, up.Name)
			var b strings.Builder
			fmt.Fprintf(&b, "server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", server, strings.TrimRight(berthURL, "/"))
			if caPEM != nil {
				fmt.Fprintf(&b, "  ca = %q\n", caFile)
			}
			files = append(files, NodeFile{Path: path.Join(dir, "hosts.toml"), Content: b.String()})
			if caPEM != nil {
				files = append(files, NodeFile{Path: path.Join(dir, caFile), Content: string(caPEM)})
			}
		}
	case "docker":
		if cfg.DefaultUpstream != "docker.io" {
			return nil, fmt.Errorf("docker's registry-mirrors setting only mirrors Docker Hub: set mirror.defaultUpstream: docker.io")
		}
		doc := map[string]any{"registry-mirrors": []string{strings.TrimRight(berthURL, "/")}}
		if u.Scheme == "http" {
			doc["insecure-registries"] = []string{u.Host}
		}
		out, _ := json.MarshalIndent(doc, "", "  ")
		files = append(files, NodeFile{Path: "/etc/docker/daemon.json", Content: string(out) + "\n"})
		if caPEM != nil {
			files = append(files, NodeFile{Path: path.Join("/etc/docker/certs.d", u.Host, "ca.crt"), Content: string(caPEM)})
		}
	case "crio", "podman":
		var b strings.Builder
		for i, up := range ups {
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "[[registry]]\nprefix = %q\nlocation = %q\n\n[[registry.mirror]]\nlocation = %q\n",
				up.Name, up.Name, u.Host+"/"+up.Name)
			if u.Scheme == "http" {
				b.WriteString("insecure = true\n")
			}
		}
		files = append(files, NodeFile{Path: "/etc/containers/registries.conf.d/berth.conf", Content: b.String()})
		if caPEM != nil {
			files = append(files, NodeFile{Path: path.Join("/etc/containers/certs.d", u.Host, "ca.crt"), Content: string(caPEM)})
		}
	default:
		return nil, fmt.Errorf("unknown runtime %q: want containerd, docker or crio", kind)
	}
	return files, nil
}

// NodeConfig is NodeFiles as one stream, each file under a comment naming its path.
func NodeConfig(kind, berthURL string, cfg config.Mirror, caPEM []byte) (string, error) {
	files, err := NodeFiles(kind, berthURL, cfg, caPEM)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if kind == "containerd" {
		b.WriteString("# containerd reads these with config_path = \"" + ContainerdCertsDir + "\": containerd 2.x under\n")
		b.WriteString("# [plugins.\"io.containerd.cri.v1.images\".registry], 1.x under [plugins.\"io.containerd.grpc.v1.cri\".registry];\n")
		b.WriteString("# ctr takes --hosts-dir. Or write the tree directly: berth mirror config containerd --dir DIR.\n")
	}
	comment := "#"
	if kind == "docker" {
		comment = "//"
	}
	for _, f := range files {
		fmt.Fprintf(&b, "\n%s %s\n%s", comment, f.Path, f.Content)
	}
	return b.String(), nil
}
