//go:build !unix

package loadtest

import "errors"

// RaiseFileLimit reports that the load test needs a Unix system (it reads
// the hub's CPU and memory from /proc too).
func RaiseFileLimit() (uint64, error) {
	return 0, errors.New("cloudhub loadtest runs on Linux")
}
