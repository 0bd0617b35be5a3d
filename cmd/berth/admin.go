package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// The admin commands are a client of the admin REST API (/api/v1) of a running Berth;
// they never open the database themselves.

const adminAPIPrefix = "/api/v1"

// adminClient holds the connection settings shared by every admin command.
type adminClient struct {
	url           string
	username      string
	passwordStdin bool
	password      string
	json          bool
	stdin         *bufio.Reader // the admin password (first line) and a new password both come from it
	httpc         *http.Client
	out, errOut   io.Writer
}

func adminCmd() *cobra.Command {
	c := &adminClient{httpc: &http.Client{Timeout: 60 * time.Second}}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administer users, projects, members, robot accounts and read the audit trail (through the admin API)",
		Long: `The admin commands talk to the admin REST API (/api/v1) of a running Berth with auth enabled.

Connection: --url (default $BERTH_URL, else http://127.0.0.1:5000); credentials: --username
(default $BERTH_ADMIN_USERNAME) and the password from the first line of stdin with
--password-stdin, else from $BERTH_ADMIN_PASSWORD. Output is a table; --json prints the
API's JSON.`,
		Example: `  export BERTH_URL=https://registry.example.com BERTH_ADMIN_USERNAME=admin
  berth admin project create team
  berth admin user add alice --email alice@example.com --new-password-stdin < alice.pw
  berth admin member add team user:alice developer
  berth admin robot create ci --project team --actions pull,push --expires-in 90d
  berth admin audit --action push --since 24h`,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return c.setup(cmd) },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.url, "url", "", "Berth's URL (default $BERTH_URL, else http://127.0.0.1:5000)")
	pf.StringVar(&c.username, "username", "", "administrator (or project administrator) name (default $BERTH_ADMIN_USERNAME)")
	pf.BoolVar(&c.passwordStdin, "password-stdin", false, "read the password from the first line of stdin (default $BERTH_ADMIN_PASSWORD)")
	pf.BoolVar(&c.json, "json", false, "print JSON instead of a table")
	cmd.AddCommand(c.userCmd(), c.projectCmd(), c.memberCmd(), c.robotCmd(), c.auditCmd())
	cmd.AddCommand(c.policyCmd(), c.verifyCmd())       // policy.go
	cmd.AddCommand(c.repoCmd(), c.tagCmd())            // admin_repo.go
	cmd.AddCommand(c.retentionCmd(), c.immutableCmd()) // retention.go
	cmd.AddCommand(c.scanCmd())                        // scan.go
	cmd.AddCommand(c.webhookCmd())                     // webhook.go
	cmd.AddCommand(c.replicationCmd())                 // replication.go
	return cmd
}

// setup resolves the URL and the credentials from flags and the environment.
func (c *adminClient) setup(cmd *cobra.Command) error {
	c.out, c.errOut = cmd.OutOrStdout(), cmd.ErrOrStderr()
	c.stdin = bufio.NewReader(cmd.InOrStdin())
	if c.url == "" {
		c.url = os.Getenv("BERTH_URL")
	}
	if c.url == "" {
		c.url = "http://127.0.0.1:5000"
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want http(s)://host[:port]", c.url)
	}
	c.url = strings.TrimRight(c.url, "/")
	if c.username == "" {
		c.username = os.Getenv("BERTH_ADMIN_USERNAME")
	}
	if c.username == "" {
		return errors.New("no username: set --username or BERTH_ADMIN_USERNAME")
	}
	if c.passwordStdin {
		if c.password, err = c.readLine("the password"); err != nil {
			return err
		}
	} else {
		c.password = os.Getenv("BERTH_ADMIN_PASSWORD")
	}
	if c.password == "" {
		return errors.New("no password: use --password-stdin or set BERTH_ADMIN_PASSWORD")
	}
	return nil
}

// readLine reads one line of stdin (without its line ending).
func (c *adminClient) readLine(what string) (string, error) {
	line, err := c.stdin.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("reading %s from stdin: %w", what, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// apiError is the API's error body.
type apiError struct {
	Errors []struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	} `json:"errors"`
}

// call sends a request to the admin API. body is JSON-encoded unless it is a []byte
// (sent as text/plain). It returns the response body and headers; an error answer
// becomes an error quoting the API's code and message.
func (c *adminClient) call(ctx context.Context, method, path string, query url.Values, body any) ([]byte, http.Header, error) {
	target := c.url + adminAPIPrefix + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ct = bytes.NewReader(b), "text/plain; charset=utf-8"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, nil, err
		}
		rd, ct = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.username, c.password)
	res, err := c.httpc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	if res.StatusCode >= 300 {
		var e apiError
		if json.Unmarshal(data, &e) == nil && len(e.Errors) > 0 {
			msg := fmt.Sprintf("%s (HTTP %d): %s", e.Errors[0].Code, res.StatusCode, e.Errors[0].Message)
			if d := e.Errors[0].Detail; len(d) > 0 && string(d) != "null" {
				var lines []struct {
					Line  int    `json:"line"`
					User  string `json:"user"`
					Error string `json:"error"`
				}
				if json.Unmarshal(d, &lines) == nil {
					for _, l := range lines {
						msg += fmt.Sprintf("\n  line %d %s: %s", l.Line, l.User, l.Error)
					}
				} else {
					msg += "\n  " + string(d)
				}
			}
			return nil, nil, errors.New(msg)
		}
		if res.StatusCode == http.StatusNotFound && !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
			return nil, nil, fmt.Errorf("%s: 404: no admin API here (is auth.enabled true on this Berth?)", c.url)
		}
		return nil, nil, fmt.Errorf("%s %s: %s", method, path, res.Status)
	}
	return data, res.Header, nil
}

// send calls the API, decodes a JSON answer into out (when not nil) and, with --json,
// prints the answer as is.
func (c *adminClient) send(cmd *cobra.Command, method, path string, query url.Values, body, out any) error {
	data, _, err := c.call(cmd.Context(), method, path, query, body)
	if err != nil || len(data) == 0 {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	if c.json {
		_, err = c.out.Write(data)
	}
	return err
}

var nextLink = regexp.MustCompile(`<([^>]*)>;\s*rel="next"`)

// listAll follows the Link header through every page of a name-ordered listing and
// returns the items under key.
func (c *adminClient) listAll(ctx context.Context, path, key string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	query := url.Values{"n": {"1000"}}
	for pages := 0; pages < 10000; pages++ {
		data, hdr, err := c.call(ctx, http.MethodGet, path, query, nil)
		if err != nil {
			return nil, err
		}
		var page map[string][]json.RawMessage
		if err := json.Unmarshal(data, &page); err != nil {
			return nil, err
		}
		all = append(all, page[key]...)
		m := nextLink.FindStringSubmatch(hdr.Get("Link"))
		if m == nil || len(page[key]) == 0 {
			break
		}
		u, err := url.Parse(m[1])
		if err != nil {
			return nil, err
		}
		query = u.Query()
	}
	return all, nil
}

// printList prints items as JSON ({key: items}) or as a table.
func (c *adminClient) printList(key string, items []json.RawMessage, header string, row func(json.RawMessage) (string, error)) error {
	if c.json {
		if items == nil {
			items = []json.RawMessage{}
		}
		b, err := json.MarshalIndent(map[string]any{key: items}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.out, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		line, err := row(it)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func (c *adminClient) done(format string, args ...any) error {
	if c.json {
		return nil
	}
	_, err := fmt.Fprintf(c.out, format+"\n", args...)
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ---------------------------------------------------------------- users

type cliUser struct {
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Admin     bool      `json:"admin"`
	Source    string    `json:"source"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"createdAt"`
}

// newPassword reads a new account password from a file or stdin.
func (c *adminClient) newPassword(fromStdin bool, file string) (string, error) {
	switch {
	case fromStdin && file != "":
		return "", errors.New("use --new-password-stdin or --new-password-file, not both")
	case fromStdin:
		return c.readLine("the new password")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", errors.New("give the new password with --new-password-stdin or --new-password-file (never on the command line)")
}

func (c *adminClient) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (system administrators)"}

	var email string
	var admin, pwStdin bool
	var pwFile string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a local user",
		Long: `Create a local user. The password comes from --new-password-file or from stdin with
--new-password-stdin (after the administrator's own password when --password-stdin is
used too: one per line).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := c.newPassword(pwStdin, pwFile)
			if err != nil {
				return err
			}
			body := map[string]any{"name": args[0], "password": pw, "email": email, "admin": admin}
			if err := c.send(cmd, http.MethodPost, "/users", nil, body, nil); err != nil {
				return err
			}
			return c.done("created user %s", args[0])
		},
	}
	add.Flags().StringVar(&email, "email", "", "email address")
	add.Flags().BoolVar(&admin, "admin", false, "make the user a system administrator")
	add.Flags().BoolVar(&pwStdin, "new-password-stdin", false, "read the new user's password from stdin")
	add.Flags().StringVar(&pwFile, "new-password-file", "", "read the new user's password from a file")

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			items, err := c.listAll(cmd.Context(), "/users", "users")
			if err != nil {
				return err
			}
			return c.printList("users", items, "NAME\tEMAIL\tADMIN\tSOURCE\tDISABLED\tCREATED", func(raw json.RawMessage) (string, error) {
				var u cliUser
				err := json.Unmarshal(raw, &u)
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", u.Name, orDash(u.Email), yesNo(u.Admin), u.Source, yesNo(u.Disabled), stamp(u.CreatedAt)), err
			})
		},
	}

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user and their memberships",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.send(cmd, http.MethodDelete, "/users/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			return c.done("deleted user %s", args[0])
		},
	}

	var pwStdin2 bool
	var pwFile2 string
	passwd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a local user's password",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := c.newPassword(pwStdin2, pwFile2)
			if err != nil {
				return err
			}
			if err := c.send(cmd, http.MethodPatch, "/users/"+url.PathEscape(args[0]), nil, map[string]any{"password": pw}, nil); err != nil {
				return err
			}
			return c.done("changed the password of %s", args[0])
		},
	}
	passwd.Flags().BoolVar(&pwStdin2, "new-password-stdin", false, "read the new password from stdin")
	passwd.Flags().StringVar(&pwFile2, "new-password-file", "", "read the new password from a file")

	imp := &cobra.Command{
		Use:   "import-htpasswd FILE",
		Short: "Create users from an htpasswd file (bcrypt entries only; - reads stdin)",
		Long: `Create local users from an htpasswd file. Only bcrypt entries (htpasswd -B) are accepted:
any other line rejects the whole file and nothing is created. Existing users are skipped.
The imported bcrypt hashes are replaced by PBKDF2 ones at each user's first login. A Berth
in FIPS 140-3 mode refuses the import (bcrypt is not an approved algorithm).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(c.stdin)
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return err
			}
			var res struct {
				Created []string `json:"created"`
				Skipped []struct {
					Name   string `json:"name"`
					Reason string `json:"reason"`
				} `json:"skipped"`
			}
			if err := c.send(cmd, http.MethodPost, "/users/import", nil, data, &res); err != nil {
				return err
			}
			if c.json {
				return nil
			}
			for _, n := range res.Created {
				fmt.Fprintf(c.out, "created %s\n", n)
			}
			for _, s := range res.Skipped {
				fmt.Fprintf(c.out, "skipped %s (%s)\n", s.Name, s.Reason)
			}
			return c.done("imported %d users, skipped %d", len(res.Created), len(res.Skipped))
		},
	}
	cmd.AddCommand(add, list, del, passwd, imp, c.cliSecretCmd())
	return cmd
}

// ---------------------------------------------------------------- projects

type cliProject struct {
	Name       string    `json:"name"`
	Public     bool      `json:"public"`
	CreatedAt  time.Time `json:"createdAt"`
	QuotaBytes *int64    `json:"quotaBytes"` // quota.go
	UsageBytes int64     `json:"usageBytes"`
}

func (c *adminClient) projectCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Manage projects (the first path component of repository names)"}

	var public bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project (system administrators)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.send(cmd, http.MethodPost, "/projects", nil, map[string]any{"name": args[0], "public": public}, nil); err != nil {
				return err
			}
			return c.done("created project %s (public: %s)", args[0], yesNo(public))
		},
	}
	create.Flags().BoolVar(&public, "public", false, "anonymous callers may pull")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the projects you can see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			items, err := c.listAll(cmd.Context(), "/projects", "projects")
			if err != nil {
				return err
			}
			return c.printList("projects", items, "NAME\tPUBLIC\tCREATED\tUSAGE\tQUOTA", func(raw json.RawMessage) (string, error) {
				var p cliProject
				err := json.Unmarshal(raw, &p)
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", p.Name, yesNo(p.Public), stamp(p.CreatedAt), humanBytes(p.UsageBytes), quotaText(p.QuotaBytes)), err
			})
		},
	}

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a project with its members and robots (refused while it has repositories)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.send(cmd, http.MethodDelete, "/projects/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
				return err
			}
			return c.done("deleted project %s", args[0])
		},
	}

	setPublic := &cobra.Command{
		Use:   "set-public NAME true|false",
		Short: "Make a project public (anonymous pulls) or private",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.ParseBool(args[1])
			if err != nil {
				return fmt.Errorf("%q: want true or false", args[1])
			}
			if err := c.send(cmd, http.MethodPatch, "/projects/"+url.PathEscape(args[0]), nil, map[string]any{"public": v}, nil); err != nil {
				return err
			}
			return c.done("project %s is now %s", args[0], map[bool]string{true: "public", false: "private"}[v])
		},
	}
	cmd.AddCommand(create, list, del, setPublic, c.quotaCmd())
	return cmd
}

// ---------------------------------------------------------------- members

// principal accepts user:NAME, group:NAME, or a bare user name.
func principal(s string) string {
	if strings.HasPrefix(s, "user:") || strings.HasPrefix(s, "group:") {
		return s
	}
	return "user:" + s
}

func (c *adminClient) memberCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "member", Short: "Manage project members (project and system administrators)"}
	add := &cobra.Command{
		Use:   "add PROJECT PRINCIPAL ROLE",
		Short: "Give a user (user:NAME or NAME) or a directory group (group:NAME) a role: guest, developer, maintainer or admin",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := principal(args[1])
			if err := c.send(cmd, http.MethodPut, "/projects/"+url.PathEscape(args[0])+"/members", nil, map[string]any{"principal": p, "role": args[2]}, nil); err != nil {
				return err
			}
			return c.done("%s is %s in %s", p, args[2], args[0])
		},
	}
	remove := &cobra.Command{
		Use:   "remove PROJECT PRINCIPAL",
		Short: "Remove a member",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := principal(args[1])
			if err := c.send(cmd, http.MethodDelete, "/projects/"+url.PathEscape(args[0])+"/members/"+url.PathEscape(p), nil, nil, nil); err != nil {
				return err
			}
			return c.done("removed %s from %s", p, args[0])
		},
	}
	list := &cobra.Command{
		Use:   "list PROJECT",
		Short: "List a project's members",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res struct {
				Members []json.RawMessage `json:"members"`
			}
			data, _, err := c.call(cmd.Context(), http.MethodGet, "/projects/"+url.PathEscape(args[0])+"/members", nil, nil)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(data, &res); err != nil {
				return err
			}
			return c.printList("members", res.Members, "PRINCIPAL\tROLE", func(raw json.RawMessage) (string, error) {
				var m struct{ Principal, Role string }
				err := json.Unmarshal(raw, &m)
				return m.Principal + "\t" + m.Role, err
			})
		},
	}
	cmd.AddCommand(add, remove, list)
	return cmd
}

// ---------------------------------------------------------------- robots

type cliRobot struct {
	Name        string `json:"name"`
	Project     string `json:"project"`
	Permissions []struct {
		Project string   `json:"project"`
		Actions []string `json:"actions"`
	} `json:"permissions"`
	ExpiresAt *time.Time `json:"expiresAt"`
	Expired   bool       `json:"expired"`
	Disabled  bool       `json:"disabled"`
	CreatedAt time.Time  `json:"createdAt"`
	Secret    string     `json:"secret"`
}

// robotPath is the API path of a robot: NAME is its full name (robot$team+ci, whose
// project is then known) or its suffix with --project for a project robot.
func robotPath(name, project string) (string, error) {
	if rest, ok := strings.CutPrefix(name, "robot$"); ok {
		if p, _, ok := strings.Cut(rest, "+"); ok {
			if project != "" && project != p {
				return "", fmt.Errorf("robot %s belongs to project %s, not %s", name, p, project)
			}
			project = p
		}
	}
	return robotsPath(project) + "/" + url.PathEscape(name), nil
}

func robotsPath(project string) string {
	if project == "" {
		return "/robots"
	}
	return "/projects/" + url.PathEscape(project) + "/robots"
}

func (c *adminClient) printSecret(r cliRobot, verb string) error {
	fmt.Fprintf(c.errOut, "WARNING: this is the only time the secret of %s is shown: store it now (berth admin robot rotate issues a new one).\n", r.Name)
	if c.json {
		return nil
	}
	fmt.Fprintf(c.out, "%s robot %s\nusername: %s\nsecret:   %s\n", verb, r.Name, r.Name, r.Secret)
	return nil
}

func (c *adminClient) robotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "robot",
		Short: "Manage robot accounts: system robots (system administrators) and project robots (--project; project administrators)",
	}
	var project, expiresIn, expiresAt string
	var actions, perms []string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a robot account and print its secret (once)",
		Long: `Create a robot account: robot$NAME (system) or robot$PROJECT+NAME (with --project). Its secret is
printed once; only a hash is kept.

Permissions: --actions pull,push for a project robot; --permission PROJECT:ACTIONS (repeatable;
PROJECT may be * for every project) for a system robot; '*:metrics' lets a system robot read /metrics.`,
		Example: `  berth admin robot create ci --project team --actions pull,push --expires-in 90d
  berth admin robot create scanner --permission '*:pull'
  berth admin robot create prometheus --permission '*:metrics'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if rest, ok := strings.CutPrefix(name, "robot$"); ok {
				p, suffix, found := strings.Cut(rest, "+")
				switch {
				case !found:
					name = rest
				case project != "" && project != p:
					return fmt.Errorf("robot %s belongs to project %s, not %s", args[0], p, project)
				default:
					name, project = suffix, p
				}
			}
			var permissions []map[string]any
			if len(actions) > 0 {
				permissions = append(permissions, map[string]any{"project": project, "actions": actions})
			}
			for _, p := range perms {
				proj, acts, ok := strings.Cut(p, ":")
				if !ok || acts == "" {
					return fmt.Errorf("--permission %q: want PROJECT:ACTION[,ACTION] (actions pull, push, delete; metrics on *)", p)
				}
				permissions = append(permissions, map[string]any{"project": proj, "actions": strings.Split(acts, ",")})
			}
			if len(permissions) == 0 {
				return errors.New("no permissions: give --actions (project robots) or --permission PROJECT:ACTIONS")
			}
			body := map[string]any{"name": name, "permissions": permissions}
			if expiresIn != "" {
				body["expiresIn"] = expiresIn
			}
			if expiresAt != "" {
				body["expiresAt"] = expiresAt
			}
			var r cliRobot
			if err := c.send(cmd, http.MethodPost, robotsPath(project), nil, body, &r); err != nil {
				return err
			}
			return c.printSecret(r, "created")
		},
	}
	create.Flags().StringVar(&project, "project", "", "create a project robot (robot$PROJECT+NAME)")
	create.Flags().StringSliceVar(&actions, "actions", nil, "actions on the robot's project: pull, push, delete")
	create.Flags().StringArrayVar(&perms, "permission", nil, "PROJECT:ACTIONS, e.g. team:pull,push or '*:pull' (repeatable)")
	create.Flags().StringVar(&expiresIn, "expires-in", "", "lifetime: 30d, 12h, 90m (default: never expires)")
	create.Flags().StringVar(&expiresAt, "expires-at", "", "expiry time, RFC 3339")

	var listProject string
	list := &cobra.Command{
		Use:   "list",
		Short: "List system robots, or a project's with --project (secrets are never shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, _, err := c.call(cmd.Context(), http.MethodGet, robotsPath(listProject), nil, nil)
			if err != nil {
				return err
			}
			var res struct {
				Robots []json.RawMessage `json:"robots"`
			}
			if err := json.Unmarshal(data, &res); err != nil {
				return err
			}
			return c.printList("robots", res.Robots, "NAME\tPERMISSIONS\tEXPIRES\tSTATE\tCREATED", func(raw json.RawMessage) (string, error) {
				var r cliRobot
				if err := json.Unmarshal(raw, &r); err != nil {
					return "", err
				}
				var ps []string
				for _, p := range r.Permissions {
					ps = append(ps, p.Project+":"+strings.Join(p.Actions, ","))
				}
				expires, state := "never", "active"
				if r.ExpiresAt != nil {
					expires = stamp(*r.ExpiresAt)
				}
				switch {
				case r.Disabled:
					state = "disabled"
				case r.Expired:
					state = "expired"
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.Name, strings.Join(ps, " "), expires, state, stamp(r.CreatedAt)), nil
			})
		},
	}
	list.Flags().StringVar(&listProject, "project", "", "list this project's robots")

	one := func(use, short string, run func(cmd *cobra.Command, path, name string) error) *cobra.Command {
		var p string
		sub := &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				path, err := robotPath(args[0], p)
				if err != nil {
					return err
				}
				return run(cmd, path, args[0])
			},
		}
		sub.Flags().StringVar(&p, "project", "", "the robot's project (not needed with a full name robot$PROJECT+NAME)")
		return sub
	}
	del := one("delete", "Delete a robot account", func(cmd *cobra.Command, path, name string) error {
		if err := c.send(cmd, http.MethodDelete, path, nil, nil, nil); err != nil {
			return err
		}
		return c.done("deleted robot %s", name)
	})
	setDisabled := func(disabled bool) func(cmd *cobra.Command, path, name string) error {
		return func(cmd *cobra.Command, path, name string) error {
			if err := c.send(cmd, http.MethodPatch, path, nil, map[string]any{"disabled": disabled}, nil); err != nil {
				return err
			}
			return c.done("robot %s is %s", name, map[bool]string{true: "disabled", false: "enabled"}[disabled])
		}
	}
	disable := one("disable", "Disable a robot account (its secret stops working)", setDisabled(true))
	enable := one("enable", "Enable a disabled robot account", setDisabled(false))
	rotate := one("rotate", "Replace a robot's secret and print the new one (once)", func(cmd *cobra.Command, path, name string) error {
		var r cliRobot
		if err := c.send(cmd, http.MethodPost, path+"/rotate", nil, nil, &r); err != nil {
			return err
		}
		return c.printSecret(r, "rotated")
	})
	cmd.AddCommand(create, list, del, disable, enable, rotate)
	return cmd
}

// ---------------------------------------------------------------- audit

// auditTime accepts RFC 3339 or a duration back from now (24h, 7d).
func auditTime(s string) (string, error) {
	if _, err := time.Parse(time.RFC3339, s); err == nil {
		return s, nil
	}
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	}
	if err != nil || d < 0 {
		return "", fmt.Errorf("%q: want an RFC 3339 time or a duration back from now (90m, 24h, 7d)", s)
	}
	return time.Now().Add(-d).UTC().Format(time.RFC3339), nil
}

func (c *adminClient) auditCmd() *cobra.Command {
	var actor, action, resource, result, since, until string
	var limit int
	var before int64
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit trail, newest first (system administrators; project administrators see their projects')",
		Example: `  berth admin audit --action push --since 24h
  berth admin audit --actor 'robot$team+ci' --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"actor": actor, "action": action, "resource": resource, "result": result} {
				if v != "" {
					q.Set(k, v)
				}
			}
			for k, v := range map[string]string{"since": since, "until": until} {
				if v != "" {
					t, err := auditTime(v)
					if err != nil {
						return fmt.Errorf("--%s %w", k, err)
					}
					q.Set(k, t)
				}
			}
			q.Set("limit", strconv.Itoa(limit))
			if before > 0 {
				q.Set("before", strconv.FormatInt(before, 10))
			}
			data, hdr, err := c.call(cmd.Context(), http.MethodGet, "/audit", q, nil)
			if err != nil {
				return err
			}
			var res struct {
				Entries []json.RawMessage `json:"entries"`
			}
			if err := json.Unmarshal(data, &res); err != nil {
				return err
			}
			err = c.printList("entries", res.Entries, "ID\tTIME\tACTOR\tACTION\tRESOURCE\tRESULT\tREMOTE\tDETAIL", func(raw json.RawMessage) (string, error) {
				var e struct {
					ID                                              int64
					At                                              time.Time
					Actor, Action, Resource, Result, Remote, Detail string
				}
				err := json.Unmarshal(raw, &e)
				return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s", e.ID, stamp(e.At), e.Actor, e.Action, orDash(e.Resource), e.Result, orDash(e.Remote), e.Detail), err
			})
			if m := nextLink.FindStringSubmatch(hdr.Get("Link")); err == nil && m != nil {
				if u, perr := url.Parse(m[1]); perr == nil {
					fmt.Fprintf(c.errOut, "more entries: add --before %s\n", u.Query().Get("before"))
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&actor, "actor", "", "who acted (user or robot name)")
	f.StringVar(&action, "action", "", "login, push, pull, delete, project.create, member.set, user.create, robot.rotate, …")
	f.StringVar(&resource, "resource", "", "exact resource: team/app:v1, team, robot$team+ci, user$alice")
	f.StringVar(&result, "result", "", "ok, denied or failed")
	f.StringVar(&since, "since", "", "entries at or after: RFC 3339 time or a duration back from now (24h, 7d)")
	f.StringVar(&until, "until", "", "entries before: RFC 3339 time or a duration back from now")
	f.IntVar(&limit, "limit", 100, "at most this many entries (1-1000)")
	f.Int64Var(&before, "before", 0, "entries older than this id (the next page)")
	return cmd
}
