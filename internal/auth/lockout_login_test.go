package auth

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestLockoutIsPerSource: an attacker failing logins for an account from one address
// locks that account out from that address only; the owner logging in from elsewhere
// is unaffected, users and robots alike.
func TestLockoutIsPerSource(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	s, _ := w.service(t, Options{MaxFailures: 3, FailureWindow: time.Hour})
	for _, name := range []string{"dave", "robot$team+pull"} {
		for i := range 10 {
			_, err := s.Login(ctx, name, fmt.Sprintf("wrong-%d-guess", i), "203.0.113.7")
			if i < 3 && !errors.Is(err, ErrInvalidCredentials) || i >= 3 && !errors.Is(err, ErrTooManyFailures) {
				t.Fatalf("%s attempt %d from the attacker: %v", name, i, err)
			}
		}
	}
	// The correct password from the attacker's address is refused unchecked...
	if _, err := s.Login(ctx, "dave", testPassword, "203.0.113.7"); !errors.Is(err, ErrTooManyFailures) {
		t.Errorf("dave from the attacker's address: %v, want ErrTooManyFailures", err)
	}
	// ...and accepted from anywhere else.
	if _, err := s.Login(ctx, "dave", testPassword, "198.51.100.1"); err != nil {
		t.Errorf("dave from his own address after an attacker's failures: %v", err)
	}
	if _, err := s.Login(ctx, "robot$team+pull", robotSecret, "198.51.100.2"); err != nil {
		t.Errorf("robot from CI after an attacker's failures: %v", err)
	}
}
