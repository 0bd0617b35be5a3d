package adminapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/scan"
)

// Scanner is what the API needs of vulnerability scanning (package scan).
type Scanner interface {
	Policy(ctx context.Context, project string) (scan.Policy, error)
	PutPolicy(ctx context.Context, project string, p scan.Policy) error
	DeletePolicy(ctx context.Context, project string) error
	Request(ctx context.Context, repo, digest string) error
	Report(ctx context.Context, digest string) (scan.Report, error)
	Affected(ctx context.Context, id string, limit int) ([]scan.Affected, error)
	ProjectReports(ctx context.Context, project string, limit int) ([]scan.ArtifactReport, error)
	DB() scan.DBInfo
	// IsUpstream tells a mirror upstream's name, whose scan policy covers what is
	// mirrored from it.
	IsUpstream(name string) bool
	// SBOMPublicKey is the key Berth signs its SBOM referrers with (PEM).
	SBOMPublicKey(ctx context.Context) (string, error)
}

// sbomKey serves the public key of Berth's SBOM signatures, for cosign verify --key
// and trust policies: anyone authenticated may read it.
func (a *API) sbomKey(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.scanEnabled(); err != nil {
		return err
	}
	if err := onlyParams(r); err != nil {
		return err
	}
	pem, err := a.scanner.SBOMPublicKey(r.Context())
	if err != nil {
		return storeErr(err, "")
	}
	return writeJSON(w, http.StatusOK, map[string]string{"publicKey": pem})
}

// scanScope is the project or mirror upstream of a scan-policy route. Upstream policies
// are the system administrators'.
func (a *API) scanScope(r *http.Request, c *caller, change bool) (string, error) {
	up := r.PathValue("upstream")
	if up == "" {
		return a.projectRoute(r, c, change)
	}
	if err := onlyParams(r); err != nil {
		return "", err
	}
	if err := requireAdmin(c); err != nil {
		return "", err
	}
	if !a.scanner.IsUpstream(up) {
		return "", errcode.NotFound.New("mirror upstream " + up + " is not configured (mirror.upstreams)")
	}
	return up, nil
}

// WithScanner serves scan policies and reports from s.
func (a *API) WithScanner(s Scanner) *API {
	a.scanner = s
	return a
}

func (a *API) scanEnabled() error {
	if a.scanner == nil {
		return errcode.Unsupported.New("vulnerability scanning is not enabled on this server (scan.enabled)")
	}
	return nil
}

func scanErr(err error, what string) error {
	var inv *scan.InvalidError
	switch {
	case errors.As(err, &inv):
		return invalid("%s", inv.Error())
	case errors.Is(err, scan.ErrNotFound):
		return errcode.NotFound.New(what + " not found")
	}
	return storeErr(err, what)
}

func (a *API) getScanPolicy(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.scanEnabled(); err != nil {
		return err
	}
	name, err := a.scanScope(r, c, false)
	if err != nil {
		return err
	}
	p, err := a.scanner.Policy(r.Context(), name)
	if err != nil {
		return scanErr(err, "scan policy of "+name)
	}
	return writeJSON(w, http.StatusOK, p)
}

func (a *API) putScanPolicy(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.scanEnabled(); err != nil {
		return err
	}
	name, err := a.scanScope(r, c, true)
	if err != nil {
		return err
	}
	var p scan.Policy
	if err := decode(w, r, &p); err != nil {
		return err
	}
	if err := a.scanner.PutPolicy(r.Context(), name, p); err != nil {
		return scanErr(err, "")
	}
	a.record(c, "scan.policy", name, "mode "+p.Mode+", severity "+p.Severity+", scanOnPush "+strconv.FormatBool(p.ScanOnPush)+
		", blockUnscanned "+strconv.FormatBool(p.BlockUnscanned)+", "+strconv.Itoa(len(p.Allow))+" allowed")
	return writeJSON(w, http.StatusOK, p)
}

func (a *API) deleteScanPolicy(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.scanEnabled(); err != nil {
		return err
	}
	name, err := a.scanScope(r, c, true)
	if err != nil {
		return err
	}
	if err := a.scanner.DeletePolicy(r.Context(), name); err != nil {
		return scanErr(err, "scan policy of "+name)
	}
	a.record(c, "scan.policy.delete", name, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// scanTarget parses and authorizes a manifest's scan route.
func (a *API) scanTarget(r *http.Request, c *caller, act auth.Action, params ...string) (string, oci.Digest, error) {
	if err := a.scanEnabled(); err != nil {
		return "", "", err
	}
	repo, err := a.repoRoute(r, c, act, params...)
	if err != nil {
		return "", "", err
	}
	d, err := registry.ParseDigest(r.PathValue("digest"))
	if err != nil {
		return "", "", invalid("digest: %v", err)
	}
	if _, err := a.reg.GetManifest(r.Context(), repo, registry.Reference{Digest: d}, false); err != nil {
		if errcode.From(err) != nil {
			return "", "", errcode.NotFound.New("manifest " + repo + "@" + string(d) + " not found")
		}
		return "", "", err
	}
	return repo, d, nil
}

// requestScan queues a scan: for whoever may push to the repository.
func (a *API) requestScan(w http.ResponseWriter, r *http.Request, c *caller) error {
	repo, d, err := a.scanTarget(r, c, auth.Push)
	if err != nil {
		return err
	}
	if err := a.scanner.Request(r.Context(), repo, string(d)); err != nil {
		return storeErr(err, "")
	}
	a.record(c, "scan.request", repo+"@"+string(d), "")
	return writeJSON(w, http.StatusAccepted, map[string]string{"repository": repo, "digest": string(d), "status": "queued"})
}

func (a *API) getScanReport(w http.ResponseWriter, r *http.Request, c *caller) error {
	repo, d, err := a.scanTarget(r, c, auth.Pull, "format")
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "sarif" {
		return invalid("format %q: want json or sarif", format)
	}
	rep, err := a.scanner.Report(r.Context(), string(d))
	if err != nil {
		return scanErr(err, "scan report of "+repo+"@"+string(d))
	}
	rep.Repository = repo
	if format == "sarif" {
		out, err := scan.SARIF(rep, repo+"@"+string(d))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/sarif+json")
		_, err = w.Write(out)
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// projectReports lists the scanned images of a project, worst first: for callers who
// can see the project.
func (a *API) projectReports(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.scanEnabled(); err != nil {
		return err
	}
	name, err := a.projectRoute(r, c, false, "n")
	if err != nil {
		return err
	}
	n := 100
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 10000 {
			return invalid("n must be an integer from 1 to 10000")
		}
	}
	reports, err := a.scanner.ProjectReports(r.Context(), name, n)
	if err != nil {
		return storeErr(err, "")
	}
	return writeJSON(w, http.StatusOK, map[string]any{"project": name, "artifacts": reports})
}

// affected lists the images holding a vulnerability, in the repositories the caller
// may read.
func (a *API) affected(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.scanEnabled(); err != nil {
		return err
	}
	if err := onlyParams(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if id == "" || len(id) > 200 {
		return invalid("a vulnerability id such as CVE-2024-1234")
	}
	all, err := a.scanner.Affected(r.Context(), id, 10000)
	if err != nil {
		return storeErr(err, "")
	}
	out := []scan.Affected{}
	readable := map[string]bool{}
	for _, x := range all {
		ok, seen := readable[x.Repository]
		if !seen {
			got, err := a.svc.Allowed(r.Context(), c.p, x.Repository, []auth.Action{auth.Pull})
			if err != nil {
				return storeErr(err, "")
			}
			ok = len(got) == 1
			readable[x.Repository] = ok
		}
		if ok {
			out = append(out, x)
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"id": id, "artifacts": out})
}

func (a *API) scanDB(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := a.scanEnabled(); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.scanner.DB())
}
