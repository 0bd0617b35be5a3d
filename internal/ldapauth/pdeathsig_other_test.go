//go:build !linux

package ldapauth

import "os/exec"

func setPdeathsig(*exec.Cmd) {}
