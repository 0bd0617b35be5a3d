package events

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSealerCompat: secrets sealed before the sealer moved to GCM with random nonces
// (nonce chosen by Berth, stored in front) still open, and new ones round-trip.
func TestSealerCompat(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("EVENTS_FIPS_CHILD") == "" {
		block, _ := aes.NewCipher(key)
		old, _ := cipher.NewGCM(block)
		nonce := bytes.Repeat([]byte{1}, old.NonceSize())
		sealed := sealPrefix + base64.StdEncoding.EncodeToString(old.Seal(nonce, nonce, []byte("old-secret"), []byte("berth webhook secret")))
		if got, err := s.Open(sealed); err != nil || got != "old-secret" {
			t.Fatalf("Open(old format) = %q, %v", got, err)
		}
	}
	sealed := s.Seal("new-secret")
	if got, err := s.Open(sealed); err != nil || got != "new-secret" {
		t.Fatalf("round trip = %q, %v", got, err)
	}
	if s.Seal("new-secret") == sealed {
		t.Fatal("two seals of one secret are equal: the nonce is not random")
	}
	other, _ := NewSealer(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("a secret opened with another key")
	}
	if os.Getenv("EVENTS_FIPS_CHILD") != "" {
		return
	}
	// The same checks under GODEBUG=fips140=only, which refuses GCM with a caller's nonce.
	cmd := exec.Command(os.Args[0], "-test.run=^TestSealerCompat$", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=only", "EVENTS_FIPS_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "--- PASS: TestSealerCompat") {
		t.Fatalf("child under fips140=only: %v\n%s", err, out)
	}
}
