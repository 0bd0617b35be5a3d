package config

import (
	"fmt"
	"time"
)

// UI configures the web interface served at / (package ui). It needs auth.enabled:
// every page belongs to a logged-in user.
type UI struct {
	Enabled bool `yaml:"enabled"`
	// SessionTTL is the longest a login lasts; SessionIdle ends a session unused that long.
	SessionTTL  Duration `yaml:"sessionTTL"`
	SessionIdle Duration `yaml:"sessionIdle"`
	// SecureCookies marks session cookies Secure on plain HTTP requests too: set it
	// when a TLS-terminating proxy stands in front (requests over TLS always get them).
	SecureCookies bool `yaml:"secureCookies"`
}

func defaultUI() UI {
	return UI{Enabled: true, SessionTTL: Duration(12 * time.Hour), SessionIdle: Duration(time.Hour)}
}

func (u UI) validate() []error {
	var errs []error
	if u.SessionTTL < Duration(time.Minute) {
		errs = append(errs, fmt.Errorf("ui.sessionTTL must be at least 1m"))
	}
	if u.SessionIdle < Duration(time.Minute) || u.SessionIdle > u.SessionTTL {
		errs = append(errs, fmt.Errorf("ui.sessionIdle must be from 1m to ui.sessionTTL"))
	}
	return errs
}
