package e2e

// The Helm chart (issue 17, deploy/helm/berth): helm lint; helm template for the single
// instance and the N-replica values, each document strict-decoded into the Kubernetes
// API types (unknown fields are errors, as the API server's strict field validation
// makes them), the Deployment's wiring checked, and the rendered berth.yaml accepted by
// `berth config check`; the chart pushed to Berth as an OCI artifact and pulled back.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
)

const chartDir = "../deploy/helm/berth"

// k8sDocs renders the chart and strict-decodes every document by its kind.
func k8sDocs(t *testing.T, helm string, args ...string) map[string]any {
	t.Helper()
	out := run(t, nil, helm, append([]string{"template", "test", chartDir}, args...)...)
	objs := map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("rendered YAML: %v", err)
		}
		if doc == nil {
			continue
		}
		js, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var obj any
		switch kind := fmt.Sprint(doc["kind"]); kind {
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "Service":
			obj = &corev1.Service{}
		case "PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "Ingress":
			obj = &networkingv1.Ingress{}
		case "PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		default:
			t.Fatalf("unexpected kind %q in the chart", kind)
		}
		d := json.NewDecoder(bytes.NewReader(js))
		d.DisallowUnknownFields()
		if err := d.Decode(obj); err != nil {
			t.Fatalf("%s does not decode strictly into the Kubernetes API type: %v\n%s", doc["kind"], err, js)
		}
		objs[fmt.Sprint(doc["kind"])] = obj
	}
	return objs
}

func TestHelmChart(t *testing.T) {
	helm := requireTool(t, "helm")
	env := toolEnv(t)
	for _, tc := range []struct {
		name, values string
		replicas     int32
		kinds        []string
		configEnv    []string // what secretEnv would provide
	}{
		{"single", "", 1, []string{"ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"},
			[]string{"BERTH_INITIAL_ADMIN_PASSWORD=admin-password-e2e"}},
		{"replicas", filepath.Join(chartDir, "values-replicas.yaml"), 3, []string{"ConfigMap", "Deployment", "Ingress", "PodDisruptionBudget", "Service"},
			[]string{"BERTH_INITIAL_ADMIN_PASSWORD=admin-password-e2e", "BERTH_DATABASE_DSN=postgres://berth:pw@db:5432/berth",
				"BERTH_STORAGE_S3_ACCESS_KEY=AKIAEXAMPLE", "BERTH_STORAGE_S3_SECRET_KEY=secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.values != "" {
				args = []string{"-f", tc.values}
			}
			run(t, env, helm, append([]string{"lint", "--strict", chartDir}, args...)...)
			objs := k8sDocs(t, helm, args...)
			for _, k := range tc.kinds {
				if objs[k] == nil {
					t.Fatalf("no %s rendered (got %v)", k, objs)
				}
			}
			if len(objs) != len(tc.kinds) {
				t.Fatalf("rendered kinds %v, want %v", objs, tc.kinds)
			}
			dep := objs["Deployment"].(*appsv1.Deployment)
			if *dep.Spec.Replicas != tc.replicas {
				t.Fatalf("replicas %d, want %d", *dep.Spec.Replicas, tc.replicas)
			}
			pod := dep.Spec.Template
			for k, v := range dep.Spec.Selector.MatchLabels {
				if pod.Labels[k] != v {
					t.Fatalf("selector %s=%s does not match the pod's labels %v", k, v, pod.Labels)
				}
			}
			c := pod.Spec.Containers[0]
			if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.Ports[0].ContainerPort != 5000 {
				t.Fatalf("probes or port: %+v %+v %+v", c.ReadinessProbe, c.LivenessProbe, c.Ports)
			}
			if pod.Spec.SecurityContext.RunAsUser == nil || *pod.Spec.SecurityContext.RunAsUser != 65532 || !*pod.Spec.SecurityContext.RunAsNonRoot {
				t.Fatalf("pod security context: %+v", pod.Spec.SecurityContext)
			}
			vols := map[string]bool{}
			for _, v := range pod.Spec.Volumes {
				vols[v.Name] = true
			}
			for _, m := range c.VolumeMounts {
				if !vols[m.Name] {
					t.Fatalf("volume mount %s has no volume", m.Name)
				}
			}
			secretEnv := 0
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					secretEnv++
				}
			}
			if secretEnv != len(tc.configEnv) {
				t.Fatalf("%d variables from Secrets, want %d: %+v", secretEnv, len(tc.configEnv), c.Env)
			}
			if tc.name == "replicas" {
				ing := objs["Ingress"].(*networkingv1.Ingress)
				if ing.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"] != "0" || ing.Annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] != "off" {
					t.Fatalf("ingress annotations: %v", ing.Annotations)
				}
				if dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
					t.Fatalf("replicas strategy %s", dep.Spec.Strategy.Type)
				}
			} else if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Fatalf("a single instance on a ReadWriteOnce volume must be Recreate, got %s", dep.Spec.Strategy.Type)
			}
			// The rendered berth.yaml is a configuration Berth accepts.
			cfg := filepath.Join(t.TempDir(), "berth.yaml")
			os.WriteFile(cfg, []byte(objs["ConfigMap"].(*corev1.ConfigMap).Data["berth.yaml"]), 0o600)
			out, err := runErr(append(tc.configEnv, "BERTH_DATA="+t.TempDir()), berthBin, "config", "check", "--config", cfg)
			if err != nil {
				t.Fatalf("berth config check of the chart's berth.yaml: %v\n%s", err, out)
			}
		})
	}
	// Replicas cannot share SQLite: the chart refuses to render that.
	if out, err := runErr(nil, helm, "template", "test", chartDir, "--set", "replicaCount=2"); err == nil || !strings.Contains(out, "replicas cannot share SQLite") {
		t.Fatalf("replicaCount=2 on SQLite rendered: %v\n%s", err, out)
	}

	// Pushed to Berth as an OCI chart and pulled back, byte for byte.
	b := startBerth(t, BerthOptions{})
	pkgDir, pullDir := t.TempDir(), t.TempDir()
	run(t, env, helm, "package", chartDir, "-d", pkgDir)
	tgz := filepath.Join(pkgDir, "berth-0.1.0.tgz")
	out := run(t, env, helm, "push", tgz, "oci://"+b.Addr+"/charts", "--plain-http")
	if !strings.Contains(out, "Digest: sha256:") {
		t.Fatalf("helm push: %s", out)
	}
	run(t, env, helm, "pull", "oci://"+b.Addr+"/charts/berth", "--version", "0.1.0", "--plain-http", "-d", pullDir)
	a, _ := os.ReadFile(tgz)
	p, _ := os.ReadFile(filepath.Join(pullDir, "berth-0.1.0.tgz"))
	if len(a) == 0 || !bytes.Equal(a, p) {
		t.Fatalf("the pulled chart differs from the pushed one (%d and %d bytes)", len(a), len(p))
	}
	if show := run(t, env, helm, "show", "chart", "oci://"+b.Addr+"/charts/berth", "--version", "0.1.0", "--plain-http"); !strings.Contains(show, "name: berth") {
		t.Fatalf("helm show chart: %s", show)
	}
}
