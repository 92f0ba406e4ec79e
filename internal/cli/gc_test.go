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
