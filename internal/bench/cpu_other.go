//go:build !unix

package bench

import "time"

// ProcessCPU is the CPU time (user and system) this process has used so far;
// 0 where the platform does not say.
func ProcessCPU() time.Duration { return 0 }
