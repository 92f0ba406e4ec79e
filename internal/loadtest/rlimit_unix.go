//go:build unix

package loadtest

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit raises the soft limit of open files to the hard limit and
// returns the limit now in force.
func RaiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("file limit: %w", err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, fmt.Errorf("raise file limit: %w", err)
		}
	}
	return uint64(rl.Cur), nil
}
