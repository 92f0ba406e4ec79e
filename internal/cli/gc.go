package cli

import (
	"os"
	"runtime/debug"
)

// Garbage collector defaults for the servers. A replica allocates for every
// document it moves (frames, rows, bodies) and keeps little of it, so
// collecting less often pays: with GOGC=400 instead of Go's 100 the sync
// benchmark moves 25-30% more documents per second on two cores, for about
// twice the resident memory (120 -> 230 MB in that run). The soft memory
// limit makes the collector run more often instead as the heap approaches
// it. Both yield to the GOGC and GOMEMLIMIT environment variables.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 1 << 30 // bytes
)

// TuneGC applies the defaults above unless the environment sets them.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}
}
