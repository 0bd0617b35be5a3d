// Package ldaptest is test support, not production code: it runs a real OpenLDAP slapd
// (Debian package "slapd", installed by .ci/install-tools.sh) for the tests of
// internal/ldapauth and the end-to-end tests. Berth itself never imports it.
//
// Each server is generated from scratch: a slapd.conf, an mdb database loaded with
// slapadd from the fixed directory described by this package's constants, and a CA and
// server certificate (for 127.0.0.1 only) made on the spot. It listens on ldap://
// (StartTLS available) and ldaps:// on free loopback ports. slapd is killed with the
// test binary (Linux parent-death signal) even when no cleanup runs.
//
// The directory:
//
//	dc=berth,dc=test
//	  ou=people    alice, bob, carol, dave (DN with filter metacharacters), twin ×2
//	  ou=groups    team-devs (alice, dave; description "Developers"),
//	               team-admins (bob), all-staff (alice, bob, dave)
//	  ou=services  cn=berth-svc, the service account
//
// carol is in no group and has no mail. The two "twin" entries share a uid: a lookup of
// twin is ambiguous and must never authenticate. Groups are readable by authenticated
// binds only (not anonymously); passwords only by the bind itself. Like Active
// Directory, the server accepts a DN with an empty password as an anonymous bind.
//
// A missing slapd skips the calling test with the reason, or fails it when CI is set.
package ldaptest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The directory's fixed content.
const (
	BaseDN   = "dc=berth,dc=test"
	PeopleDN = "ou=people," + BaseDN
	GroupsDN = "ou=groups," + BaseDN

	// ServiceDN and ServicePassword are the service account for user and group searches.
	ServiceDN       = "cn=berth-svc,ou=services," + BaseDN
	ServicePassword = "svc secret 1"
	// RootDN and RootPassword are the database's rootdn, for tests that modify the directory.
	RootDN       = "cn=admin," + BaseDN
	RootPassword = "admin pw 1"

	// UserFilter and GroupFilter find the users and their groups (%s: the escaped
	// username, the escaped user DN).
	UserFilter  = "(&(objectClass=inetOrgPerson)(uid=%s))"
	GroupFilter = "(&(objectClass=groupOfNames)(member=%s))"

	GroupTeamDevs   = "team-devs"   // alice, dave
	GroupTeamAdmins = "team-admins" // bob
	GroupAllStaff   = "all-staff"   // alice, bob, dave
	// TeamDevsDescription is team-devs' description; the other groups have none.
	TeamDevsDescription = "Developers"

	// alice: team-devs, all-staff.
	Alice         = "alice"
	AliceDN       = "uid=alice," + PeopleDN
	AlicePassword = "alice pw 1"
	AliceEmail    = "alice@berth.test"
	// bob: team-admins, all-staff.
	Bob         = "bob"
	BobDN       = "uid=bob," + PeopleDN
	BobPassword = "bob pw 1"
	BobEmail    = "bob@berth.test"
	// carol: no group, no mail.
	Carol         = "carol"
	CarolDN       = "uid=carol," + PeopleDN
	CarolPassword = "carol pw 1"
	// dave: team-devs, all-staff. His DN has filter metacharacters (parentheses) and an
	// escaped comma: his groups are only found if the DN is escaped in the group filter.
	// The server may spell the escaped comma differently: compare with ldap.ParseDN.
	Dave         = "dave"
	DaveDN       = `cn=Dave (Ops)\2C Jr,` + PeopleDN
	DavePassword = "dave pw 1"
	DaveEmail    = "dave@berth.test"
	// twin: two entries (cn=twin1, cn=twin2) with this uid and password: ambiguous.
	Twin         = "twin"
	TwinPassword = "twin pw 1"
)

// ErrNotInstalled: slapd, slapadd or the OpenLDAP schema files are missing.
var ErrNotInstalled = errors.New("slapd not installed")

// Server is a running slapd.
type Server struct {
	URL         string // ldap://127.0.0.1:port, StartTLS available
	LDAPSURL    string // ldaps://127.0.0.1:port
	CAFile      string // PEM of the CA that signed the server certificate (for 127.0.0.1 only)
	WrongCAFile string // PEM of an unrelated CA with the same name

	// The constants above, for convenience.
	BaseDN, PeopleDN, GroupsDN string
	BindDN, BindPassword       string // the service account

	Dir string // slapd's configuration, database, certificates and log (slapd.log)

	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// Start starts a private slapd, stopped when t's test ends. Use it when the test stops
// the server or must not share it; otherwise Shared is cheaper.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch()
	require(t, err)
	t.Cleanup(s.Stop)
	return s
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
	sharedMu   sync.Mutex
)

// Shared returns the test binary's shared slapd, starting it on first use. Tests must
// not stop or modify it. Call StopShared from TestMain after m.Run; without it the
// server only ends with the test binary (parent-death signal, Linux) and leaves its
// temporary directory behind.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		s, err := Launch()
		sharedMu.Lock()
		shared, sharedErr = s, err
		sharedMu.Unlock()
	})
	require(t, sharedErr)
	return shared
}

// StopShared stops the shared server if Shared started one.
func StopShared() {
	sharedMu.Lock()
	s := shared
	sharedMu.Unlock()
	if s != nil {
		s.Stop()
	}
}

// require skips t (locally) or fails it (CI set) when slapd is not installed, and fails
// it on any other error.
func require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skipf("%v (install with .ci/install-tools.sh slapd ldap-utils; required when CI is set)", err)
	}
	t.Fatal(err)
}

// Launch starts a slapd outside any test (from TestMain, say). The caller must Stop it.
// The error wraps ErrNotInstalled when slapd is missing.
func Launch() (*Server, error) {
	slapdBin, err := findTool("slapd")
	if err != nil {
		return nil, err
	}
	slapaddBin, err := findTool("slapadd")
	if err != nil {
		return nil, err
	}
	schemaDir := firstExisting("/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema")
	if schemaDir == "" {
		return nil, fmt.Errorf("%w: no OpenLDAP schema directory", ErrNotInstalled)
	}
	// Debian builds back_mdb as a module; other builds may link it in.
	moduleDir := ""
	for _, d := range []string{"/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/libexec/openldap"} {
		if firstExisting(filepath.Join(d, "back_mdb.so"), filepath.Join(d, "back_mdb.la")) != "" {
			moduleDir = d
			break
		}
	}

	dir, err := os.MkdirTemp("", "berth-slapd-")
	if err != nil {
		return nil, err
	}
	s := &Server{
		Dir: dir, BaseDN: BaseDN, PeopleDN: PeopleDN, GroupsDN: GroupsDN, BindDN: ServiceDN, BindPassword: ServicePassword,
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()

	s.CAFile = filepath.Join(dir, "ca.pem")
	s.WrongCAFile = filepath.Join(dir, "wrong-ca.pem")
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	if err := writeCerts(s.CAFile, s.WrongCAFile, certFile, keyFile); err != nil {
		return nil, err
	}

	var conf strings.Builder
	for _, sc := range []string{"core", "cosine", "inetorgperson"} {
		fmt.Fprintf(&conf, "include %s\n", filepath.Join(schemaDir, sc+".schema"))
	}
	fmt.Fprintf(&conf, "pidfile %s\nargsfile %s\n", filepath.Join(dir, "slapd.pid"), filepath.Join(dir, "slapd.args"))
	if moduleDir != "" {
		fmt.Fprintf(&conf, "modulepath %s\nmoduleload back_mdb\n", moduleDir)
	}
	fmt.Fprintf(&conf, "TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n", s.CAFile, certFile, keyFile)
	// Like Active Directory: a DN with an empty password binds as anonymous. The
	// empty-password test relies on this trap being live.
	conf.WriteString("allow bind_anon_dn\n")
	fmt.Fprintf(&conf, `
database mdb
suffix %q
rootdn %q
rootpw %s
directory %s
index objectClass eq
index uid eq
index member eq
access to attrs=userPassword
	by anonymous auth
	by * none
access to dn.subtree=%q
	by users read
	by * none
access to *
	by * read
`, BaseDN, RootDN, ssha(RootPassword), filepath.Join(dir, "db"), GroupsDN)
	confFile := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o600); err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		return nil, err
	}
	ldifFile := filepath.Join(dir, "data.ldif")
	if err := os.WriteFile(ldifFile, []byte(directoryLDIF()), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(slapaddBin, "-f", confFile, "-l", ldifFile).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("slapadd: %v\n%s", err, out)
	}

	// A free port can be taken between probing and slapd binding it: retry.
	var lastErr error
	for range 3 {
		if lastErr = s.start(slapdBin, confFile); lastErr == nil {
			ok = true
			return s, nil
		}
	}
	return nil, lastErr
}

// findTool looks in PATH and then in the sbin directories, which are often not on a
// non-root PATH.
func findTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/libexec", "/usr/libexec"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s not found in PATH or sbin", ErrNotInstalled, name)
}

func firstExisting(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func (s *Server) start(bin, confFile string) error {
	ldapPort, ldapsPort := freePort(), freePort()
	if ldapPort == 0 || ldapsPort == 0 || ldapPort == ldapsPort {
		return errors.New("no free port")
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", ldapPort)
	s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", ldapsPort)
	logFile := filepath.Join(s.Dir, "slapd.log")
	log, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer log.Close()
	// -d 0: stay in the foreground (no fork), no debug output; errors still reach stderr.
	cmd := exec.Command(bin, "-d", "0", "-f", confFile, "-h", s.URL+"/ "+s.LDAPSURL+"/")
	cmd.Stdout, cmd.Stderr = log, log
	setPdeathsig(cmd) // slapd dies with the test binary, even on a test timeout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start slapd: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			out, _ := os.ReadFile(logFile)
			return fmt.Errorf("slapd exited: %v\n%s", cmd.ProcessState, out)
		default:
		}
		if listening(ldapPort) && listening(ldapsPort) {
			return nil
		}
		if time.Now().After(deadline) {
			s.kill()
			out, _ := os.ReadFile(logFile)
			return fmt.Errorf("slapd not accepting connections after 15s\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Stop ends slapd (SIGTERM, then SIGKILL after 5s), so its ports refuse connections,
// and removes its directory. Safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.kill()
		os.RemoveAll(s.Dir)
	})
}

// kill ends the current slapd process and waits for it.
func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}
