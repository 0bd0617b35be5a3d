package hf

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/oci"
	"github.com/berth-registry/berth/internal/registry"
)

// RepoType is the kind of Hub repository the mirror serves.
type RepoType string

const (
	Model   RepoType = "model"
	Dataset RepoType = "dataset"
)

// Repo names one Hub repository.
type Repo struct {
	Type RepoType
	ID   string // org/name, or a legacy name without an organisation (gpt2)
}

func (r Repo) String() string {
	if r.Type == Dataset {
		return "datasets/" + r.ID
	}
	return r.ID
}

// apiPath is the repository's path in the Hub's API: models/org/name.
func (r Repo) apiPath() string { return string(r.Type) + "s/" + r.ID }

// BadRequest is input the mirror refuses (400) with a message saying why.
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

func bad(f string, a ...any) error { return &BadRequest{Msg: fmt.Sprintf(f, a...)} }

// repoPart is huggingface_hub's REPO_ID_REGEX for one side of org/name, ASCII only.
var repoPart = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)

// ValidateRepoID applies the Hub's rules for repository ids (huggingface_hub's
// validate_repo_id): one or two parts of word characters, '-' and '.', neither starting
// nor ending with '-' or '.', no "--" or "..", at most 96 characters.
func ValidateRepoID(id string) error {
	if id == "" || len(id) > 96 {
		return bad("repository id %q: want org/name of at most 96 characters", id)
	}
	if strings.Contains(id, "--") || strings.Contains(id, "..") {
		return bad("repository id %q: '--' and '..' are not allowed", id)
	}
	parts := strings.Split(id, "/")
	if len(parts) > 2 {
		return bad("repository id %q: want org/name", id)
	}
	for _, p := range parts {
		if !repoPart.MatchString(p) {
			return bad("repository id %q: each part is letters, digits, '-', '_' and '.', starting and ending with a letter or digit", id)
		}
	}
	return nil
}

// ValidateRevision accepts branch, tag and commit names as the Hub spells them
// (refs/pr/1 included) and refuses anything that could leave the revision: "..",
// empty segments, control characters, and Git's forbidden characters.
func ValidateRevision(rev string) error {
	if rev == "" || len(rev) > 255 {
		return bad("revision %q: want a branch, tag or commit of at most 255 characters", rev)
	}
	if strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") || strings.Contains(rev, "//") || strings.Contains(rev, "..") ||
		strings.HasPrefix(rev, "-") || strings.HasPrefix(rev, ".") {
		return bad("revision %q: not a valid branch, tag or commit name", rev)
	}
	for _, c := range rev {
		if c <= ' ' || c == 0x7f || strings.ContainsRune(`~^:?*[\`, c) {
			return bad("revision %q: character %q is not allowed", rev, c)
		}
	}
	return nil
}

// ValidatePath accepts a file path inside a repository: relative, no "." or ".."
// segments, no empty segments, no backslashes or control characters.
func ValidatePath(p string) error {
	if p == "" || len(p) > 1024 {
		return bad("file path %q: want a path inside the repository of at most 1024 characters", p)
	}
	if strings.HasPrefix(p, "/") {
		return bad("file path %q: must be relative to the repository", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("file path %q: leaves the repository or has an empty segment", p)
		}
	}
	for _, c := range p {
		if c < ' ' || c == 0x7f || c == '\\' {
			return bad("file path %q: character %q is not allowed", p, c)
		}
	}
	return nil
}

// isCommit reports a full commit id, which never moves.
func isCommit(rev string) bool {
	if len(rev) != 40 {
		return false
	}
	for _, c := range rev {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// LocalRepo is the OCI repository under project that holds the repository's files and
// its ModelPack artifacts: hf/org/name for models, hf/datasets/org/name for datasets.
// OCI names are lowercase; the Hub treats repository ids case-insensitively.
func LocalRepo(project string, r Repo) (string, error) {
	name := project + "/" + strings.ToLower(r.String())
	if err := registry.ValidateName(name); err != nil {
		return "", bad("repository id %q cannot be stored as OCI repository %s: %v", r.ID, name, err)
	}
	return name, nil
}

// route is a parsed request under the mirror's prefix.
type route struct {
	kind     routeKind
	repo     Repo
	revision string // "" for the repository's default branch (info without /revision)
	path     string // file or tree path
}

type routeKind int

const (
	routeInfo routeKind = iota + 1
	routeTree
	routeResolve
	routePathsInfo // POST /api/models/{repo}/paths-info/{rev}
)

func apiKeyword(s string) bool { return s == "revision" || s == "tree" || s == "paths-info" }

// parseRoute parses the escaped path below the prefix:
//
//	/api/models/{repo}                         repository info (default branch)
//	/api/models/{repo}/revision/{rev}          repository info at a revision
//	/api/models/{repo}/tree/{rev}[/{path}]     tree listing
//	/api/models/{repo}/paths-info/{rev}        POST: the listing's entries for given paths
//	/{repo}/resolve/{rev}/{path}               a file (models)
//	/datasets/{repo}/resolve/{rev}/{path}      a file (datasets); likewise /api/datasets/...
//
// {repo} is org/name or a legacy single name; a revision may be %-encoded (refs%2Fpr%2F1).
func parseRoute(escaped string) (route, error) {
	raw := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return route{}, bad("path segment %q: %v", s, err)
		}
		segs[i] = u
	}
	if len(segs) >= 3 && segs[0] == "api" {
		var rt route
		switch segs[1] {
		case "models":
			rt.repo.Type = Model
		case "datasets":
			rt.repo.Type = Dataset
		default:
			return route{}, errNoRoute
		}
		rest := segs[2:]
		// org/name/keyword/..., or a legacy name/keyword/...
		n := 2
		if len(rest) >= 2 && apiKeyword(rest[1]) && (len(rest) < 3 || !apiKeyword(rest[2])) {
			n = 1
		}
		if len(rest) < n {
			n = len(rest)
		}
		rt.repo.ID = strings.Join(rest[:n], "/")
		rest = rest[n:]
		switch {
		case len(rest) == 0:
			rt.kind = routeInfo
		case rest[0] == "revision" && len(rest) >= 2:
			rt.kind, rt.revision = routeInfo, strings.Join(rest[1:], "/")
		case rest[0] == "tree" && len(rest) >= 2:
			rt.kind, rt.revision = routeTree, rest[1]
			rt.path = strings.Join(rest[2:], "/")
		case rest[0] == "paths-info" && len(rest) == 2:
			rt.kind, rt.revision = routePathsInfo, rest[1]
		default:
			return route{}, errNoRoute
		}
		return rt, rt.validate()
	}
	rt := route{kind: routeResolve, repo: Repo{Type: Model}}
	if len(segs) > 0 && segs[0] == "datasets" {
		rt.repo.Type, segs = Dataset, segs[1:]
	}
	i := -1
	switch {
	case len(segs) >= 4 && segs[1] == "resolve":
		i = 1
	case len(segs) >= 5 && segs[2] == "resolve":
		i = 2
	default:
		return route{}, errNoRoute
	}
	rt.repo.ID = strings.Join(segs[:i], "/")
	rt.revision = segs[i+1]
	rt.path = strings.Join(segs[i+2:], "/")
	return rt, rt.validate()
}

var errNoRoute = &BadRequest{Msg: "not a Hugging Face Hub read API path (want /api/models/{repo}[/revision/{rev}|/tree/{rev}/{path}] or /{repo}/resolve/{rev}/{path})"}

func (rt route) validate() error {
	if err := ValidateRepoID(rt.repo.ID); err != nil {
		return err
	}
	if rt.revision != "" {
		if err := ValidateRevision(rt.revision); err != nil {
			return err
		}
	}
	if rt.kind == routeResolve || rt.path != "" {
		return ValidatePath(rt.path)
	}
	return nil
}

// ReadOnly refuses /v2/ writes into the mirror's project: its files and ModelPack
// artifacts come from the Hub only (cric model push goes to another project).
func ReadOnly(cfg config.HF) func(repo string) error {
	return func(repo string) error {
		if oci.Project(repo) != cfg.Project {
			return nil
		}
		return errcode.Denied.New("repository " + repo + " is a read-only mirror of " + cfg.Upstream + " (project " + cfg.Project + " is the Hugging Face mirror's)")
	}
}

// RefScheme marks a Hugging Face repository among warm-up references.
const RefScheme = "hf://"

// ParseRef reads hf://org/name[@rev] or hf://datasets/org/name[@rev] (rev: main).
func ParseRef(ref string) (Repo, string, error) {
	s, ok := strings.CutPrefix(ref, RefScheme)
	if !ok {
		return Repo{}, "", bad("%q is not an hf:// reference", ref)
	}
	repo := Repo{Type: Model}
	if rest, ok := strings.CutPrefix(s, "datasets/"); ok {
		repo.Type, s = Dataset, rest
	}
	id, rev, ok := strings.Cut(s, "@")
	if !ok {
		rev = "main"
	}
	repo.ID = id
	if err := ValidateRepoID(id); err != nil {
		return Repo{}, "", fmt.Errorf("%s: %w", ref, err)
	}
	if err := ValidateRevision(rev); err != nil {
		return Repo{}, "", fmt.Errorf("%s: %w", ref, err)
	}
	return repo, rev, nil
}
