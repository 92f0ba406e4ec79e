package cli

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	oldPercent, oldLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	})
	unset := func(key string) {
		old, had := os.LookupEnv(key)
		os.Unsetenv(key)
		t.Cleanup(func() {
			if had {
				os.Setenv(key, old)
			}
		})
	}
	unset("GOGC")
	unset("GOMEMLIMIT")
	TuneGC()
	if p := debug.SetGCPercent(100); p != DefaultGCPercent {
		t.Fatalf("GC percent %d after TuneGC, want %d", p, DefaultGCPercent)
	}
	if l := debug.SetMemoryLimit(-1); l != DefaultMemoryLimit {
		t.Fatalf("memory limit %d after TuneGC, want %d", l, DefaultMemoryLimit)
	}

	// The environment wins: TuneGC leaves what it set alone.
	debug.SetMemoryLimit(oldLimit)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "2GiB")
	TuneGC()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("GC percent %d with GOGC set, want it untouched (100)", p)
	}
	if l := debug.SetMemoryLimit(-1); l != oldLimit {
		t.Fatalf("memory limit %d with GOMEMLIMIT set, want it untouched (%d)", l, oldLimit)
	}
}

func TestSetMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	if v, had := os.LookupEnv("GOMEMLIMIT"); had {
		t.Cleanup(func() { os.Setenv("GOMEMLIMIT", v) })
	}
	os.Unsetenv("GOMEMLIMIT")
	for _, tc := range []struct {
		name  string
		edges int
		want  int64
	}{
		{name: "none", edges: 0, want: DefaultMemoryLimit},
		{name: "10,000 edges", edges: 10000, want: DefaultMemoryLimit + 10000*MemoryPerEdge},
		{name: "100,000 edges", edges: 100000, want: DefaultMemoryLimit + 100000*MemoryPerEdge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !SetMemoryLimit(MemoryLimitForEdges(tc.edges)) {
				t.Fatalf("SetMemoryLimit did not set the limit with GOMEMLIMIT unset")
			}
			if got := debug.SetMemoryLimit(-1); got != tc.want {
				t.Fatalf("memory limit %d for %d edges, want %d", got, tc.edges, tc.want)
			}
		})
	}
	debug.SetMemoryLimit(old)
	t.Setenv("GOMEMLIMIT", "3GiB")
	if SetMemoryLimit(MemoryLimitForEdges(50000)) {
		t.Fatalf("SetMemoryLimit set the limit with GOMEMLIMIT set")
	}
	if got := debug.SetMemoryLimit(-1); got != old {
		t.Fatalf("memory limit %d with GOMEMLIMIT set, want it untouched (%d)", got, old)
	}
}

func TestTuneProcs(t *testing.T) {
	old := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	if v, had := os.LookupEnv("GOMAXPROCS"); had {
		t.Cleanup(func() { os.Setenv("GOMAXPROCS", v) })
	}
	os.Unsetenv("GOMAXPROCS")
	for range 2 { // twice: it sets, it does not multiply
		TuneProcs()
		if got := runtime.GOMAXPROCS(0); got != DefaultProcsPerCPU*def {
			t.Fatalf("GOMAXPROCS %d after TuneProcs, want %d (default %d)", got, DefaultProcsPerCPU*def, def)
		}
	}
	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3)
	TuneProcs()
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("GOMAXPROCS %d with the variable set to 3, want it untouched", got)
	}
}
