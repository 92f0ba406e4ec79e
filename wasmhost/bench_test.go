package wasmhost_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/wasmhost"
)

// kib pads a document to about 1 KiB with a "note" field.
func kib(doc string) json.RawMessage {
	pad := 1024 - len(doc) - len(`,"note":""`)
	return json.RawMessage(strings.TrimSuffix(doc, "}") + `,"note":"` + strings.Repeat("n", max(pad, 0)) + `"}`)
}

// benchInputs are 1 KiB conflicts for each example.
var benchInputs = map[string]replica.ResolverInput{
	"cart": {Kind: "replace", Container: "carts", ID: "c1",
		Base:        kib(`{"id":"c1","owner":"ann","items":["phone","pen","cable","case"]}`),
		Existing:    kib(`{"id":"c1","owner":"ann","items":["pen","cable","case"]}`),
		Incoming:    kib(`{"id":"c1","owner":"ann","items":["phone","pen","cable","case","book"]}`),
		Conflicting: []json.RawMessage{}},
	"counter": {Kind: "replace", Container: "counters", ID: "k",
		Base:        kib(`{"id":"k","count":10}`),
		Existing:    kib(`{"id":"k","count":13}`),
		Incoming:    kib(`{"id":"k","count":11}`),
		Conflicting: []json.RawMessage{}},
}

// BenchmarkResolve measures resolutions per second on one core for each
// example resolver with the default limits on, against a no-op module
// called the same way in the same run (the "x noop" metric).
func BenchmarkResolve(b *testing.B) {
	cases := []struct{ name, file, input string }{
		{"noop", "noop.wasm", "cart"},
		{"prefer-incoming-wat", "prefer-incoming.wasm", "cart"},
		{"cart-merge-c", "cart-merge-c.wasm", "cart"},
		{"counter-c", "counter-c.wasm", "counter"},
		{"counter-as", "counter-as.wasm", "counter"},
		{"cart-merge-go", "cart-merge.wasm", "cart"},
		{"counter-go", "counter.wasm", "counter"},
	}
	ctx := context.Background()
	h := newHost(b, wasmhost.Limits{})
	var noop time.Duration
	for _, c := range cases {
		wasm, err := os.ReadFile(filepath.Join(fixtures, c.file))
		if err != nil {
			b.Fatalf("%v (rebuild with resolvers/build.sh)", err)
		}
		m, err := h.Compile(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		in := benchInputs[c.input]
		b.Run(c.name, func(b *testing.B) {
			var fuel int64
			b.ReportAllocs()
			for b.Loop() {
				_, res, err := m.Resolve(ctx, in)
				if err != nil {
					b.Fatal(err)
				}
				fuel = res.FuelUsed
			}
			per := b.Elapsed() / time.Duration(b.N)
			if c.name == "noop" {
				noop = per
			}
			b.ReportMetric(float64(time.Second)/float64(per), "resolutions/s")
			b.ReportMetric(float64(fuel), "fuel/op")
			if noop > 0 {
				b.ReportMetric(float64(per)/float64(noop), "x_noop")
			}
		})
	}
}

// BenchmarkMetering measures what fuel metering costs on the example
// resolvers: the same module and input on a metered and an unmetered host,
// called alternately in the same loop so that the machine's drift hits both
// alike; "x_unmetered" is the ratio of their total times.
func BenchmarkMetering(b *testing.B) {
	ctx := context.Background()
	plainHost, err := wasmhost.NewUnmetered(ctx, wasmhost.Config{Limits: benchLimits})
	if err != nil {
		b.Fatal(err)
	}
	defer plainHost.Close(ctx)
	meteredHost := newHost(b, wasmhost.Limits{})
	for _, c := range []struct{ name, file, input string }{
		{"cart-merge-c", "cart-merge-c.wasm", "cart"},
		{"counter-c", "counter-c.wasm", "counter"},
		{"counter-as", "counter-as.wasm", "counter"},
		{"cart-merge-go", "cart-merge.wasm", "cart"},
		{"counter-go", "counter.wasm", "counter"},
	} {
		wasm, err := os.ReadFile(filepath.Join(fixtures, c.file))
		if err != nil {
			b.Fatalf("%v (rebuild with resolvers/build.sh)", err)
		}
		plain, err := plainHost.Compile(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		metered, err := meteredHost.Compile(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		in := benchInputs[c.input]
		b.Run(c.name, func(b *testing.B) {
			var tp, tm time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, _, err := plain.Resolve(ctx, in); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, _, err := metered.Resolve(ctx, in); err != nil {
					b.Fatal(err)
				}
				tp, tm = tp+t1.Sub(t0), tm+time.Since(t1)
			}
			b.ReportMetric(float64(tm)/float64(tp), "x_unmetered")
			b.ReportMetric(float64(tm.Nanoseconds())/float64(b.N), "metered_ns/op")
			b.ReportMetric(float64(tp.Nanoseconds())/float64(b.N), "unmetered_ns/op")
		})
	}
}

// BenchmarkCompile measures validating, instrumenting and compiling the Go
// cart-merge resolver (3.4 MB), cold and with the compilation cache warm.
func BenchmarkCompile(b *testing.B) {
	wasm := readFixture(b, "cart-merge.wasm")
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			h, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: b.TempDir(), Limits: benchLimits})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := h.Compile(ctx, wasm); err != nil {
				b.Fatal(err)
			}
			h.Close(ctx)
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		warm, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: dir, Limits: benchLimits})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := warm.Compile(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		warm.Close(ctx)
		for b.Loop() {
			h, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: dir, Limits: benchLimits})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := h.Compile(ctx, wasm); err != nil {
				b.Fatal(err)
			}
			h.Close(ctx)
		}
	})
}

// ExampleModule_Resolve shows a resolver call from Go.
func ExampleModule_Resolve() {
	ctx := context.Background()
	h, _ := wasmhost.New(ctx, wasmhost.Config{Limits: benchLimits})
	defer h.Close(ctx)
	m, err := h.Compile(ctx, mustRead("../testdata/resolvers/prefer-incoming.wasm"))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _, err := m.Resolve(ctx, benchInputs["counter"])
	fmt.Println(out.Action, err)
	// Output: incoming <nil>
}

// benchLimits are the default limits but for the compile timeout: the Go
// examples take seconds to compile on a busy machine.
var benchLimits = wasmhost.Limits{CompileTimeout: time.Hour}
