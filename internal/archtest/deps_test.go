// Package archtest holds the architecture's rules as a test: which internal packages may
// import which (handlers → services → stores, never back), and which third-party modules
// each may use. A new dependency is a decision: make it here, visibly.
package archtest

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/berth-registry/berth"

// allowed lists, per package, the internal packages and third-party import path prefixes
// it may depend on directly (the standard library is always allowed).
var allowed = map[string][]string{
	"internal/errcode":   {},
	"internal/oci":       {"github.com/opencontainers/go-digest"},
	"internal/config":    {"go.yaml.in/yaml/v3"},
	"internal/blobstore": {"github.com/opencontainers/go-digest", "golang.org/x/sys/unix", "github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go"},
	"internal/metacache": {},
	"internal/meta":      {"internal/metacache", "github.com/jackc/pgx/v5/pgconn", "github.com/jackc/pgx/v5/stdlib", "github.com/pressly/goose/v3", "modernc.org/sqlite"},
	"internal/auth": {"internal/meta", "internal/oci", "internal/passwd", "github.com/golang-jwt/jwt/v5",
		"golang.org/x/sync/singleflight"},
	// passwd verifies legacy bcrypt hashes outside FIPS mode only; new hashes are crypto/pbkdf2.
	"internal/passwd":   {"golang.org/x/crypto/bcrypt"},
	"internal/registry": {"internal/blobstore", "internal/errcode", "internal/meta", "internal/oci"},
	"internal/jobs":     {"internal/meta", "github.com/prometheus/client_golang/prometheus"},
	"internal/gc":       {"internal/blobstore", "internal/jobs", "internal/meta", "github.com/prometheus/client_golang/prometheus"},
	"internal/quota":    {"internal/errcode", "internal/meta", "internal/oci", "github.com/prometheus/client_golang/prometheus"},
	"internal/session":  {"internal/meta"},
	"internal/tagrules": {"internal/jobs", "internal/meta", "internal/oci", "github.com/prometheus/client_golang/prometheus"},
	// scan writes an empty Java database with trivy-java-db's package (which opens it
	// through the sqlite driver meta uses too).
	"internal/scan": {"internal/errcode", "internal/jobs", "internal/meta", "internal/oci", "github.com/prometheus/client_golang/prometheus",
		"github.com/aquasecurity/trivy-java-db/pkg/db", "modernc.org/sqlite"},
	"internal/events": {"internal/jobs", "internal/meta", "github.com/prometheus/client_golang/prometheus"},

	"internal/replication": {"internal/cric", "internal/events", "internal/jobs", "internal/meta",
		"github.com/google/go-containerregistry/pkg/authn", "github.com/prometheus/client_golang/prometheus", "github.com/Masterminds/semver/v3"},

	// scannertest is a test adapter; it validates traffic against the API's OpenAPI document.
	"internal/scan/scannertest": {"github.com/getkin/kin-openapi"},
	"internal/ldapauth":         {"github.com/go-ldap/ldap/v3"},
	"internal/oidc":             {"internal/meta", "internal/session", "github.com/coreos/go-oidc/v3/oidc", "golang.org/x/oauth2"},
	// storagepressure measures and refuses; prometheus stays in server.
	// trivydbtest builds test databases with trivy-db's own packages.
	"internal/scan/trivydbtest": {"github.com/aquasecurity/trivy-db", "github.com/aquasecurity/trivy-java-db", "go.etcd.io/bbolt", "modernc.org/sqlite"},
	"internal/storagepressure":  {"internal/errcode"},
	"internal/trust": {"internal/blobstore", "internal/config", "internal/errcode", "internal/meta", "internal/oci", "internal/registry",
		"github.com/notaryproject/notation-go", "github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec/specs-go/v1",
		"github.com/sigstore/sigstore-go/pkg", "github.com/sigstore/sigstore/pkg", "github.com/prometheus/client_golang/prometheus"},
	"internal/limits": {"internal/errcode", "internal/meta", "internal/oci", "github.com/prometheus/client_golang/prometheus"},
	"internal/distribution": {"internal/auth", "internal/blobstore", "internal/errcode", "internal/limits", "internal/meta", "internal/oci", "internal/proxy", "internal/registry",
		"github.com/prometheus/client_golang/prometheus"},
	"internal/proxy": {"internal/blobstore", "internal/config", "internal/errcode", "internal/meta", "internal/oci", "internal/registry", "internal/spool",
		"github.com/google/go-containerregistry/pkg/authn", "github.com/google/go-containerregistry/pkg/name",
		"github.com/google/go-containerregistry/pkg/v1/remote/transport", "github.com/prometheus/client_golang/prometheus", "github.com/prometheus/client_model/go",
		"golang.org/x/sync/singleflight"},
	"internal/inventory": {"internal/meta", "internal/oci"},
	"internal/spool":     {},
	"internal/hf": {"internal/blobstore", "internal/config", "internal/errcode", "internal/meta", "internal/oci", "internal/proxy", "internal/registry", "internal/spool",
		"github.com/prometheus/client_golang/prometheus", "golang.org/x/sync/singleflight"},
	"internal/adminapi": {"internal/auth", "internal/config", "internal/errcode", "internal/events", "internal/replication", "internal/inventory", "internal/meta", "internal/oci", "internal/quota", "internal/registry", "internal/scan", "internal/tagrules", "internal/trust", "golang.org/x/crypto/bcrypt"},
	// The web UI is a front end over the admin API (in process) and reads manifests,
	// referrers and signature verdicts itself.
	"internal/ui": {"internal/auth", "internal/errcode", "internal/meta", "internal/oci", "internal/proxy", "internal/registry", "internal/scan", "internal/session", "internal/trust"},
	"internal/server": {"internal/session", "internal/ui", "internal/oidc", "internal/adminapi", "internal/auth", "internal/blobstore", "internal/certs", "internal/events", "internal/replication", "internal/errcode", "internal/ldapauth", "internal/config", "internal/distribution", "internal/gc", "internal/hf", "internal/inventory", "internal/jobs", "internal/limits", "internal/meta", "internal/oci", "internal/proxy", "internal/quota", "internal/registry", "internal/scan", "internal/tagrules",
		"internal/storagepressure", "internal/trust", "github.com/prometheus/client_golang/prometheus"},
	"internal/certs":     {"internal/config", "internal/meta", "golang.org/x/crypto/acme"},
	"internal/buildinfo": {"github.com/spf13/cobra"},
	// dist builds release archives and Berth's image (cmd/berth-dist) with ggcr, as ko does.
	"internal/dist":  {"github.com/google/go-containerregistry/pkg"},
	"cmd/berth-dist": {"internal/dist"},
	"internal/cric": {"internal/buildinfo", "github.com/docker/cli/cli/config", "github.com/google/go-containerregistry/pkg",
		"github.com/vbauerster/mpb/v8", "golang.org/x/sync/errgroup", "golang.org/x/term"},
	"cmd/cric":  {"internal/buildinfo", "internal/cric", "github.com/spf13/cobra"},
	"cmd/berth": {"internal/buildinfo", "internal/certs", "internal/config", "internal/gc", "internal/hf", "internal/jobs", "internal/meta", "internal/oci", "internal/proxy", "internal/registry", "internal/scan", "internal/server", "internal/tagrules", "internal/trust", "github.com/spf13/cobra", "go.yaml.in/yaml/v3"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

// ownPackages lists the module's packages under the rules, by path relative to the
// module: not the e2e and bench suites, this package, or test helpers (…test).
func ownPackages(t *testing.T) map[string]pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	pkgs := map[string]pkg{}
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if strings.HasPrefix(rel, "e2e") || strings.HasPrefix(rel, "bench") || strings.HasPrefix(rel, "internal/archtest") ||
			strings.HasSuffix(rel, "test") {
			continue
		}
		pkgs[rel] = p
	}
	return pkgs
}

func TestDependencies(t *testing.T) {
	std := map[string]bool{}
	stdOut, err := exec.Command("go", "list", "std").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(stdOut)) {
		std[p] = true
	}
	for rel, p := range ownPackages(t) {
		allow, ok := allowed[rel]
		if !ok {
			t.Errorf("package %s has no entry in the dependency allow-list", rel)
			continue
		}
		for _, imp := range p.Imports {
			if std[imp] {
				continue
			}
			dep := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
			if !slices.ContainsFunc(allow, func(a string) bool { return dep == a || strings.HasPrefix(dep, a+"/") }) {
				t.Errorf("%s imports %s, which its allow-list does not permit", rel, dep)
			}
		}
	}
}

// weakHashes may be imported only where the README's FIPS section says so: they are not
// approved for a security use in FIPS 140-3 mode (and GODEBUG=fips140=only panics on
// them), so a new import is a decision to make here, with its reason.
var weakHashes = map[string][]string{
	"crypto/md5": {},
	// git blob ids, a protocol identifier the Hugging Face mirror verifies; the mirror is
	// refused under fips140=only (config.validateFIPS).
	"crypto/sha1": {"internal/hf"},
}

// TestNoWeakHashes: Berth's own packages use no MD5 or SHA-1 outside weakHashes.
func TestNoWeakHashes(t *testing.T) {
	seen := 0
	for rel, p := range ownPackages(t) {
		for _, imp := range p.Imports {
			if allow, weak := weakHashes[imp]; weak {
				seen++
				if !slices.Contains(allow, rel) {
					t.Errorf("%s imports %s, which FIPS 140-3 mode does not approve; see weakHashes", rel, imp)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no package imports crypto/sha1, not even internal/hf: is go list's output read right?")
	}
}
