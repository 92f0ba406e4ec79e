package cli

import (
	"os"
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
