package adminapi

import (
	"bufio"
	"bytes"
	"crypto/fips140"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/berth-registry/berth/internal/errcode"
	"github.com/berth-registry/berth/internal/meta"
)

// htpasswdProblem is one rejected line of an htpasswd file.
type htpasswdProblem struct {
	Line  int    `json:"line"`
	User  string `json:"user,omitempty"`
	Error string `json:"error"`
}

type htpasswdEntry struct {
	line       int
	name, hash string
}

// parseHtpasswd reads name:hash lines (blank lines and # comments skipped), accepting
// bcrypt hashes only: the others (MD5 apr1, SHA-1, crypt, plain) are too weak to keep.
func parseHtpasswd(data []byte) ([]htpasswdEntry, []htpasswdProblem) {
	var entries []htpasswdEntry
	var problems []htpasswdProblem
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), maxBody)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		bad := func(msg string) { problems = append(problems, htpasswdProblem{Line: n, User: name, Error: msg}) }
		switch {
		case !ok:
			bad("not a name:hash line")
		case validNewUserName(name) != nil:
			bad("user name must match [a-z0-9][a-z0-9._-]{0,63} (and not be me or import)")
		case seen[name]:
			bad("user listed twice")
		case strings.HasPrefix(hash, "$apr1$"), strings.HasPrefix(hash, "$1$"):
			bad("MD5 hashes are not accepted: re-create the entry with htpasswd -B (bcrypt)")
		case strings.HasPrefix(hash, "{SHA}"):
			bad("SHA-1 hashes are not accepted: re-create the entry with htpasswd -B (bcrypt)")
		case !isBcrypt(hash):
			bad("not a bcrypt hash ($2y$, $2a$ or $2b$): only bcrypt entries (htpasswd -B) are accepted")
		default:
			seen[name] = true
			entries = append(entries, htpasswdEntry{line: n, name: name, hash: hash})
		}
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, htpasswdProblem{Error: err.Error()})
	}
	return entries, problems
}

func isBcrypt(hash string) bool {
	if len(hash) != 60 || !(strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")) {
		return false
	}
	_, err := bcrypt.Cost([]byte(hash))
	return err == nil
}

type importResult struct {
	Created []string        `json:"created"`
	Skipped []importSkipped `json:"skipped"`
}

type importSkipped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// importHtpasswd creates local users from an htpasswd file (text/plain). The whole file
// is checked first: one bad line rejects it and nothing is created. Existing users are
// skipped, not changed.
func (a *API) importHtpasswd(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	if fips140.Enabled() {
		// Every hash htpasswd writes is bcrypt or weaker; none would ever log in.
		return invalid("htpasswd import is refused in FIPS 140-3 mode: htpasswd files hold bcrypt (or weaker) hashes, " +
			"which FIPS mode does not allow; create the users with `berth admin user add NAME` instead")
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "text/plain" {
		return invalid("Content-Type must be text/plain (an htpasswd file)")
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errcode.RequestTooLarge.New("request body exceeds 1 MiB")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		return errcode.RequestTimeout.New("request body not received in time")
	} else if err != nil {
		return invalid("reading the body: %v", err)
	}
	entries, problems := parseHtpasswd(data)
	if len(problems) > 0 {
		return &errcode.Error{Desc: errcode.InvalidRequest, Detail: problems,
			Message: fmt.Sprintf("htpasswd rejected, nothing imported: line %d: %s (%d problem(s) in detail)", problems[0].Line, problems[0].Error, len(problems))}
	}
	if len(entries) == 0 {
		return invalid("the htpasswd file has no entries")
	}
	res := importResult{Created: []string{}, Skipped: []importSkipped{}}
	for _, e := range entries {
		_, err := a.meta.CreateUser(r.Context(), meta.User{Name: e.name, PasswordHash: e.hash})
		if errors.Is(err, meta.ErrExists) {
			res.Skipped = append(res.Skipped, importSkipped{Name: e.name, Reason: "exists"})
			continue
		}
		if err != nil {
			return storeErr(err, "user "+e.name)
		}
		a.record(c, "user.import", userResource(e.name), "htpasswd")
		res.Created = append(res.Created, e.name)
	}
	return writeJSON(w, http.StatusOK, res)
}
