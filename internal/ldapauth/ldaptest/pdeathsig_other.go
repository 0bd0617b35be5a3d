//go:build !linux

package ldaptest

import "os/exec"

func setPdeathsig(*exec.Cmd) {}
