package wasmhost_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/wasmhost"
	"github.com/edgesync/edgesync/wasmhost/resolvertest"
)

// fixtures are the built resolvers (resolvers/build.sh).
const fixtures = "../testdata/resolvers"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatalf("fixture: %v (rebuild with resolvers/build.sh)", err)
	}
	return b
}

// newHost is a host with limits l; its compile timeout is an hour unless
// l sets one, so that compiling the Go examples (seconds, and more under
// -race or on a loaded machine) does not time out.
func newHost(t testing.TB, l wasmhost.Limits) *wasmhost.Host {
	t.Helper()
	ctx := context.Background()
	if l.CompileTimeout == 0 {
		l.CompileTimeout = time.Hour
	}
	h, err := wasmhost.New(ctx, wasmhost.Config{Limits: l, Instances: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(ctx) })
	return h
}

var cartInput = replica.ResolverInput{Kind: "replace", Container: "carts", ID: "c1",
	Base:        json.RawMessage(`{"id":"c1","owner":"ann","items":["phone"]}`),
	Existing:    json.RawMessage(`{"id":"c1","owner":"ann","items":[]}`),
	Incoming:    json.RawMessage(`{"id":"c1","owner":"ann","items":["phone","book"]}`),
	Conflicting: []json.RawMessage{}}

// malicious reads the corpus of testdata/resolvers/malicious.
func malicious(t *testing.T) resolvertest.Corpus {
	t.Helper()
	return resolvertest.LoadCorpus(t, filepath.Join(fixtures, "malicious"))
}

func TestHost_Compile_refuses(t *testing.T) {
	h := newHost(t, wasmhost.Limits{ModuleBytes: 8 << 20})
	type test struct {
		name    string
		wasm    []byte
		tooBig  bool
		message string
	}
	tests := []test{
		{name: "empty", wasm: nil, message: "not a WebAssembly binary"},
		{name: "too large", wasm: make([]byte, 8<<20+1), tooBig: true, message: "limit 8388608"},
		{name: "truncated", wasm: readFixture(t, "counter.wasm")[:4096], message: "invalid resolver module"},
	}
	corpus := malicious(t)
	for file, message := range corpus.Refused {
		tests = append(tests, test{name: file, wasm: corpus.Module(t, file), message: message})
	}
	byDefault := newHost(t, wasmhost.Limits{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h
			if len(tt.wasm) > 8<<20 && !tt.tooBig {
				h = byDefault // generated modules of up to 30 MiB
			}
			_, err := h.Compile(context.Background(), tt.wasm)
			want := wasmhost.ErrInvalidModule
			if tt.tooBig {
				want = wasmhost.ErrModuleTooLarge
			}
			if !errors.Is(err, want) {
				t.Fatalf("Compile() = %v, want %v", err, want)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("Compile() = %q, want it to say %q", err, tt.message)
			}
		})
	}
}

// TestHost_malicious runs each hostile module twice (the second call gets a
// fresh instance and must fail the same way), and checks that a good
// resolver on the same host still works after each.
func TestHost_malicious(t *testing.T) {
	// Timeout is out of the way: the corpus names the limit each module
	// reaches by fuel, memory or stack, whatever the machine's speed.
	h := newHost(t, wasmhost.Limits{Fuel: 20_000_000, MemoryPages: 256, Timeout: time.Minute})
	ctx := context.Background()
	good, err := h.Compile(ctx, readFixture(t, "cart-merge-c.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	corpus := malicious(t)
	type test struct{ file, reason string }
	var tests []test
	for file, reason := range corpus.Failing {
		tests = append(tests, test{file, reason})
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, err := h.Compile(ctx, corpus.Module(t, tt.file))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			defer m.Close(ctx)
			for range 2 {
				_, _, err := m.Resolve(ctx, cartInput)
				var ce *wasmhost.CallError
				if !errors.As(err, &ce) || ce.Reason != tt.reason {
					t.Fatalf("Resolve() = %v, want reason %q", err, tt.reason)
				}
			}
			if st := m.Stats(); st.Calls != 2 || st.Failures[tt.reason] != 2 {
				t.Fatalf("Stats() = %+v, want 2 calls failing with %s", st, tt.reason)
			}
			out, _, err := good.Resolve(ctx, cartInput)
			if err != nil || out.Action != "merge" {
				t.Fatalf("good resolver after %s: %v, %+v", tt.file, err, out)
			}
		})
	}
}

// TestExamples is the ABI against every SDK: the same cases, the same
// answers, from the Go and the C builds of each example.
func TestExamples(t *testing.T) {
	cart := []resolvertest.Case{
		{Name: "seed: one side removes the phone, the other adds a book", Base: `{"id":"c1","owner":"ann","items":["phone"]}`,
			Existing: `{"id":"c1","owner":"ann","items":[]}`, Incoming: `{"id":"c1","owner":"ann","items":["phone","book"]}`,
			Want: resolvertest.Merged(`{"id":"c1","owner":"ann","items":["book"]}`)},
		{Name: "both add", Base: `{"id":"c1","items":["a"]}`, Existing: `{"id":"c1","items":["a","b"]}`, Incoming: `{"id":"c1","items":["a","c"]}`,
			Want: resolvertest.Merged(`{"id":"c1","items":["a","b","c"]}`)},
		{Name: "objects as elements", Base: `{"id":"c1","items":[{"sku":1}]}`, Existing: `{"id":"c1","items":[{"sku":1},{"sku":2}]}`,
			Incoming: `{"id":"c1","items":[]}`, Want: resolvertest.Merged(`{"id":"c1","items":[{"sku":2}]}`)},
		{Name: "insert conflict unions", Existing: `{"id":"c1","items":["a"]}`, Incoming: `{"id":"c1","items":["b"]}`,
			Want: resolvertest.Merged(`{"id":"c1","items":["a","b"]}`)},
		{Name: "incoming delete wins", Base: `{"id":"c1","items":[]}`, Existing: `{"id":"c1","items":["a"]}`, Incoming: "",
			Want: resolvertest.Action("incoming")},
		{Name: "existing delete wins", Base: `{"id":"c1","items":[]}`, Existing: "", Incoming: `{"id":"c1","items":["a"]}`,
			Want: resolvertest.Action("existing")},
	}
	counter := []resolvertest.Case{
		{Name: "both increment", Base: `{"id":"k","count":10}`, Existing: `{"id":"k","count":13}`, Incoming: `{"id":"k","count":11}`,
			Want: resolvertest.Merged(`{"id":"k","count":14}`)},
		{Name: "one decrements", Base: `{"id":"k","count":10,"label":"x"}`, Existing: `{"id":"k","count":7,"label":"x"}`,
			Incoming: `{"id":"k","count":12,"label":"x"}`, Want: resolvertest.Merged(`{"id":"k","count":9,"label":"x"}`)},
		{Name: "insert conflict adds", Existing: `{"id":"k","count":2}`, Incoming: `{"id":"k","count":3}`,
			Want: resolvertest.Merged(`{"id":"k","count":5}`)},
		{Name: "incoming delete wins", Base: `{"id":"k","count":1}`, Existing: `{"id":"k","count":2}`, Incoming: "",
			Want: resolvertest.Action("incoming")},
	}
	for _, file := range []string{"cart-merge.wasm", "cart-merge-c.wasm"} {
		t.Run(file, func(t *testing.T) { resolvertest.Load(t, filepath.Join(fixtures, file)).Run(t, cart) })
	}
	for _, file := range []string{"counter.wasm", "counter-c.wasm", "counter-as.wasm"} {
		t.Run(file, func(t *testing.T) { resolvertest.Load(t, filepath.Join(fixtures, file)).Run(t, counter) })
	}
	t.Run("prefer-incoming.wasm", func(t *testing.T) {
		resolvertest.Load(t, filepath.Join(fixtures, "prefer-incoming.wasm")).Run(t, []resolvertest.Case{
			{Name: "replace", Base: `{"id":"a"}`, Existing: `{"id":"a","v":1}`, Incoming: `{"id":"a","v":2}`, Want: resolvertest.Action("incoming")},
		})
	})
}

// TestHost_deterministic checks that the same input gives the same output
// and the same fuel on fresh instances.
func TestHost_deterministic(t *testing.T) {
	ctx := context.Background()
	for _, file := range []string{"cart-merge.wasm", "cart-merge-c.wasm"} {
		t.Run(file, func(t *testing.T) {
			var outs []string
			var fuels []int64
			for range 2 {
				h := newHost(t, wasmhost.Limits{})
				m, err := h.Compile(ctx, readFixture(t, file))
				if err != nil {
					t.Fatal(err)
				}
				_, res, err := m.Resolve(ctx, cartInput)
				if err != nil {
					t.Fatal(err)
				}
				outs, fuels = append(outs, string(res.Output)), append(fuels, res.FuelUsed)
			}
			if outs[0] != outs[1] || fuels[0] != fuels[1] {
				t.Fatalf("two runs differ: %q/%d vs %q/%d", outs[0], fuels[0], outs[1], fuels[1])
			}
			if fuels[0] <= 0 {
				t.Fatalf("FuelUsed = %d, want > 0", fuels[0])
			}
		})
	}
}

func TestHost_inputLimit(t *testing.T) {
	h := newHost(t, wasmhost.Limits{InputBytes: 1024})
	ctx := context.Background()
	m, err := h.Compile(ctx, readFixture(t, "prefer-incoming.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	in := cartInput
	in.Incoming = json.RawMessage(`{"id":"c1","pad":"` + strings.Repeat("x", 2000) + `"}`)
	_, _, err = m.Resolve(ctx, in)
	var ce *wasmhost.CallError
	if !errors.As(err, &ce) || ce.Reason != wasmhost.ReasonInput {
		t.Fatalf("Resolve() = %v, want reason input", err)
	}
	// Conflicting versions are trimmed to fit, not refused.
	in = cartInput
	for range 40 {
		in.Conflicting = append(in.Conflicting, json.RawMessage(`{"id":"c1","pad":"`+strings.Repeat("y", 100)+`"}`))
	}
	if _, _, err := m.Resolve(ctx, in); err != nil {
		t.Fatalf("Resolve() with many conflicting = %v, want them trimmed", err)
	}
}

// TestHost_memoryOutsideGoHeap checks that guest memory is a mapping, not Go
// heap (Linux): a module that grows its memory to the 64 MiB default limit
// allocates next to nothing on the Go heap, where wazero's own slices
// copied ~130 MiB and held the goroutine (and the collector) for a second.
func TestHost_memoryOutsideGoHeap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("guest memory is mapped on Linux only")
	}
	h := newHost(t, wasmhost.Limits{})
	ctx := context.Background()
	m, err := h.Compile(ctx, readFixture(t, "malicious/memory-bomb.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 3 {
		var ce *wasmhost.CallError
		if _, _, err := m.Resolve(ctx, cartInput); !errors.As(err, &ce) || ce.Reason != wasmhost.ReasonMemory {
			t.Fatalf("Resolve() = %v, want reason %s", err, wasmhost.ReasonMemory)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Fatalf("three memory bombs allocated %d MiB on the Go heap, want their memory outside it", grew>>20)
	}
}

// TestConflictCases runs every case in testdata/conflicts/<resolver>/
// (CASE.json, an input as resolvers/ABI.md has it, and CASE.want.json, the
// decision) on every build of that resolver, as `cloudhub resolver test
// --input CASE.json` would.
func TestConflictCases(t *testing.T) {
	builds := map[string][]string{
		"cart-merge": {"cart-merge.wasm", "cart-merge-c.wasm"},
		"counter":    {"counter.wasm", "counter-c.wasm", "counter-as.wasm"},
	}
	dirs, err := filepath.Glob("../testdata/conflicts/*")
	if err != nil || len(dirs) != len(builds) {
		t.Fatalf("case directories %v, %v; want one per resolver in %v", dirs, err, builds)
	}
	ctx := context.Background()
	h := newHost(t, wasmhost.Limits{})
	for _, dir := range dirs {
		resolver := filepath.Base(dir)
		cases, _ := filepath.Glob(filepath.Join(dir, "*.want.json"))
		if len(builds[resolver]) == 0 || len(cases) < 3 {
			t.Fatalf("%s: %d cases for builds %v; want at least 3 for a known resolver", dir, len(cases), builds[resolver])
		}
		for _, file := range builds[resolver] {
			m, err := h.Compile(ctx, readFixture(t, file))
			if err != nil {
				t.Fatal(err)
			}
			for _, wantFile := range cases {
				name := strings.TrimSuffix(filepath.Base(wantFile), ".want.json")
				t.Run(file+"/"+name, func(t *testing.T) {
					input, err := os.ReadFile(filepath.Join(dir, name+".json"))
					if err != nil {
						t.Fatal(err)
					}
					want, err := os.ReadFile(wantFile)
					if err != nil {
						t.Fatal(err)
					}
					res, err := m.Call(ctx, input)
					if err != nil {
						t.Fatalf("call: %v", err)
					}
					// The reason is free text; the action and the document decide.
					var got, exp struct {
						Action   string
						Document json.RawMessage
					}
					if err := json.Unmarshal(res.Output, &got); err != nil {
						t.Fatalf("output %s: %v", res.Output, err)
					}
					if err := json.Unmarshal(want, &exp); err != nil {
						t.Fatalf("%s: %v", wantFile, err)
					}
					if got.Action != exp.Action || !jsonEqual(t, got.Document, exp.Document) {
						t.Fatalf("decision %s, want %s", res.Output, want)
					}
				})
			}
		}
	}
}

// jsonEqual reports whether a and b hold the same JSON value (both empty
// counts as equal).
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// vmRSS is the process's resident set size in bytes (Linux), or 0.
func vmRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	return 0
}

// TestHost_stackOverflow calls modules whose recursion overflows the call
// stack, with large frames and with small ones, again and again: each call
// fails quickly with reason stack, and the process's memory grows by less
// than 100 MiB over all of them (wazero grew its stack to about 100 MiB and
// left it to the collector: 34 to 636 MiB over six calls).
func TestHost_stackOverflow(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	h := newHost(t, wasmhost.Limits{})
	ctx := context.Background()
	var modules []*wasmhost.Module
	for _, file := range []string{"stack-overflow.wasm", "deep-recursion.wasm"} {
		m, err := h.Compile(ctx, readFixture(t, "malicious/"+file))
		if err != nil {
			t.Fatal(err)
		}
		modules = append(modules, m)
	}
	before := vmRSS(t)
	for i := range 8 {
		for j, m := range modules {
			start := time.Now()
			_, res, err := m.Resolve(ctx, cartInput)
			var ce *wasmhost.CallError
			if !errors.As(err, &ce) || ce.Reason != wasmhost.ReasonStack {
				t.Fatalf("module %d, call %d: Resolve() = %v, want reason %s", j, i, err, wasmhost.ReasonStack)
			}
			if took := time.Since(start); took > time.Second {
				t.Fatalf("module %d, call %d took %v (fuel %d), want a quick failure", j, i, took, res.FuelUsed)
			}
		}
	}
	if grew := vmRSS(t) - before; grew >= 100<<20 {
		t.Fatalf("sixteen stack overflows grew VmRSS by %d MiB, want under 100", grew>>20)
	}
}

// TestHost_timeout: a call that has fuel left but runs past the wall-clock
// bound is stopped with reason timeout, having used the fuel it used.
func TestHost_timeout(t *testing.T) {
	h := newHost(t, wasmhost.Limits{Fuel: 1 << 60, Timeout: 200 * time.Millisecond})
	ctx := context.Background()
	m, err := h.Compile(ctx, readFixture(t, "malicious/infinite-loop.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, res, err := m.Resolve(ctx, cartInput)
	var ce *wasmhost.CallError
	if !errors.As(err, &ce) || ce.Reason != wasmhost.ReasonTimeout {
		t.Fatalf("Resolve() = %v, want reason %s", err, wasmhost.ReasonTimeout)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the call ended after %v, want about 200ms", took)
	}
	if res.FuelUsed <= 0 {
		t.Fatalf("FuelUsed = %d, want the fuel the loop burnt", res.FuelUsed)
	}
}

// TestHost_Close_stopsCalls closes a Host while a call runs with fuel and
// time to spare: the call ends at once with reason canceled, and Close
// returns.
func TestHost_Close_stopsCalls(t *testing.T) {
	ctx := context.Background()
	h, err := wasmhost.New(ctx, wasmhost.Config{Limits: wasmhost.Limits{Fuel: 1 << 60, Timeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := h.Compile(ctx, readFixture(t, "malicious/infinite-loop.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := m.Resolve(ctx, cartInput)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the call ended before Close: %v", err)
	default:
	}
	start := time.Now()
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := h.Close(closeCtx); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	select {
	case err := <-done:
		var ce *wasmhost.CallError
		if !errors.As(err, &ce) || ce.Reason != wasmhost.ReasonCanceled {
			t.Fatalf("Resolve() = %v, want reason %s", err, wasmhost.ReasonCanceled)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the call still runs 2s after Close")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Close took %v", took)
	}
	if _, _, err := m.Resolve(ctx, cartInput); !errors.Is(err, wasmhost.ErrClosed) {
		t.Fatalf("Resolve() after Close = %v, want ErrClosed", err)
	}
}

// TestHost_fuelUsedOnFailure: a call out of fuel reports that it used all
// of it.
func TestHost_fuelUsedOnFailure(t *testing.T) {
	h := newHost(t, wasmhost.Limits{Fuel: 5_000_000})
	ctx := context.Background()
	for _, file := range []string{"infinite-loop.wasm", "random-get.wasm"} {
		m, err := h.Compile(ctx, readFixture(t, "malicious/"+file))
		if err != nil {
			t.Fatal(err)
		}
		_, res, err := m.Resolve(ctx, cartInput)
		var ce *wasmhost.CallError
		if !errors.As(err, &ce) || ce.Reason != wasmhost.ReasonFuel || res.FuelUsed != 5_000_000 {
			t.Fatalf("%s: Resolve() = %v, FuelUsed %d; want reason fuel, 5000000 used", file, err, res.FuelUsed)
		}
	}
}
