package oci

import (
	// go-digest resolves algorithms through crypto.Hash; registering them here makes
	// sha256 and sha512 available wherever this package is linked.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// ErrInvalidDigest reports a malformed digest or an algorithm Berth does not serve.
var ErrInvalidDigest = errors.New("invalid digest")

// ParseDigest validates s as a digest with a supported algorithm (sha256, sha512) and a
// hex part of the right length, lower case only.
func ParseDigest(s string) (digest.Digest, error) {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("%w: %q has no algorithm", ErrInvalidDigest, s)
	}
	var want int
	switch digest.Algorithm(alg) {
	case digest.SHA256:
		want = 64
	case digest.SHA512:
		want = 128
	default:
		return "", fmt.Errorf("%w: algorithm %q is not supported (use sha256 or sha512)", ErrInvalidDigest, alg)
	}
	if len(hex) != want {
		return "", fmt.Errorf("%w: %s hex must be %d characters", ErrInvalidDigest, alg, want)
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
			return "", fmt.Errorf("%w: %q is not lower-case hex", ErrInvalidDigest, s)
		}
	}
	return digest.Digest(s), nil
}

// IsDigestLike tells a digest reference from a tag: tags cannot contain ':'.
func IsDigestLike(ref string) bool { return strings.IndexByte(ref, ':') >= 0 }

// Digest is a validated content digest.
type Digest = digest.Digest

// Algorithms Berth serves.
const (
	SHA256 = digest.SHA256
	SHA512 = digest.SHA512
)

// NewDigest returns the digest of what h has hashed.
func NewDigest(alg digest.Algorithm, h interface{ Sum([]byte) []byte }) Digest {
	return digest.NewDigestFromBytes(alg, h.Sum(nil))
}
