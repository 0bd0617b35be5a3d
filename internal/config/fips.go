package config

import (
	"crypto/fips140"
	"errors"
	"fmt"
)

// FIPSEnabled reports whether Go's FIPS 140-3 module runs in FIPS mode in this process
// (GODEBUG=fips140=on or only, or the default of a GOFIPS140 build).
func FIPSEnabled() bool { return fips140.Enabled() }

// FIPSStatus is the one-line report of FIPS mode for `berth config check`, the start-up
// log and /readyz: "on (module v1.0.0, enforced)", "on (module v1.26.0)" or "off".
func FIPSStatus() string {
	if !fips140.Enabled() {
		return "off"
	}
	s := "on (module " + fips140.Version()
	if fips140.Enforced() {
		s += ", enforced: fips140=only"
	}
	return s + ")"
}

// validateFIPS: fips: true without the module in FIPS mode is a start-up error, so an
// operator who asked for FIPS never runs without it by accident.
func (c Config) validateFIPS() []error {
	if c.FIPS && !fips140.Enabled() {
		return []error{errors.New("fips: true, but Go's FIPS 140-3 mode is off: start berth with GODEBUG=fips140=on " +
			"(or use the FIPS build, GOFIPS140=v1.0.0, which turns it on by default)")}
	}
	if fips140.Enabled() && c.HF.Enabled {
		// The Hugging Face protocol names files by git's SHA-1 blob ids: not a security
		// use, but fips140=only panics on any SHA-1.
		if fips140.Enforced() {
			return []error{fmt.Errorf("hf.enabled: the Hugging Face mirror verifies git SHA-1 blob ids, which GODEBUG=fips140=only forbids; use fips140=on")}
		}
	}
	return nil
}
