package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/berth-registry/berth/internal/proxy"
)

// kubeNodeConfig renders the containerd node files as a ConfigMap and a DaemonSet that
// installs them on every node: an init container copies them into the host's certs.d
// (containerd rereads hosts.toml on each pull, so no restart), then a pause container
// keeps the pod alive. The pod template carries a hash of the files, so changing them
// (a new upstream, a renewed CA) rolls the DaemonSet.
func kubeNodeConfig(files []proxy.NodeFile, namespace, installImage string) (string, error) {
	const name = "berth-node-config"
	data := map[string]string{}
	script := []string{"set -eu"}
	sum := sha256.New()
	for i, f := range files {
		rel, ok := strings.CutPrefix(f.Path, proxy.ContainerdCertsDir+"/")
		if !ok {
			return "", fmt.Errorf("%s is outside %s", f.Path, proxy.ContainerdCertsDir)
		}
		key := fmt.Sprintf("file%d", i)
		data[key] = f.Content
		dst := path.Join("/host/certs.d", rel)
		// Write beside, then rename: containerd must never read half a file.
		script = append(script, fmt.Sprintf("mkdir -p %s && cp /config/%s %s.tmp && chmod 0644 %s.tmp && mv %s.tmp %s",
			shellQuote(path.Dir(dst)), key, shellQuote(dst), shellQuote(dst), shellQuote(dst), shellQuote(dst)))
		fmt.Fprintf(sum, "%s\x00%s\x00", f.Path, f.Content)
	}
	script = append(script, "echo installed "+fmt.Sprint(len(files))+" files under "+proxy.ContainerdCertsDir)
	data["install.sh"] = strings.Join(script, "\n") + "\n"
	labels := map[string]string{"app.kubernetes.io/name": name}
	cm := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": namespace, "labels": labels},
		"data":     data,
	}
	ds := map[string]any{
		"apiVersion": "apps/v1", "kind": "DaemonSet",
		"metadata": map[string]any{"name": name, "namespace": namespace, "labels": labels},
		"spec": map[string]any{
			"selector":       map[string]any{"matchLabels": labels},
			"updateStrategy": map[string]any{"type": "RollingUpdate"},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels,
					"annotations": map[string]string{"berth.dev/node-config-sha256": hex.EncodeToString(sum.Sum(nil))[:16]}},
				"spec": map[string]any{
					"tolerations":       []any{map[string]string{"operator": "Exists"}},
					"priorityClassName": "system-node-critical",
					"initContainers": []any{map[string]any{
						"name": "install", "image": installImage,
						"command":         []string{"sh", "/config/install.sh"},
						"volumeMounts":    []any{map[string]any{"name": "config", "mountPath": "/config", "readOnly": true}, map[string]any{"name": "certs-d", "mountPath": "/host/certs.d"}},
						"securityContext": map[string]any{"allowPrivilegeEscalation": false},
					}},
					"containers": []any{map[string]any{
						"name": "pause", "image": "registry.k8s.io/pause:3.10",
						"resources":       map[string]any{"requests": map[string]string{"cpu": "1m", "memory": "8Mi"}, "limits": map[string]string{"memory": "16Mi"}},
						"securityContext": map[string]any{"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "runAsUser": 65535},
					}},
					"volumes": []any{
						map[string]any{"name": "config", "configMap": map[string]any{"name": name}},
						map[string]any{"name": "certs-d", "hostPath": map[string]any{"path": proxy.ContainerdCertsDir, "type": "DirectoryOrCreate"}},
					},
				},
			},
		},
	}
	var b strings.Builder
	b.WriteString("# Installs Berth's containerd hosts.toml files on every node (kubectl apply -f).\n")
	b.WriteString("# containerd must have config_path = \"" + proxy.ContainerdCertsDir + "\" (see berth mirror config containerd).\n")
	for i, doc := range []any{cm, ds} {
		if i > 0 {
			b.WriteString("---\n")
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			return "", err
		}
		b.Write(out)
	}
	return b.String(), nil
}

// shellQuote quotes s for sh: node paths come from upstream names, which the config
// validates, but quoting keeps the script correct for any of them.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
