package ldaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"
)

// ssha is OpenLDAP's {SSHA}: base64(SHA-1(password + salt) + salt).
func ssha(password string) string {
	salt := make([]byte, 8)
	rand.Read(salt)
	h := sha1.Sum(append([]byte(password), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h[:], salt...))
}

// directoryLDIF is the directory described in the package comment.
func directoryLDIF() string {
	person := func(dn, uid, cn, mail, pw string) string {
		s := fmt.Sprintf("dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n", dn, uid, cn, uid, ssha(pw))
		if mail != "" {
			s += "mail: " + mail + "\n"
		}
		return s + "\n"
	}
	group := func(cn, desc string, members ...string) string {
		s := fmt.Sprintf("dn: cn=%s,%s\nobjectClass: groupOfNames\ncn: %s\n", cn, GroupsDN, cn)
		if desc != "" {
			s += "description: " + desc + "\n"
		}
		for _, m := range members {
			s += "member: " + m + "\n"
		}
		return s + "\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: berth\no: Berth test\n\n", BaseDN)
	for _, ou := range []string{"people", "groups", "services"} {
		fmt.Fprintf(&b, "dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n\n", ou, BaseDN, ou)
	}
	fmt.Fprintf(&b, "dn: %s\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\ncn: berth-svc\nuserPassword: %s\n\n", ServiceDN, ssha(ServicePassword))
	b.WriteString(person(AliceDN, Alice, "Alice", AliceEmail, AlicePassword))
	b.WriteString(person(BobDN, Bob, "Bob", BobEmail, BobPassword))
	b.WriteString(person(CarolDN, Carol, "Carol", "", CarolPassword))
	b.WriteString(person(DaveDN, Dave, "Dave (Ops), Jr", DaveEmail, DavePassword))
	// Two entries with one uid: ambiguous, must never authenticate.
	b.WriteString(person("cn=twin1,"+PeopleDN, Twin, "twin1", "", TwinPassword))
	b.WriteString(person("cn=twin2,"+PeopleDN, Twin, "twin2", "", TwinPassword))
	b.WriteString(group(GroupTeamDevs, TeamDevsDescription, AliceDN, DaveDN))
	b.WriteString(group(GroupTeamAdmins, "", BobDN))
	b.WriteString(group(GroupAllStaff, "", AliceDN, BobDN, DaveDN))
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
