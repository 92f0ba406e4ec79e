package cli

import (
	"os"
	"runtime"
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

// MemoryPerEdge is the memory a hub budgets for each edge it is sized for
// (its --max-edges): with 3,000 and 10,000 idle edges connected (cloudhub
// loadtest) the hub's resident size grew by about 55 KB per edge (two goroutine
// stacks, the connection, its 4 KiB read buffer, and what GOGC=400 leaves
// uncollected). See MemoryLimitForEdges.
const MemoryPerEdge = 64 << 10 // bytes

// MemoryLimitForEdges is a hub's soft memory limit when it is sized for
// edges connected at once: DefaultMemoryLimit for the log, documents and
// resolvers, plus MemoryPerEdge per edge (10,000 edges: 1.6 GiB).
func MemoryLimitForEdges(edges int) int64 {
	return DefaultMemoryLimit + int64(max(edges, 0))*MemoryPerEdge
}

// SetMemoryLimit sets the soft memory limit to bytes unless the GOMEMLIMIT
// environment variable sets it, and reports whether it did.
func SetMemoryLimit(bytes int64) bool {
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return false
	}
	debug.SetMemoryLimit(bytes)
	return true
}

// TuneGC applies the defaults above unless the environment sets them.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(DefaultMemoryLimit)
	}
}

// DefaultProcsPerCPU is how many Go processors (GOMAXPROCS) the servers run
// per CPU they may use.
//
// A replica's writer spends much of its time in fsync, and a goroutine in a
// system call keeps its processor until the runtime's monitor takes it back,
// 20 µs or more later; when the fsync returns, the writer needs a free
// processor again, and with two processors both busy serving HTTP it waits
// in the global run queue. Spare processors let ready goroutines run while
// one is held that way. They add no CPU: the kernel still runs the threads on
// the CPUs there are. Measured on two CPUs (32 HTTP clients writing, one
// process switching GOMAXPROCS between alternating runs of 6,000 writes):
// 2 -> 4 processors took 13,344-14,446 writes/s to 15,930-16,504; 3 gave
// less than 4, and so did 6 and 8.
const DefaultProcsPerCPU = 2

// TuneProcs sets GOMAXPROCS to DefaultProcsPerCPU times the runtime's
// default (the CPUs the process may use, its cgroup's CPU limit included)
// unless the environment sets it. The setting is then fixed: the runtime no
// longer follows changes of the CPU limit.
func TuneProcs() {
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		runtime.SetDefaultGOMAXPROCS()
		runtime.GOMAXPROCS(DefaultProcsPerCPU * runtime.GOMAXPROCS(0))
	}
}
