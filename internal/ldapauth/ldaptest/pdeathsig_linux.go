package ldaptest

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill slapd when the test binary dies, even on a test
// timeout or a crash that skips every cleanup.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
