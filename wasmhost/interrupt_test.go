package wasmhost_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/wasmhost"
)

// interruptRuns is how many calls of each kind TestHost_interruptLands
// stops: EDGESYNC_INTERRUPT_RUNS, or 10.
func interruptRuns(t *testing.T) int {
	s := os.Getenv("EDGESYNC_INTERRUPT_RUNS")
	if s == "" {
		return 10
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("EDGESYNC_INTERRUPT_RUNS=%q: want a positive count", s)
	}
	return n
}

// TestHost_interruptLands stops endless calls of every kind (a tight loop,
// a loop of host calls, recursion, memory.grow and memory.fill loops) by
// the wall-clock bound and by their context, with GOMAXPROCS 1 and 2 and
// the garbage collector running (another goroutine allocates all along),
// and checks that every call ends within a second of its deadline. It
// logs the lateness of the stops (p50 and max) per case.
func TestHost_interruptLands(t *testing.T) {
	const (
		deadline = 20 * time.Millisecond
		bound    = time.Second
	)
	runs := interruptRuns(t)
	modules := []string{"infinite-loop.wasm", "endless-host-calls.wasm", "endless-recursion.wasm",
		"endless-grow.wasm", "endless-fill.wasm"}
	ctx := context.Background()
	// Fuel for hours: only the deadline may stop these calls. A call that
	// is not stopped still ends when the fuel runs out (a failure, not a
	// hang of the test).
	// The calls stopped by their context run on a host whose bound is an
	// hour.
	hosts := map[string]*wasmhost.Host{
		"timeout": newHost(t, wasmhost.Limits{Fuel: 1 << 62, Timeout: deadline}),
		"context": newHost(t, wasmhost.Limits{Fuel: 1 << 62, Timeout: time.Hour}),
	}
	compiled := map[string]*wasmhost.Module{}
	for by, h := range hosts {
		for _, file := range modules {
			m, err := h.Compile(ctx, readFixture(t, "malicious/"+file))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			compiled[by+"/"+file] = m
		}
	}

	// Allocate all along, so that collections (which stop the world)
	// start while guest code runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var keep [][]byte
		for {
			select {
			case <-stop:
				return
			default:
			}
			keep = append(keep, make([]byte, 64<<10))
			if len(keep) > 64 {
				keep = keep[:0]
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	old := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(old)
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		for _, file := range modules {
			for _, by := range []string{"timeout", "context"} {
				name := fmt.Sprintf("GOMAXPROCS=%d/%s/%s", procs, file, by)
				t.Run(name, func(t *testing.T) {
					late := make([]time.Duration, 0, runs)
					for range runs {
						callCtx, cancel := context.Background(), context.CancelFunc(func() {})
						want := wasmhost.ReasonTimeout
						if by == "context" {
							callCtx, cancel = context.WithTimeout(ctx, deadline)
							want = wasmhost.ReasonCanceled
						}
						start := time.Now()
						_, _, err := compiled[by+"/"+file].Resolve(callCtx, cartInput)
						took := time.Since(start)
						cancel()
						var ce *wasmhost.CallError
						if !errors.As(err, &ce) || ce.Reason != want {
							t.Fatalf("Resolve() = %v after %v, want reason %s", err, took, want)
						}
						late = append(late, max(took-deadline, 0))
					}
					slices.Sort(late)
					p50, worst := late[len(late)/2], late[len(late)-1]
					t.Logf("%d stops, late by p50 %v, max %v", runs, p50.Round(time.Microsecond), worst.Round(time.Microsecond))
					if worst > bound {
						t.Fatalf("a call ended %v after its deadline, want at most %v", worst, bound)
					}
				})
			}
		}
	}
}
