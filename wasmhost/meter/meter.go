// Package meter adds fuel metering to a WebAssembly module by rewriting its
// binary, so that a runtime without instruction counting (wazero's compiler)
// stops a guest that runs too long, deterministically: infinite loops and
// runaway recursion alike.
//
// Instrument adds a mutable i64 global, exported as GlobalName, and charges it
// at every function entry, at every iteration of every loop, and at the join
// points where forward branches land (an else arm, the code after a block or
// an if). The host sets
// the global to the call's budget before calling into the module; a guest that
// overdraws it traps with `unreachable`, and the global is then negative (a
// negative budget traps at the first charge). What is left after a successful
// call is the budget minus the fuel spent:
//
//	fuel := mod.ExportedGlobal(meter.GlobalName).(api.MutableGlobal)
//	fuel.Set(uint64(budget))
//	_, err := fn.Call(ctx)
//	if err != nil && int64(fuel.Get()) < 0 {
//		// out of fuel
//	}
//
// Bulk memory and table instructions are also charged for their size
// (BulkUnit), memory.grow and table.grow as much as a host call (GrowFuel). The fuel global holds at most a Slice of the budget, the
// rest waits in a reserve global (ReserveGlobalName): at each refill the
// guest leaves its code for the host for a moment, so that the Go runtime
// can preempt it, and checks a stop flag (StopGlobalName) that the host
// may set from another goroutine to stop the call within a Slice of fuel.
//
// Each charge site pays for the instructions from it to the next site: a
// function entry for the start of the body, a loop header for the start of
// the loop body, a join point for the code after it. So code that a forward
// branch skips is not charged (Go compiles every function into a dispatch
// loop whose body holds the whole function: charging the whole body on
// every jump made Go code look 10 times more expensive than C), while every
// backward branch and every call pays again, which is what bounds a runaway.
// A join point of fewer than 16 instructions is charged at the site where
// its block opened instead (every path to it passed there since the last
// loop header or call), which saves a charge for a few instructions. A
// nested `loop` opcode counts for the enclosing site. Every charge is at
// least 1; `end` and `else` are not instructions for this count.
//
// Instrument also bounds the depth of nested calls, weighted by the size
// of their frames (DepthGlobalName), so that a runaway recursion that the
// fuel would let run millions of calls deep stops before the runtime's
// stack grows large.
//
// The package accepts WebAssembly 2.0 (multi-value, reference types, bulk
// memory, sign extension, non-trapping float-to-int conversions and 128-bit
// SIMD) and refuses with an error everything else: threads, exception
// handling, tail calls, typed function references, GC, memory64, multiple
// memories, and anything malformed.
package meter

import (
	"errors"
	"fmt"
)

// GlobalName is the export name of the injected fuel global (mutable i64).
// A module that already exports a name starting with GlobalName is refused.
const GlobalName = "edgesync_fuel"

// DepthGlobalName is the export name of the injected depth global (mutable
// i32): the stack weight of the calls under way. Every call adds the
// weight of the function it calls (FrameBase, its parameters and its
// locals; for call_indirect, the heaviest function of the type) before it
// and takes it back after it returns; a call that would take the depth
// over MaxDepth traps with `unreachable` instead, the depth then over
// MaxDepth. The host sets it to 0 before each call. So a runaway recursion
// stops before the runtime's own stack grows large (wazero's grows to
// about 100 MiB, copied at every doubling, before it overflows).
const DepthGlobalName = GlobalName + "_depth"

// ReserveGlobalName is the export name of the reserve global (mutable
// i64): fuel not yet in the fuel global. The fuel global holds at most a
// Slice of the fuel at a time: when a charge takes it below zero, the
// guest refills it from the reserve, and traps out of fuel only when the
// two together are negative (the fuel global then holds their sum, the
// reserve 0). So the fuel left is the sum of the two. The reserve starts
// at 0: a host that sets only the fuel global gets the behaviour of a
// single global.
const ReserveGlobalName = GlobalName + "_reserve"

// StopGlobalName is the export name of the stop flag (mutable i32): at
// every refill the guest traps with `unreachable` if it is not 0. The host
// sets it, from any goroutine, to stop a call; the guest only reads it, so
// no write of the guest's undoes the host's.
const StopGlobalName = GlobalName + "_stop"

// Slice is the most fuel the fuel global holds at a time (about a
// millisecond of guest code): every Slice of fuel, the guest refills it
// from the reserve, after leaving its code for the host with `memory.grow
// 0` (when the module has a memory), which lets the Go runtime preempt the
// goroutine running it. Native code of wazero's compiler cannot be
// preempted: without this exit, a call that runs for long blocks every
// stop-the-world pause of the process (a garbage collection) and, with
// GOMAXPROCS 1, every other goroutine, the one that would stop it included.
const Slice = 1 << 20

// BulkUnit is the bytes (or table elements) that memory.fill, memory.copy,
// memory.init, table.fill, table.copy and table.init are charged one unit
// of fuel for, on top of the instruction itself.
const BulkUnit = 1 << bulkShift

const bulkShift = 3

// GrowFuel is what memory.grow and table.grow cost: the runtime leaves the
// guest's code for the host to serve them, like a host call.
const GrowFuel = 100

// Stack weights (DepthGlobalName).
const (
	FrameBase = 4       // what a frame weighs besides its parameters and locals
	MaxDepth  = 1 << 20 // about 8 MiB of 8-byte slots
)

// Limits on the work Instrument does.
const (
	maxModuleSize = 64 << 20  // bytes of input
	maxOutputSize = 256 << 20 // bytes of output
	maxFunctions  = 100_000   // imported and defined functions
	maxEntries    = 1_000_000 // types, imports, globals, exports
)

var (
	// ErrMalformed reports a module that is not a well-formed WebAssembly binary.
	ErrMalformed = errors.New("malformed module")
	// ErrUnsupported reports a module that uses a feature the package does not meter.
	ErrUnsupported = errors.New("unsupported feature")
	// ErrLimit reports a module over one of the package's size limits.
	ErrLimit = errors.New("module over a limit")
	// ErrReservedName reports a module that exports a name reserved for the fuel global.
	ErrReservedName = errors.New("reserved export name")
)

// Error says what was wrong with a module and where. Err is one of ErrMalformed,
// ErrUnsupported, ErrLimit or ErrReservedName.
type Error struct {
	Section string // the section, when not in a function body ("" for the module header)
	Func    int    // the function's index (imported functions included), or -1
	Offset  int    // byte offset in the module
	Msg     string
	Err     error
}

func (e *Error) Error() string {
	switch {
	case e.Func >= 0:
		return fmt.Sprintf("function %d: %s at offset %#x", e.Func, e.Msg, e.Offset)
	case e.Section != "":
		return fmt.Sprintf("%s section: %s at offset %#x", e.Section, e.Msg, e.Offset)
	default:
		return fmt.Sprintf("module: %s at offset %#x", e.Msg, e.Offset)
	}
}

func (e *Error) Unwrap() error { return e.Err }

func errorAt(offset int, kind error, format string, args ...any) error {
	return &Error{Func: -1, Offset: offset, Msg: fmt.Sprintf(format, args...), Err: kind}
}

// inSection names the section in err, when err is an *Error without a place.
func inSection(err error, name string) error {
	var e *Error
	if errors.As(err, &e) && e.Func < 0 && e.Section == "" {
		e.Section = name
	}
	return err
}

// inFunc names the function in err, when err is an *Error without a place.
func inFunc(err error, idx int) error {
	var e *Error
	if errors.As(err, &e) && e.Func < 0 && e.Section == "" {
		e.Func = idx
	}
	return err
}

// StartFuel is the fuel a module's start function (if any) runs on: the
// global's initial value.
const StartFuel = 500_000_000

// Instrument returns a copy of the wasm binary with fuel metering:
// a new mutable i64 global (initial value StartFuel), exported as GlobalName; at the
// start of every function body (after the locals) and right after every
// `loop` instruction's block type, code that subtracts a static cost from
// the global and executes `unreachable` if the result is negative. And a
// second new global, the depth (mutable i32, initial value 0, exported as
// DepthGlobalName), raised before every call and lowered after it.
//
// Function indices do not change, so the element, start and name sections
// stay valid and are copied as they are, like every section other than the
// global, export and code sections. A start function runs at instantiation,
// before the host can set the fuel: it runs on the global's initial value,
// StartFuel.
//
// Every section is parsed, also the ones copied unchanged, and every count
// and length is checked against the bytes that hold it before a runtime
// decodes the module. Instrument refuses a module over 64 MiB, with more
// than 100,000 functions or a million types, imports, globals or exports, a
// function with more than 50,000 locals, a function body over MaxBodyBytes,
// blocks nested deeper than MaxNesting, more than MaxBlocks blocks or
// MaxBrTableTargets br_table targets in one function, a type with more than
// 1,000 parameters or results, more than 100,000 element or data segments, tables of more than
// 10 million elements in all, more than one memory or one over 65,536
// pages, a name section of more than a million names, or a module whose
// instrumented form would be over 256 MiB. The error is an *Error.
func Instrument(wasm []byte) ([]byte, error) {
	if len(wasm) > maxModuleSize {
		return nil, errorAt(0, ErrLimit, "module is %d bytes, over the limit of %d", len(wasm), maxModuleSize)
	}
	m, err := parse(wasm)
	if err != nil {
		return nil, err
	}
	return m.instrument()
}
