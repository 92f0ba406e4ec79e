package meter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/edgesync/edgesync/wasmhost/meter"
	"github.com/edgesync/edgesync/wasmhost/resolvertest"
)

// wat compiles testdata/<name>/module.wat with wat2wasm (wabt).
func wat(tb testing.TB, name string) []byte {
	tb.Helper()
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		tb.Skip("wat2wasm (wabt) is not installed: apt-get install wabt")
	}
	out := filepath.Join(tb.TempDir(), name+".wasm")
	cmd := exec.Command(wat2wasm, filepath.Join("testdata", name, "module.wat"), "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("wat2wasm %s: %v\n%s", name, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustInstrument(tb testing.TB, wasm []byte) []byte {
	tb.Helper()
	out, err := meter.Instrument(wasm)
	if err != nil {
		tb.Fatalf("Instrument: %v", err)
	}
	return out
}

// checkCharges checks an instrumented module with wabt, a decoder independent
// of this package: wasm-validate must accept it, and in wasm2wat's text every
// function and every loop must start with the charge, and the fuel global
// must be written nowhere else.
func checkCharges(tb testing.TB, wasm []byte) {
	tb.Helper()
	wasm2wat, err := exec.LookPath("wasm2wat")
	if err != nil {
		tb.Log("wasm2wat (wabt) is not installed: charges not checked")
		return
	}
	path := filepath.Join(tb.TempDir(), "metered.wasm")
	if err := os.WriteFile(path, wasm, 0o644); err != nil {
		tb.Fatal(err)
	}
	if validate, err := exec.LookPath("wasm-validate"); err == nil {
		if msg, err := exec.Command(validate, path).CombinedOutput(); err != nil {
			tb.Fatalf("wasm-validate: %v\n%s", err, msg)
		}
	}
	text, err := exec.Command(wasm2wat, path).Output()
	if err != nil {
		tb.Fatalf("wasm2wat: %v", err)
	}
	lines := strings.Split(string(text), "\n")
	var fuel string
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), `(export "`+meter.GlobalName+`" (global `); ok {
			fuel = strings.TrimSuffix(rest, "))")
		}
	}
	if fuel == "" {
		tb.Fatalf("wasm2wat shows no export %q of a global", meter.GlobalName)
	}
	charge := []string{
		"global.get " + fuel, "i64.const ", "i64.sub", "global.set " + fuel,
		"global.get " + fuel, "i64.const 0", "i64.ge_s", "if", "else",
	}
	isCharge := func(i int) bool {
		for j, want := range charge {
			if i+j >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[i+j]), want) {
				return false
			}
		}
		cost := strings.TrimPrefix(strings.TrimSpace(lines[i+1]), "i64.const ")
		return cost != "0" && !strings.HasPrefix(cost, "-")
	}
	var funcs, loops, sets, charges, bulks int
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case strings.HasPrefix(l, "(func "):
			funcs++
			j := i + 1
			for j < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[j]), "(local ") {
				j++
			}
			if !isCharge(j) {
				tb.Errorf("line %d: function does not start with the charge: %s", i+1, l)
			}
		case strings.HasPrefix(l, "loop"):
			loops++
			if !isCharge(i + 1) {
				tb.Errorf("line %d: loop does not start with the charge", i+1)
			}
		case l == "global.set "+fuel || l == "global.set "+fuel+")":
			sets++
		}
		if isCharge(i) {
			charges++
		}
		if i+2 < len(lines) && strings.HasPrefix(l, "global.set ") && strings.TrimSpace(lines[i+1]) == "global.get "+fuel &&
			strings.HasPrefix(strings.TrimSpace(lines[i+2]), "global.get ") && strings.TrimSpace(lines[i+2]) == "global.get "+strings.TrimPrefix(l, "global.set ") {
			bulks++ // global.set $scratch; global.get $fuel; global.get $scratch
		}
	}
	// Join points charge too; every write of the fuel global is a charge
	// or its refill, or a charge of a bulk instruction or its refill.
	if sets != 2*(charges+bulks) || charges < funcs+loops {
		tb.Errorf("fuel global set %d times in %d charges and %d bulk charges, want two per charge and at least %d (functions) + %d (loops)", sets, charges, bulks, funcs, loops)
	}
	if funcs == 0 {
		tb.Errorf("wasm2wat shows no function")
	}
}

// newRuntime returns a wazero runtime with the compiler engine, closed with the test.
func newRuntime(tb testing.TB) wazero.Runtime {
	tb.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	tb.Cleanup(func() { r.Close(ctx) })
	return r
}

// instantiate instantiates wasm in a new compiler runtime, without running a
// start function.
func instantiate(tb testing.TB, wasm []byte) api.Module {
	tb.Helper()
	ctx := context.Background()
	r := newRuntime(tb)
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		tb.Fatalf("instantiate: %v", err)
	}
	return mod
}

func fuelGlobal(tb testing.TB, mod api.Module) api.MutableGlobal {
	tb.Helper()
	g, ok := mod.ExportedGlobal(meter.GlobalName).(api.MutableGlobal)
	if !ok {
		tb.Fatalf("no mutable global exported as %q", meter.GlobalName)
	}
	return g
}

// call calls the export name with fuel and returns its results and the fuel left.
func call(tb testing.TB, mod api.Module, fuel int64, name string, args ...uint64) ([]uint64, int64, error) {
	tb.Helper()
	g := fuelGlobal(tb, mod)
	g.Set(uint64(fuel))
	fn := mod.ExportedFunction(name)
	if fn == nil {
		tb.Fatalf("no export %q", name)
	}
	res, err := fn.Call(context.Background(), args...)
	return res, int64(g.Get()), err
}

func TestInstrument_InfiniteLoop(t *testing.T) {
	// Without metering, spin never returns: a context deadline, which wazero
	// checks when the runtime closes on context done, fails the test instead
	// of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true))
	defer r.Close(ctx)
	mod, err := r.InstantiateWithConfig(ctx, mustInstrument(t, wat(t, "spin")), wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	fuel := fuelGlobal(t, mod)
	fuel.Set(1_000_000)
	_, err = mod.ExportedFunction("spin").Call(ctx)
	if err == nil {
		t.Fatal("spin returned, want a trap")
	}
	if !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("err=%v, want an unreachable trap", err)
	}
	if left := int64(fuel.Get()); left >= 0 {
		t.Errorf("fuel after trap=%d, want negative", left)
	}
}

func TestInstrument_Recursion(t *testing.T) {
	mod := instantiate(t, mustInstrument(t, wat(t, "recurse")))
	_, left, err := call(t, mod, 10_000, "down", 0)
	if err == nil {
		t.Fatal("down returned, want a trap")
	}
	if !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("err=%v, want an unreachable trap (not a stack overflow)", err)
	}
	if left >= 0 {
		t.Errorf("fuel after trap=%d, want negative", left)
	}
	// Each call costs 4 (local.get i64.const i64.add call): the call that
	// overdraws 10,000 fuel is call 2,501.
	if got, want := left, int64(10_000-2_501*4); got != want {
		t.Errorf("fuel after trap=%d, want %d", got, want)
	}
}

// TestInstrument_Depth: with fuel to spare, a runaway recursion traps when
// the weight of the nested calls passes MaxDepth, the depth global then over
// it; a call that returns takes its weight back.
func TestInstrument_Depth(t *testing.T) {
	mod := instantiate(t, mustInstrument(t, wat(t, "recurse")))
	depth, ok := mod.ExportedGlobal(meter.DepthGlobalName).(api.MutableGlobal)
	if !ok {
		t.Fatalf("no mutable global exported as %q", meter.DepthGlobalName)
	}
	_, left, err := call(t, mod, 1<<40, "down", 0)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err=%v, want an unreachable trap (not a stack overflow)", err)
	}
	if left < 0 {
		t.Fatalf("fuel after trap=%d, want some left", left)
	}
	// $down has one parameter and no locals: each call weighs FrameBase+1.
	weight := int32(meter.FrameBase + 1)
	if got, want := api.DecodeI32(depth.Get()), (meter.MaxDepth/weight+1)*weight; got != want {
		t.Fatalf("depth after trap=%d, want %d", got, want)
	}

	mod = instantiate(t, mustInstrument(t, wat(t, "compute")))
	depth = mod.ExportedGlobal(meter.DepthGlobalName).(api.MutableGlobal)
	depth.Set(0)
	if res, _, err := call(t, mod, 1<<40, "fib", 15); err != nil || res[0] != 610 {
		t.Fatalf("fib(15)=%v, %v; want 610", res, err)
	}
	if got := api.DecodeI32(depth.Get()); got != 0 {
		t.Fatalf("depth after a call returned=%d, want 0", got)
	}
}

func TestInstrument_Cost(t *testing.T) {
	// Hand-checked costs of small functions; see testdata/cost/module.wat.
	mod := instantiate(t, mustInstrument(t, wat(t, "cost")))
	tests := []struct {
		name string
		fn   string
		arg  uint64
		want int64
	}{
		{name: "empty function costs 1", fn: "empty", want: 1},
		{name: "straight line", fn: "straight", want: 4},
		{name: "counted loop", fn: "count", arg: 10, want: 1 + 10*5},
		// shape: entry 2 (block, loop); outer loop header 6 (local.get,
		// i32.eqz, br_if, i32.const, if, the then arm's nop); the else arm
		// (2) and the code after the if (6: the inner loop opcode, then
		// local.get, i32.const, i32.sub, local.set, br) are join points
		// under foldBelow, charged at the header where the if opened: 14;
		// the inner loop 2. The last pass pays only the header.
		{name: "nested block if loop", fn: "shape", arg: 3, want: 2 + 3*(14+2) + 14},
		{name: "nested block if loop, no iteration", fn: "shape", arg: 0, want: 2 + 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const budget = 1_000_000
			var args []uint64
			if tt.fn == "count" || tt.fn == "shape" {
				args = []uint64{tt.arg}
			}
			_, left, err := call(t, mod, budget, tt.fn, args...)
			if err != nil {
				t.Fatal(err)
			}
			if got := budget - left; got != tt.want {
				t.Errorf("%s(%d) used %d fuel, want %d", tt.fn, tt.arg, got, tt.want)
			}
		})
	}
}

// computeCalls are the calls compared before and after instrumenting.
var computeCalls = []struct {
	fn   string
	args []uint64
}{
	{"nested", []uint64{0}},
	{"nested", []uint64{1}},
	{"nested", []uint64{13}},
	{"multi", []uint64{1, 2}},
	{"multi", []uint64{50, 7}},
	{"multi", []uint64{200, 9}},
	{"find", []uint64{0}},
	{"find", []uint64{1000}},
	{"find", []uint64{123456}},
	{"simd", []uint64{3}},
	{"simd", []uint64{0xfffffff0}},
	{"bulk", []uint64{7}},
	{"bulk", []uint64{200}},
	{"fib", []uint64{15}},
}

func TestInstrument_Semantics(t *testing.T) {
	plain := wat(t, "compute")
	metered := mustInstrument(t, plain)
	checkCharges(t, metered)
	pmod := instantiate(t, plain)
	mmod := instantiate(t, metered)
	mmod2 := instantiate(t, metered)

	for _, c := range computeCalls {
		name := fmt.Sprintf("%s%v", c.fn, c.args)
		t.Run(name, func(t *testing.T) {
			want, err := pmod.ExportedFunction(c.fn).Call(context.Background(), c.args...)
			if err != nil {
				t.Fatalf("plain: %v", err)
			}
			const budget = 1 << 40
			got, left, err := call(t, mmod, budget, c.fn, c.args...)
			if err != nil {
				t.Fatalf("metered: %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("metered %s=%v, want %v", name, got, want)
			}
			if left >= budget || left < 0 {
				t.Errorf("fuel left=%d of %d, want some spent", left, budget)
			}
			// A second instance, same call: same fuel.
			_, left2, err := call(t, mmod2, budget, c.fn, c.args...)
			if err != nil {
				t.Fatalf("metered again: %v", err)
			}
			if left2 != left {
				t.Errorf("fuel left=%d on a second run, want %d", left2, left)
			}
		})
	}

	// Fuel grows with the loop count.
	var last int64
	for _, n := range []uint64{0, 1, 2, 5, 20} {
		_, left, err := call(t, mmod, 1<<40, "nested", n)
		if err != nil {
			t.Fatal(err)
		}
		used := 1<<40 - left
		if used <= last {
			t.Errorf("nested(%d) used %d fuel, want more than %d", n, used, last)
		}
		last = used
	}

	// With too little fuel, the same calls trap and leave the global negative.
	_, left, err := call(t, mmod, 100, "nested", 13)
	if err == nil || left >= 0 {
		t.Errorf("nested(13) with 100 fuel: err=%v, fuel=%d, want a trap and negative fuel", err, left)
	}
}

// TestInstrument_GoReactor meters a real Go program built as a WASI reactor.
func TestInstrument_GoReactor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not installed")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module reactor\n\ngo 1.24\n")
	writeFile(t, filepath.Join(dir, "main.go"), goReactor)
	out := filepath.Join(dir, "reactor.wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	metered := mustInstrument(t, wasm)
	checkCharges(t, metered)
	testReactor(t, metered, "words", 1000, wordsWant(1000), "spin")
}

const goReactor = `package main

import (
	"strconv"
	"strings"
)

//go:wasmexport words
func words(n int32) int32 {
	m := map[string]int{}
	var b strings.Builder
	for i := 0; i < int(n); i++ {
		k := strconv.Itoa(i % 97)
		m[k]++
		b.WriteString(k)
	}
	return int32(len(m)*100000 + b.Len())
}

//go:wasmexport spin
func spin() int32 {
	for x := int32(1); ; x++ {
		if x == 0 {
			return x
		}
	}
}

func main() {}
`

// wordsWant is what the reactors' words(n) returns.
func wordsWant(n int) uint64 {
	m := map[string]int{}
	var b strings.Builder
	for i := range n {
		k := fmt.Sprint(i % 97)
		m[k]++
		b.WriteString(k)
	}
	return uint64(uint32(int32(len(m)*100000 + b.Len())))
}

// TestInstrument_CReactor meters a C program (wasi-libc malloc, strings)
// built as a WASI reactor.
func TestInstrument_CReactor(t *testing.T) {
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Skip("clang is not installed")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "reactor.c"), cReactor)
	out := filepath.Join(dir, "reactor.wasm")
	cmd := exec.Command(clang, "--target=wasm32-wasi", "-O2", "-g", "-mexec-model=reactor", "-o", out, filepath.Join(dir, "reactor.c"))
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("clang cannot build for wasm32-wasi here: %s: %v\n%s", missingWasmToolchain(string(msg)), err, msg)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	metered := mustInstrument(t, wasm)
	checkCharges(t, metered)
	testReactor(t, metered, "words", 1000, wordsWant(1000), "spin")
}

// missingWasmToolchain names what clang's output says is missing to build
// a wasm32-wasi reactor, with the Debian package that has it.
func missingWasmToolchain(msg string) string {
	switch {
	case strings.Contains(msg, "libclang_rt.builtins-wasm32.a"):
		return "compiler-rt's wasm32 builtins (libclang_rt.builtins-wasm32.a) are missing: apt-get install libclang-rt-14-dev-wasm32"
	case strings.Contains(msg, "wasm-ld"):
		return "the wasm linker is missing: apt-get install lld"
	case strings.Contains(msg, ".h' file not found"), strings.Contains(msg, "crt1"), strings.Contains(msg, "-lc"):
		return "wasi-libc is missing: apt-get install wasi-libc"
	}
	return "needs wasi-libc, wasm-ld and compiler-rt's wasm32 builtins"
}

const cReactor = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((export_name("words")))
int words(int n) {
	int seen[97] = {0}, distinct = 0;
	size_t cap = 16, len = 0;
	char *b = malloc(cap);
	for (int i = 0; i < n; i++) {
		char k[16];
		int kn = snprintf(k, sizeof k, "%d", i % 97);
		if (!seen[i % 97]++) distinct++;
		while (len + kn + 1 > cap) b = realloc(b, cap *= 2);
		memcpy(b + len, k, kn);
		len += kn;
		b[len] = 0;
	}
	int r = distinct * 100000 + (int)strlen(b);
	free(b);
	return r;
}

__attribute__((export_name("spin")))
int spin(void) {
	volatile int x = 1;
	while (x) x++;
	return x;
}
`

// testReactor instantiates an instrumented WASI reactor, runs _initialize
// and fn(arg) with plenty of fuel and checks the result, then runs spin with
// a little fuel and checks it runs out.
func testReactor(t *testing.T, wasm []byte, fn string, arg, want uint64, spin string) {
	t.Helper()
	ctx := context.Background()
	r := newRuntime(t)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	fuel := fuelGlobal(t, mod)
	fuel.Set(uint64(10_000_000_000))
	if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
		t.Fatalf("_initialize: %v", err)
	}
	t.Logf("_initialize used %d fuel", 10_000_000_000-int64(fuel.Get()))

	got, left, err := call(t, mod, 10_000_000_000, fn, arg)
	if err != nil {
		t.Fatalf("%s(%d): %v", fn, arg, err)
	}
	if got[0] != want {
		t.Errorf("%s(%d)=%d, want %d", fn, arg, got[0], want)
	}
	t.Logf("%s(%d) used %d fuel", fn, arg, 10_000_000_000-left)

	_, left, err = call(t, mod, 5_000_000, spin)
	if err == nil || left >= 0 {
		t.Fatalf("%s with 5,000,000 fuel: err=%v, fuel=%d, want a trap and negative fuel", spin, err, left)
	}
	t.Logf("%s with 5,000,000 fuel: %v", spin, err)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Hand assembly of small modules.

func leb(v uint32) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// sec assembles a section.
func sec(id byte, contents ...byte) []byte {
	return cat([]byte{id}, leb(uint32(len(contents))), contents)
}

// vec assembles a vector of n already-encoded elements.
func vec(n int, elems ...byte) []byte { return cat(leb(uint32(n)), elems) }

// name assembles a name.
func name(s string) []byte { return cat(leb(uint32(len(s))), []byte(s)) }

func wasmModule(sections ...[]byte) []byte {
	return cat([]byte("\x00asm\x01\x00\x00\x00"), cat(sections...))
}

// funcModule is a module of one function of type () -> () with the given body
// (after the locals), exported as "f".
func funcModule(body ...byte) []byte {
	code := cat([]byte{0x00}, body) // no locals
	return wasmModule(
		sec(1, vec(1, 0x60, 0x00, 0x00)...),
		sec(3, vec(1, 0x00)...),
		sec(7, cat(vec(1), name("f"), []byte{0x00, 0x00})...),
		sec(10, cat(vec(1), leb(uint32(len(code))), code)...),
	)
}

// sectionIDs lists the ids of the sections of a module.
func sectionIDs(tb testing.TB, wasm []byte) []byte {
	tb.Helper()
	var ids []byte
	for p := 8; p < len(wasm); {
		id := wasm[p]
		p++
		var size, shift uint32
		for {
			c := wasm[p]
			p++
			size |= uint32(c&0x7f) << shift
			shift += 7
			if c&0x80 == 0 {
				break
			}
		}
		ids = append(ids, id)
		p += int(size)
	}
	return ids
}

func TestInstrument_Sections(t *testing.T) {
	ctx := context.Background()
	t.Run("adds global and export sections", func(t *testing.T) {
		in := wasmModule(
			sec(1, vec(1, 0x60, 0x00, 0x00)...),
			sec(3, vec(1, 0x00)...),
			sec(10, cat(vec(1), []byte{0x02, 0x00, 0x0b})...),
		)
		out := mustInstrument(t, in)
		if got, want := sectionIDs(t, out), []byte{1, 3, 6, 7, 10}; !bytes.Equal(got, want) {
			t.Errorf("sections=%v, want %v", got, want)
		}
		mod := instantiate(t, out)
		if got := fuelGlobal(t, mod).Get(); got != meter.StartFuel {
			t.Errorf("fuel=%d at instantiation, want StartFuel %d", got, meter.StartFuel)
		}
	})
	t.Run("imports, data count and custom sections", func(t *testing.T) {
		// (import "env" "g" (global i32)) (global i32 (i32.const 2))
		// (func (export "run") (result i32) (i32.add (global.get 0) (global.get 1)))
		// plus a memory, a passive data segment with its data count, and custom sections.
		body := []byte{0x00, 0x23, 0x00, 0x23, 0x01, 0x6a, 0x0b}
		in := wasmModule(
			sec(0, cat(name("first"), []byte("xyz"))...),
			sec(1, vec(1, 0x60, 0x00, 0x01, 0x7f)...),
			sec(2, cat(vec(1), name("env"), name("g"), []byte{0x03, 0x7f, 0x00})...),
			sec(3, vec(1, 0x00)...),
			sec(5, vec(1, 0x00, 0x01)...),
			sec(6, vec(1, 0x7f, 0x00, 0x41, 0x02, 0x0b)...),
			sec(0, cat(name("middle"))...),
			sec(7, cat(vec(1), name("run"), []byte{0x00, 0x00})...),
			sec(12, leb(1)...),
			sec(10, cat(vec(1), leb(uint32(len(body))), body)...),
			sec(11, cat(vec(1), []byte{0x01}, name("hi"))...),
			sec(0, cat(name("last"), []byte{1, 2, 3})...),
		)
		out := mustInstrument(t, in)
		if got, want := sectionIDs(t, out), []byte{0, 1, 2, 3, 5, 6, 0, 7, 12, 10, 11, 0}; !bytes.Equal(got, want) {
			t.Errorf("sections=%v, want %v", got, want)
		}
		// Custom sections are copied as they are.
		for _, s := range [][]byte{sec(0, cat(name("first"), []byte("xyz"))...), sec(0, cat(name("last"), []byte{1, 2, 3})...)} {
			if !bytes.Contains(out, s) {
				t.Errorf("custom section % x not copied", s)
			}
		}
		r := newRuntime(t)
		env := wasmModule(
			sec(6, vec(1, 0x7f, 0x00, 0x41, 0x28, 0x0b)...),
			sec(7, cat(vec(1), name("g"), []byte{0x03, 0x00})...),
		)
		if _, err := r.InstantiateWithConfig(ctx, env, wazero.NewModuleConfig().WithName("env")); err != nil {
			t.Fatal(err)
		}
		mod, err := r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithStartFunctions())
		if err != nil {
			t.Fatalf("instantiate: %v", err)
		}
		got, left, err := call(t, mod, 10, "run")
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != 42 || left != 10-3 {
			t.Errorf("run()=%d with %d fuel left, want 42 with 7 left", got[0], left)
		}
	})
	t.Run("instrumenting twice is refused", func(t *testing.T) {
		_, err := meter.Instrument(mustInstrument(t, funcModule(0x0b)))
		if !errors.Is(err, meter.ErrReservedName) {
			t.Errorf("err=%v, want ErrReservedName", err)
		}
	})
}

func TestInstrument_Errors(t *testing.T) {
	valid := funcModule(0x01, 0x0b) // nop end
	tests := []struct {
		name string
		wasm []byte
		kind error
		msg  string // a part of the message
	}{
		{name: "empty", wasm: nil, kind: meter.ErrMalformed, msg: "module: not a WebAssembly binary"},
		{name: "garbage", wasm: []byte("#!/bin/sh\necho not wasm\n"), kind: meter.ErrMalformed, msg: "magic"},
		{name: "other version", wasm: []byte("\x00asm\x0d\x00\x01\x00"), kind: meter.ErrUnsupported, msg: "version"},
		{name: "truncated", wasm: valid[:len(valid)-3], kind: meter.ErrMalformed, msg: "overruns the module"},
		{name: "truncated section header", wasm: append(wasmModule(), 0x01), kind: meter.ErrMalformed, msg: "unexpected end of section size"},
		{name: "unknown section", wasm: wasmModule(sec(14)), kind: meter.ErrMalformed, msg: "unknown section id 14"},
		{name: "sections out of order", wasm: wasmModule(sec(3, 0x00), sec(1, 0x00)), kind: meter.ErrMalformed, msg: "type section out of order"},
		{name: "tag section", wasm: wasmModule(sec(13, 0x00)), kind: meter.ErrUnsupported, msg: "exception handling"},
		{
			name: "export named edgesync_fuel",
			wasm: wasmModule(
				sec(1, vec(1, 0x60, 0x00, 0x00)...),
				sec(3, vec(1, 0x00)...),
				sec(7, cat(vec(1), name("edgesync_fuel"), []byte{0x00, 0x00})...),
				sec(10, cat(vec(1), []byte{0x02, 0x00, 0x0b})...),
			),
			kind: meter.ErrReservedName, msg: `export section: export "edgesync_fuel"`,
		},
		{
			name: "export starting with edgesync_fuel",
			wasm: wasmModule(sec(7, cat(vec(1), name("edgesync_fuel_left"), []byte{0x02, 0x00})...)),
			kind: meter.ErrReservedName, msg: "edgesync_fuel_left",
		},
		{name: "atomic opcode", wasm: funcModule(0xfe, 0x03, 0x00, 0x0b), kind: meter.ErrUnsupported, msg: "function 0: atomic opcode 0xfe (threads) at offset 0x1e"},
		{name: "tail call", wasm: funcModule(0x12, 0x00, 0x0b), kind: meter.ErrUnsupported, msg: "tail call opcode 0x12"},
		{name: "exception handling", wasm: funcModule(0x06, 0x40, 0x0b, 0x0b), kind: meter.ErrUnsupported, msg: "exception handling opcode 0x6"},
		{name: "unknown opcode", wasm: funcModule(0x27, 0x0b), kind: meter.ErrUnsupported, msg: "unknown opcode 0x27"},
		{name: "unknown 0xfc opcode", wasm: funcModule(0xfc, 0x12, 0x0b), kind: meter.ErrUnsupported, msg: "unknown opcode 0xfc 0x12"},
		{name: "relaxed SIMD", wasm: funcModule(0xfd, 0x80, 0x02, 0x0b), kind: meter.ErrUnsupported, msg: "relaxed SIMD"},
		{name: "SIMD opcode not in shortest form", wasm: funcModule(0xfd, 0x8c, 0x00, 0x0b), kind: meter.ErrUnsupported, msg: "shortest"},
		{name: "SIMD gap", wasm: funcModule(0x41, 0x00, 0xfd, 0x9a, 0x01, 0x0b), kind: meter.ErrUnsupported, msg: "unknown opcode 0xfd 0x9a"},
		{name: "GC type", wasm: wasmModule(sec(1, vec(1, 0x5f, 0x00)...)), kind: meter.ErrUnsupported, msg: "type section"},
		{name: "second memory", wasm: funcModule(0x3f, 0x01, 0x1a, 0x0b), kind: meter.ErrUnsupported, msg: "multiple memories"},
		{name: "missing end", wasm: funcModule(0x01), kind: meter.ErrMalformed, msg: "missing end"},
		{name: "unclosed block", wasm: funcModule(0x02, 0x40, 0x0b), kind: meter.ErrMalformed, msg: "missing end"},
		{name: "bytes after end", wasm: funcModule(0x0b, 0x01), kind: meter.ErrMalformed, msg: "after the end of the function body"},
		{name: "else without if", wasm: funcModule(0x02, 0x40, 0x05, 0x0b, 0x0b), kind: meter.ErrMalformed, msg: "else without if"},
		{name: "branch out of range", wasm: funcModule(0x0c, 0x01, 0x0b), kind: meter.ErrMalformed, msg: "branch depth 1 out of range"},
		{name: "LEB128 overflow", wasm: funcModule(0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b), kind: meter.ErrMalformed, msg: "LEB128 s32 overflow"},
		{name: "bad block type", wasm: funcModule(0x02, 0x60, 0x0b, 0x0b), kind: meter.ErrUnsupported, msg: "block type"},
		{name: "code touching the fuel global", wasm: funcModule(0x42, 0x00, 0x24, 0x00, 0x0b), kind: meter.ErrMalformed, msg: "global index 0 out of range"},
		{
			name: "function and code counts differ",
			wasm: wasmModule(sec(1, vec(1, 0x60, 0x00, 0x00)...), sec(3, vec(2, 0x00, 0x00)...), sec(10, cat(vec(1), []byte{0x02, 0x00, 0x0b})...)),
			kind: meter.ErrMalformed, msg: "function section declares 2",
		},
		{
			name: "too many functions",
			wasm: wasmModule(sec(1, vec(1, 0x60, 0x00, 0x00)...), sec(3, vec(100_001, make([]byte, 100_001)...)...)),
			kind: meter.ErrLimit, msg: "over the limit of 100000",
		},
		// Function bodies that wazero's compiler takes too long (or, nested,
		// too deep a stack) to compile.
		{name: "nested too deep", wasm: resolvertest.NestedBlocks(meter.MaxNesting + 1), kind: meter.ErrLimit, msg: "function 2: blocks nested more than 2048 deep"},
		{name: "four million nested blocks", wasm: resolvertest.NestedBlocks(4_000_000), kind: meter.ErrLimit, msg: "function body of 12000004 bytes, over the limit"},
		{name: "too many blocks", wasm: resolvertest.Module(bytes.Repeat([]byte{0x02, 0x40, 0x0b}, meter.MaxBlocks+1), 0), kind: meter.ErrLimit, msg: "more than 4096 blocks"},
		{name: "br_table too big", wasm: resolvertest.BigBrTable(meter.MaxBrTableTargets), kind: meter.ErrLimit, msg: "br_table targets of 16385"},
		{name: "function body too big", wasm: resolvertest.HugeFunction(meter.MaxBodyBytes), kind: meter.ErrLimit, msg: "function body of 1048"},
		{name: "too large", wasm: append(wasmModule(), make([]byte, 64<<20)...), kind: meter.ErrLimit, msg: "over the limit"},
		// Counts that a decoder would allocate for before reading the entries.
		{name: "data count over its bytes", wasm: []byte("\x00asm\x01\x00\x00\x00\v\n\x9d\x9d\x9d0020000"), kind: meter.ErrLimit, msg: "data section: data segment count"},
		{name: "too many data segments", wasm: wasmModule(sec(11, cat(leb(100_001), make([]byte, 200_002))...)), kind: meter.ErrLimit, msg: "data segment count 100001 is over the limit of 100000"},
		{name: "data segment longer than its bytes", wasm: wasmModule(sec(5, vec(1, 0x00, 0x01)...), sec(11, cat(vec(1), []byte{0x01}, leb(1<<20))...)), kind: meter.ErrMalformed, msg: "data segment contents length count 1048576 does not fit"},
		{name: "data count differs", wasm: wasmModule(sec(12, leb(2)...), sec(11, cat(vec(1), []byte{0x01}, name("x"))...)), kind: meter.ErrMalformed, msg: "the data count section says 2"},
		{name: "data count without data", wasm: wasmModule(sec(12, leb(3)...)), kind: meter.ErrMalformed, msg: "no data section"},
		{name: "element entries over their bytes", wasm: wasmModule(sec(9, cat(vec(1), []byte{0x01, 0x00}, leb(1<<31))...)), kind: meter.ErrLimit, msg: "element count 2147483648 is over the limit"},
		{name: "element segment flags", wasm: wasmModule(sec(9, cat(vec(1), []byte{0x08, 0x00, 0x00})...)), kind: meter.ErrMalformed, msg: "element segment 0: flags 8"},
		{name: "too many locals", wasm: wasmModule(
			sec(1, vec(1, 0x60, 0x00, 0x00)...),
			sec(3, vec(1, 0x00)...),
			sec(10, cat(vec(1), []byte{0x08, 0x01}, leb(1<<32-1), []byte{0x7f, 0x0b})...),
		), kind: meter.ErrLimit, msg: "4294967295 locals, over the limit of 50000"},
		{name: "too many parameters", wasm: wasmModule(sec(1, cat(vec(1), []byte{0x60}, leb(1001), make([]byte, 1001), []byte{0x00})...)), kind: meter.ErrLimit, msg: "parameter count 1001 is over the limit of 1000"},
		{name: "huge table", wasm: wasmModule(sec(4, cat(vec(1), []byte{0x70, 0x00}, leb(1<<27))...)), kind: meter.ErrLimit, msg: "over the limit of 10000000"},
		{name: "tables adding up", wasm: wasmModule(sec(4, cat(vec(2), []byte{0x70, 0x00}, leb(6_000_000), []byte{0x70, 0x00}, leb(6_000_000))...)), kind: meter.ErrLimit, msg: "tables of 12000000 elements"},
		{name: "limits maximum under minimum", wasm: wasmModule(sec(5, vec(1, 0x01, 0x02, 0x01)...)), kind: meter.ErrMalformed, msg: "limits maximum 1 under the minimum 2"},
		{name: "memory over 4 GiB", wasm: wasmModule(sec(5, cat(vec(1), []byte{0x00}, leb(65537))...)), kind: meter.ErrLimit, msg: "memory of 65537 pages"},
		{name: "two memories", wasm: wasmModule(sec(5, vec(2, 0x00, 0x01, 0x00, 0x01)...)), kind: meter.ErrUnsupported, msg: "more than one memory"},
		{name: "start out of range", wasm: wasmModule(sec(8, leb(0)...)), kind: meter.ErrMalformed, msg: "start function index 0 out of range"},
		{name: "name map over its bytes", wasm: wasmModule(sec(0, cat(name("name"), []byte{0x01, 0x05}, leb(1<<31), []byte{0x00})...)), kind: meter.ErrLimit, msg: "custom section: name count 2147483648"},
		{name: "second name section", wasm: wasmModule(sec(0, name("name")...), sec(0, name("name")...)), kind: meter.ErrMalformed, msg: "more than one name section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := meter.Instrument(tt.wasm)
			if err == nil {
				t.Fatalf("Instrument succeeded (%d bytes), want an error", len(out))
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("err=%v, want %v", err, tt.kind)
			}
			var e *meter.Error
			if !errors.As(err, &e) {
				t.Errorf("err=%T, want *meter.Error", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err=%q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

// fuzzSeeds are modules for the fuzz corpus that need no tools.
func fuzzSeeds() [][]byte {
	return [][]byte{
		funcModule(0x0b),
		funcModule(0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b),                               // loop br 0 end
		funcModule(0x02, 0x40, 0x03, 0x40, 0x41, 0x01, 0x0d, 0x01, 0x0b, 0x0b, 0x0b), // block loop br_if 1
		funcModule(0xfd, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x1a, 0x0b),
		funcModule(0x41, 0x00, 0x04, 0x40, 0x01, 0x05, 0x01, 0x0b, 0x0b), // if else
	}
}

func FuzzInstrument(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	if _, err := exec.LookPath("wat2wasm"); err == nil {
		for _, name := range []string{"spin", "recurse", "cost", "compute", "checksum"} {
			f.Add(wat(f, name))
		}
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	f.Cleanup(func() { r.Close(ctx) })
	compiles := func(wasm []byte) error {
		c, err := r.CompileModule(ctx, wasm)
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := meter.Instrument(wasm)
		if err != nil {
			var e *meter.Error
			if !errors.As(err, &e) {
				t.Fatalf("err=%T %v, want *meter.Error", err, err)
			}
			return
		}
		if compiles(wasm) != nil {
			return
		}
		if err := compiles(out); err != nil {
			t.Fatalf("input compiles, instrumented output does not: %v", err)
		}
	})
}

// BenchmarkMeteredLoop compares calls before and after instrumenting, under
// wazero's compiler, and reports the time of each and their ratio
// metered/plain: tight loops over 64 KiB of memory, 1000 times (checksum:
// sum*31 + word; sum: sum + word, the worst case, one add per iteration), and
// a recursive fib, where each call pays the charge at function entry.
func BenchmarkMeteredLoop(b *testing.B) {
	for _, bb := range []struct {
		module, fn string
		arg        uint64
	}{
		{"checksum", "checksum", 1000},
		{"checksum", "sum", 1000},
		{"compute", "fib", 25},
	} {
		b.Run(bb.fn, func(b *testing.B) {
			plain := wat(b, bb.module)
			pmod, mmod := instantiate(b, plain), instantiate(b, mustInstrument(b, plain))
			fuel := fuelGlobal(b, mmod)
			ctx := context.Background()
			if bb.module == "checksum" {
				fuel.Set(1 << 62)
				for _, mod := range []api.Module{pmod, mmod} {
					if _, err := mod.ExportedFunction("fill").Call(ctx, 42); err != nil {
						b.Fatal(err)
					}
				}
			}
			pfn, mfn := pmod.ExportedFunction(bb.fn), mmod.ExportedFunction(bb.fn)
			var plainTime, meteredTime time.Duration
			for b.Loop() {
				start := time.Now()
				want, err := pfn.Call(ctx, bb.arg)
				if err != nil {
					b.Fatal(err)
				}
				plainTime += time.Since(start)

				fuel.Set(1 << 62)
				start = time.Now()
				got, err := mfn.Call(ctx, bb.arg)
				if err != nil {
					b.Fatal(err)
				}
				meteredTime += time.Since(start)
				if got[0] != want[0] {
					b.Fatalf("metered %s=%d, want %d", bb.fn, got[0], want[0])
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(plainTime.Nanoseconds())/n, "plain-ns/call")
			b.ReportMetric(float64(meteredTime.Nanoseconds())/n, "metered-ns/call")
			b.ReportMetric(float64(meteredTime)/float64(plainTime), "metered/plain")
		})
	}
}

// sliced sets a call's fuel as a host does: at most meter.Slice in the
// fuel global, the rest in the reserve; and the stop flag.
func sliced(tb testing.TB, mod api.Module, fuel int64, stop bool) {
	tb.Helper()
	reserve, ok1 := mod.ExportedGlobal(meter.ReserveGlobalName).(api.MutableGlobal)
	flag, ok2 := mod.ExportedGlobal(meter.StopGlobalName).(api.MutableGlobal)
	if !ok1 || !ok2 {
		tb.Fatalf("no mutable globals exported as %q and %q", meter.ReserveGlobalName, meter.StopGlobalName)
	}
	in := min(fuel, meter.Slice)
	fuelGlobal(tb, mod).Set(uint64(in))
	reserve.Set(uint64(fuel - in))
	flag.Set(0)
	if stop {
		flag.Set(1)
	}
}

// left is the fuel left: the fuel global and the reserve.
func left(tb testing.TB, mod api.Module) (total, inFuel, reserve int64) {
	tb.Helper()
	inFuel = int64(fuelGlobal(tb, mod).Get())
	reserve = int64(mod.ExportedGlobal(meter.ReserveGlobalName).Get())
	return inFuel + reserve, inFuel, reserve
}

// TestInstrument_Reserve: a call given its fuel in slices (the fuel
// global and the reserve) uses exactly what it uses with all of it in the
// fuel global, fails out of fuel exactly when that does, and never holds
// more than a slice in the fuel global.
func TestInstrument_Reserve(t *testing.T) {
	ctx := context.Background()
	mod := instantiate(t, mustInstrument(t, wat(t, "slice")))
	const n = 3_000_000 // several slices of a loop of a few instructions
	_, after, err := call(t, mod, 1<<40, "count", n)
	if err != nil {
		t.Fatal(err)
	}
	used := 1<<40 - after
	if used <= 2*meter.Slice {
		t.Fatalf("count(%d) used %d fuel, want several slices", n, used)
	}
	count := mod.ExportedFunction("count")

	sliced(t, mod, 1<<40, false)
	if _, err := count.Call(ctx, n); err != nil {
		t.Fatalf("count with the fuel in slices: %v", err)
	}
	total, inFuel, _ := left(t, mod)
	if got, want := 1<<40-total, used; got != want {
		t.Errorf("fuel used in slices = %d, want %d", got, want)
	}
	if inFuel > meter.Slice || inFuel < 0 {
		t.Errorf("fuel global = %d, want 0 to %d", inFuel, meter.Slice)
	}

	sliced(t, mod, used-1, false)
	if _, err := count.Call(ctx, n); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("count with one fuel too few = %v, want an unreachable trap", err)
	}
	if total, _, reserve := left(t, mod); total >= 0 || reserve != 0 {
		t.Errorf("after running out: fuel left %d, reserve %d; want negative and 0", total, reserve)
	}

	sliced(t, mod, used, false)
	if _, err := count.Call(ctx, n); err != nil {
		t.Fatalf("count with exactly its fuel: %v", err)
	}
	if total, _, _ := left(t, mod); total != 0 {
		t.Errorf("fuel left %d, want 0", total)
	}
}

// TestInstrument_StopFlag: with the stop flag set, a call traps at its
// first refill, within a slice of fuel, whatever its reserve; the guest
// never clears the flag.
func TestInstrument_StopFlag(t *testing.T) {
	ctx := context.Background()
	mod := instantiate(t, mustInstrument(t, wat(t, "slice")))
	sliced(t, mod, 1<<40, true)
	if _, err := mod.ExportedFunction("count").Call(ctx, 1<<30); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("count with the stop flag set = %v, want an unreachable trap", err)
	}
	total, _, _ := left(t, mod)
	if used := 1<<40 - total; used > meter.Slice+100 {
		t.Errorf("used %d fuel after the stop flag was set, want at most a slice (%d)", used, meter.Slice)
	}
	if got := mod.ExportedGlobal(meter.StopGlobalName).Get(); got != 1 {
		t.Errorf("stop flag = %d after the call, want 1", got)
	}
}

// TestInstrument_BulkAndGrow: memory.fill is charged one unit per
// BulkUnit bytes on top of its instruction, memory.grow GrowFuel.
func TestInstrument_BulkAndGrow(t *testing.T) {
	mod := instantiate(t, mustInstrument(t, wat(t, "slice")))
	usedBy := func(name string, arg uint64) int64 {
		_, after, err := call(t, mod, 1<<40, name, arg)
		if err != nil {
			t.Fatalf("%s(%d): %v", name, arg, err)
		}
		return 1<<40 - after
	}
	if got, want := usedBy("fill", 65536)-usedBy("fill", 0), int64(65536/meter.BulkUnit); got != want {
		t.Errorf("fill(65536) used %d more fuel than fill(0), want %d", got, want)
	}
	if got := usedBy("grow", 0); got < meter.GrowFuel {
		t.Errorf("grow(0) used %d fuel, want at least %d", got, meter.GrowFuel)
	}
}
