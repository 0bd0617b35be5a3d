package passwd

import (
	"crypto/fips140"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// legacy is a bcrypt hash (cost 4) of "correct horse", as Berth before PBKDF2 stored them.
const legacy = "$2a$04$geIzGdPf.mUCxqWm/XnsauqekX/yP/pkk.1Trf/MsnuG6yyA220pW"

var format = regexp.MustCompile(`^\$pbkdf2-sha256\$i=600000\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashFormat(t *testing.T) {
	a, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Hash("correct horse")
	if !format.MatchString(a) {
		t.Fatalf("hash %q does not match %s", a, format)
	}
	if a == b {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

// TestStandardPBKDF2 pins the derivation to RFC 7914's PBKDF2-HMAC-SHA-256 test vector
// (P="Password", S="NaCl", c=80000), so stored hashes stay verifiable by any PBKDF2.
func TestStandardPBKDF2(t *testing.T) {
	h, err := hashWith("Password", []byte("NaCl"), 80000)
	if err != nil {
		t.Fatal(err)
	}
	_, _, key, err := parse(strings.Replace(h, b64.EncodeToString([]byte("NaCl")), b64.EncodeToString([]byte("NaCl-padded-16by")), 1))
	if err != nil {
		t.Fatal(err)
	}
	want := "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
	if got := hex.EncodeToString(key); got != want {
		t.Fatalf("PBKDF2-HMAC-SHA-256 = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	cur, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	weak, err := hashWith("correct horse", []byte("0123456789abcdef"), 20000)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, hash, pw string
		rehash         bool
		err            error
	}{
		{"current", cur, "correct horse", false, nil},
		{"current wrong", cur, "correct horsE", false, ErrMismatch},
		{"current empty", cur, "", false, ErrMismatch},
		{"fewer iterations", weak, "correct horse", false, nil},
		{"fewer iterations wrong", weak, "battery staple", false, ErrMismatch},
		{"bcrypt", legacy, "correct horse", true, nil},
		{"bcrypt wrong", legacy, "correct horsE", false, ErrMismatch},
		{"empty hash", "", "x", false, ErrFormat},
		{"unknown scheme", "$argon2id$v=19$m=65536$abc$def", "x", false, ErrFormat},
		{"missing field", "$pbkdf2-sha256$i=600000$c2FsdHNhbHRzYWx0c2FsdA", "x", false, ErrFormat},
		{"too many iterations", strings.Replace(cur, "i=600000", "i=99999999", 1), "correct horse", false, ErrFormat},
		{"too few iterations", strings.Replace(cur, "i=600000", "i=1", 1), "correct horse", false, ErrFormat},
		{"short salt", "$pbkdf2-sha256$i=600000$c2FsdA$" + strings.Split(cur, "$")[4], "correct horse", false, ErrFormat},
		{"bad base64", strings.Replace(cur, "$i=600000$", "$i=600000$!!", 1), "correct horse", false, ErrFormat},
		{"truncated bcrypt", legacy[:59], "correct horse", false, ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rehash, err := Verify(tc.hash, tc.pw)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Verify: err %v, want %v", err, tc.err)
			}
			if rehash != tc.rehash {
				t.Fatalf("Verify: rehash %v, want %v", rehash, tc.rehash)
			}
		})
	}
}

// TestFIPSOnly runs itself again in a child process under GODEBUG=fips140=only, where
// the Go Cryptographic Module panics or fails on any non-approved use: new hashes and
// their verification must work there, and bcrypt must be refused before bcrypt runs.
func TestFIPSOnly(t *testing.T) {
	if os.Getenv("PASSWD_FIPS_CHILD") != "" {
		fipsChecks(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSOnly$", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=only", "PASSWD_FIPS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestFIPSOnly") {
		t.Fatalf("child under fips140=only: %v\n%s", err, out)
	}
}

// fipsChecks is TestFIPSOnly's body in the child process.
func fipsChecks(t *testing.T) {
	if !fips140.Enabled() {
		t.Fatal("fips140.Enabled() is false under GODEBUG=fips140=only")
	}
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if rehash, err := Verify(h, "correct horse"); err != nil || rehash {
		t.Fatalf("Verify(new hash) = %v, %v; want false, nil", rehash, err)
	}
	if _, err := Verify(h, "wrong"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("Verify(wrong) = %v, want ErrMismatch", err)
	}
	_, err = Verify(legacy, "correct horse")
	if !errors.Is(err, ErrBcryptFIPS) || !strings.Contains(err.Error(), "berth admin user passwd") {
		t.Fatalf("Verify(bcrypt) in FIPS mode = %v, want ErrBcryptFIPS naming the reset command", err)
	}
	Waste("anything")
}
