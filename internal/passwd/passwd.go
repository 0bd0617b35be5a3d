// Package passwd hashes and verifies user passwords and robot secrets. New hashes are
// PBKDF2-HMAC-SHA-256 from the standard library (crypto/pbkdf2), an algorithm approved
// in FIPS 140-3 mode, in a self-describing string:
//
//	$pbkdf2-sha256$i=600000$<salt, base64>$<key, base64>
//
// Hashes made by older Berth versions are bcrypt ($2a$/$2b$/$2y$). Outside FIPS mode
// they still verify (and the caller is told to rehash them); in FIPS mode bcrypt is not
// an approved algorithm, so they are refused with ErrBcryptFIPS before any bcrypt code
// runs.
package passwd

import (
	"crypto/fips140"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Iterations is the PBKDF2 work factor of new hashes: OWASP's 2023 figure for
// PBKDF2-HMAC-SHA-256. One verification takes about 100 ms on one core of the CI
// machine, bcrypt cost 10's order; the login cache spares repeated logins from it.
const Iterations = 600_000

const (
	prefix  = "$pbkdf2-sha256$"
	saltLen = 16 // 128 bits: the minimum FIPS 140-only mode accepts (SP 800-132)
	keyLen  = 32
	// Bounds on a stored hash's iterations: below minIter it is not worth keeping (it
	// is rehashed); above maxIter a corrupted row would pin a core per login.
	minIter = 10_000
	maxIter = 10_000_000
)

var b64 = base64.RawStdEncoding

// Errors of Verify.
var (
	// ErrMismatch: the password does not match the hash.
	ErrMismatch = errors.New("passwd: password does not match")
	// ErrBcryptFIPS: the hash is bcrypt and FIPS 140-3 mode is on.
	ErrBcryptFIPS = errors.New("passwd: the stored hash is bcrypt, which FIPS 140-3 mode does not allow; " +
		"an administrator must reset it: `berth admin user passwd NAME` for a user, " +
		"`berth admin robot rotate NAME` for a robot (or log in once with Berth outside FIPS mode, which rehashes it)")
	// ErrFormat: the hash is neither PBKDF2 in Berth's format nor bcrypt.
	ErrFormat = errors.New("passwd: unrecognised hash format")
)

// Hash returns a new PBKDF2-HMAC-SHA-256 hash of pw with a random salt.
func Hash(pw string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passwd: salt: %w", err)
	}
	return hashWith(pw, salt, Iterations)
}

func hashWith(pw string, salt []byte, iter int) (string, error) {
	key, err := pbkdf2.Key(sha256.New, pw, salt, iter, keyLen)
	if err != nil {
		return "", fmt.Errorf("passwd: pbkdf2: %w", err)
	}
	return prefix + "i=" + strconv.Itoa(iter) + "$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key), nil
}

// Verify checks pw against hash. It returns nil when they match; rehash then says the
// hash is bcrypt and should be replaced by Hash(pw). A PBKDF2 hash with fewer iterations
// than Iterations (at least 10000: HashCost's, in tests) is kept as it is: rehashing it
// would make every test login pay the full work factor.
func Verify(hash, pw string) (rehash bool, err error) {
	if IsBcrypt(hash) {
		if fips140.Enabled() {
			return false, ErrBcryptFIPS
		}
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) != nil {
			return false, ErrMismatch
		}
		return true, nil
	}
	iter, salt, want, err := parse(hash)
	if err != nil {
		return false, err
	}
	got, err := pbkdf2.Key(sha256.New, pw, salt, iter, len(want))
	if err != nil {
		return false, fmt.Errorf("passwd: pbkdf2: %w", err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, ErrMismatch
	}
	return false, nil
}

// HashCost is Hash with a chosen work factor, for tests that need cheap hashes (Verify
// accepts 10000 to 10000000 iterations); production code uses Hash.
func HashCost(pw string, iterations int) (string, error) {
	if iterations < minIter || iterations > maxIter {
		return "", fmt.Errorf("passwd: iterations %d out of [%d, %d]", iterations, minIter, maxIter)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passwd: salt: %w", err)
	}
	return hashWith(pw, salt, iterations)
}

// Waste spends the time of one verification without a hash to compare against, so a
// login for an unknown or disabled account takes as long as one for a real account.
func Waste(pw string) {
	_, _ = pbkdf2.Key(sha256.New, pw, wasteSalt, Iterations, keyLen)
}

var wasteSalt = []byte("berth-timing-eq!") // 16 bytes, as FIPS 140-only mode requires

// IsBcrypt tells whether hash is a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters).
func IsBcrypt(hash string) bool {
	return len(hash) == 60 && (strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$"))
}

func parse(hash string) (iter int, salt, key []byte, err error) {
	rest, ok := strings.CutPrefix(hash, prefix)
	if !ok {
		return 0, nil, nil, ErrFormat
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "i=") {
		return 0, nil, nil, fmt.Errorf("%w: want $pbkdf2-sha256$i=N$salt$key", ErrFormat)
	}
	if iter, err = strconv.Atoi(parts[0][2:]); err != nil || iter < minIter || iter > maxIter {
		return 0, nil, nil, fmt.Errorf("%w: iterations %q out of [%d, %d]", ErrFormat, parts[0][2:], minIter, maxIter)
	}
	if salt, err = b64.DecodeString(parts[1]); err != nil || len(salt) < saltLen {
		return 0, nil, nil, fmt.Errorf("%w: salt must be at least %d bytes of base64", ErrFormat, saltLen)
	}
	if key, err = b64.DecodeString(parts[2]); err != nil || len(key) < 16 || len(key) > 64 {
		return 0, nil, nil, fmt.Errorf("%w: key must be 16 to 64 bytes of base64", ErrFormat)
	}
	return iter, salt, key, nil
}
