package ldapauth

// The test directory: a real OpenLDAP slapd (Debian package "slapd", installed by
// .ci/install-tools.sh) started once per test binary from a generated slapd.conf, with an
// mdb database loaded by slapadd, listening on ldap:// (StartTLS) and ldaps:// with a
// certificate generated here. Missing slapd skips the tests locally and fails them in CI.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
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

const (
	baseDN    = "dc=berth,dc=test"
	peopleDN  = "ou=people," + baseDN
	groupsDN  = "ou=groups," + baseDN
	svcDN     = "cn=berth-svc,ou=services," + baseDN
	svcPass   = "svc secret 1"
	alicePass = "alice pw 1"
	bobPass   = "bob pw 1"
	carolPass = "carol pw 1"
	davePass  = "dave pw 1"
	twinPass  = "twin pw 1"
	// dave's DN has filter metacharacters (parentheses) and an escaped comma: the
	// group filter only works if the DN is escaped.
	daveDN = `cn=Dave (Ops)\2C Jr,` + peopleDN
)

type slapd struct {
	dir         string
	ldapURL     string // plain, StartTLS available
	ldapsURL    string
	caFile      string // signed the server certificate
	wrongCAFile string // an unrelated CA
	cmd         *exec.Cmd
	exited      chan struct{}
}

var (
	fixture     *slapd
	fixtureErr  error
	fixtureOnce sync.Once
	errNoSlapd  = errors.New("slapd not installed")
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture != nil {
		fixture.stop()
	}
	os.Exit(code)
}

// server returns the shared slapd, starting it on first use.
func server(t *testing.T) *slapd {
	t.Helper()
	fixtureOnce.Do(func() { fixture, fixtureErr = startSlapd() })
	if fixtureErr != nil {
		if errors.Is(fixtureErr, errNoSlapd) && os.Getenv("CI") == "" {
			t.Skipf("%v (install with .ci/install-tools.sh slapd ldap-utils; required when CI is set)", fixtureErr)
		}
		t.Fatal(fixtureErr)
	}
	return fixture
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
	return "", fmt.Errorf("%w: %s not found in PATH or sbin", errNoSlapd, name)
}

func firstExisting(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func startSlapd() (*slapd, error) {
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
		return nil, fmt.Errorf("%w: no OpenLDAP schema directory", errNoSlapd)
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
	s := &slapd{dir: dir}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()

	s.caFile = filepath.Join(dir, "ca.pem")
	s.wrongCAFile = filepath.Join(dir, "wrong-ca.pem")
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	if err := writeCerts(s.caFile, s.wrongCAFile, certFile, keyFile); err != nil {
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
	fmt.Fprintf(&conf, "TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n", s.caFile, certFile, keyFile)
	// Like Active Directory: a DN with an empty password binds as anonymous. The
	// empty-password test relies on this trap being live.
	conf.WriteString("allow bind_anon_dn\n")
	fmt.Fprintf(&conf, `
database mdb
suffix %q
rootdn "cn=admin,%s"
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
`, baseDN, baseDN, ssha("admin pw 1"), filepath.Join(dir, "db"), groupsDN)
	confFile := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o600); err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		return nil, err
	}
	ldifFile := filepath.Join(dir, "data.ldif")
	if err := os.WriteFile(ldifFile, []byte(testLDIF()), 0o600); err != nil {
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

func (s *slapd) start(bin, confFile string) error {
	ldapPort, ldapsPort := freePort(), freePort()
	if ldapPort == 0 || ldapsPort == 0 || ldapPort == ldapsPort {
		return errors.New("no free port")
	}
	s.ldapURL = fmt.Sprintf("ldap://127.0.0.1:%d", ldapPort)
	s.ldapsURL = fmt.Sprintf("ldaps://127.0.0.1:%d", ldapsPort)
	logFile := filepath.Join(s.dir, "slapd.log")
	log, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer log.Close()
	// -d 0: stay in the foreground (no fork), no debug output; errors still reach stderr.
	cmd := exec.Command(bin, "-d", "0", "-f", confFile, "-h", s.ldapURL+"/ "+s.ldapsURL+"/")
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
			s.stop()
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

// stop ends slapd (SIGTERM, then SIGKILL after 5s) and removes its directory.
func (s *slapd) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}

// ssha is OpenLDAP's {SSHA}: base64(SHA-1(password + salt) + salt).
func ssha(password string) string {
	salt := make([]byte, 8)
	rand.Read(salt)
	h := sha1.Sum(append([]byte(password), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h[:], salt...))
}

func testLDIF() string {
	person := func(dn, uid, cn, mail, pw string) string {
		s := fmt.Sprintf("dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n", dn, uid, cn, uid, ssha(pw))
		if mail != "" {
			s += "mail: " + mail + "\n"
		}
		return s + "\n"
	}
	group := func(cn, desc string, members ...string) string {
		s := fmt.Sprintf("dn: cn=%s,%s\nobjectClass: groupOfNames\ncn: %s\n", cn, groupsDN, cn)
		if desc != "" {
			s += "description: " + desc + "\n"
		}
		for _, m := range members {
			s += "member: " + m + "\n"
		}
		return s + "\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: berth\no: Berth test\n\n", baseDN)
	for _, ou := range []string{"people", "groups", "services"} {
		fmt.Fprintf(&b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ou, baseDN, ou)
	}
	fmt.Fprintf(&b, "dn: %s\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\ncn: berth-svc\nuserPassword: %s\n\n", svcDN, ssha(svcPass))
	b.WriteString(person("uid=alice,"+peopleDN, "alice", "Alice", "alice@berth.test", alicePass))
	b.WriteString(person("uid=bob,"+peopleDN, "bob", "Bob", "bob@berth.test", bobPass))
	b.WriteString(person("uid=carol,"+peopleDN, "carol", "Carol", "", carolPass))
	b.WriteString(person(daveDN, "dave", "Dave (Ops), Jr", "dave@berth.test", davePass))
	// Two entries with one uid: ambiguous, must never authenticate.
	b.WriteString(person("cn=twin1,"+peopleDN, "twin", "twin1", "", twinPass))
	b.WriteString(person("cn=twin2,"+peopleDN, "twin", "twin2", "", twinPass))
	b.WriteString(group("team-devs", "Developers", "uid=alice,"+peopleDN, daveDN))
	b.WriteString(group("team-admins", "", "uid=bob,"+peopleDN))
	b.WriteString(group("all-staff", "", "uid=alice,"+peopleDN, "uid=bob,"+peopleDN, daveDN))
	return b.String()
}

// writeCerts writes a CA, a server certificate for 127.0.0.1 (only) signed by it and
// its key, and an unrelated CA.
func writeCerts(caFile, wrongCAFile, certFile, keyFile string) error {
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, nil, nil, err
		}
		cert, err := x509.ParseCertificate(der)
		return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), err
	}
	ca, caKey, caPEM, err := newCA("berth test CA")
	if err != nil {
		return err
	}
	_, _, wrongPEM, err := newCA("berth test CA") // same name, different key
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano() + 1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, // not "localhost": the name-mismatch test uses it
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		caFile:      caPEM,
		wrongCAFile: wrongPEM,
		certFile:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
