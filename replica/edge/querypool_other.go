//go:build !linux

package edge

import "errors"

// lowerThreadPriority is not available: elsewhere setpriority applies to
// the whole process. The workers still bound how many queries run at once.
func lowerThreadPriority(int) error { return errors.New("per-thread priority not supported") }
