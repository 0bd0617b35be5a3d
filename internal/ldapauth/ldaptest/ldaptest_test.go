package ldaptest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Start serves the documented directory on both URLs, and Stop really takes it down
// (the end-to-end tests rely on that for their directory-outage case).
func TestStartStop(t *testing.T) {
	s := Start(t)
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	for _, u := range []string{s.URL, s.LDAPSURL} {
		conn, err := ldap.DialURL(u, ldap.DialWithTLSConfig(&tls.Config{RootCAs: roots}))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if err := conn.Bind(s.BindDN, s.BindPassword); err != nil {
			t.Errorf("%s: service bind: %v", u, err)
		}
		res, err := conn.Search(ldap.NewSearchRequest(s.GroupsDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(member="+ldap.EscapeFilter(BobDN)+")", []string{"cn"}, nil))
		if err != nil || len(res.Entries) != 2 {
			t.Errorf("%s: bob's groups: %v, %v", u, res, err)
		}
		for user, pw := range map[string]string{AliceDN: AlicePassword, BobDN: BobPassword, CarolDN: CarolPassword, DaveDN: DavePassword} {
			if err := conn.Bind(user, pw); err != nil {
				t.Errorf("%s: bind %s: %v", u, user, err)
			}
		}
		conn.Close()
	}

	s.Stop()
	s.Stop() // idempotent
	for _, u := range []string{s.URL, s.LDAPSURL} {
		pu, _ := url.Parse(u)
		if c, err := net.DialTimeout("tcp", pu.Host, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", u)
		}
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("%s not removed: %v", s.Dir, err)
	}
}
