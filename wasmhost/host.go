// Package wasmhost runs edgesync conflict resolvers: WebAssembly modules that
// speak the ABI of resolvers/ABI.md, in wazero sandboxes.
//
// One Host per process holds one wazero runtime (compiler engine) with a
// compilation cache on disk. Compile validates a module, instruments it with
// fuel metering (wasmhost/meter), compiles it once and creates a first
// instance; calls then reuse pooled live instances. An instance that failed
// in any way (trap, fuel, memory, bad output) is discarded, never reused.
//
// Guests get a WASI with nothing in it (wasi.go): no files, sockets,
// arguments or environment; fake clocks and a fixed random sequence, so
// that a resolver decides the same on every hub. Every WASI call is charged
// fuel in proportion to its work. A call also has a wall-clock bound, as a
// last resort, and closing the Host stops the calls that are running.
package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/edgesync/edgesync/wasmhost/meter"
)

// ABI exports (resolvers/ABI.md).
const (
	ABIMarker    = "edgesync_abi_v1"
	exportInput  = "edgesync_input"
	exportCall   = "edgesync_resolve"
	exportMemory = "memory"
	exportInit   = "_initialize"
	abiPrefix    = "edgesync_abi_v"
	wasiModule   = wasi_snapshot_preview1.ModuleName
)

// Failure reasons of a call (resolvers/ABI.md, "Limits and failures").
const (
	ReasonFuel    = "fuel"
	ReasonMemory  = "memory"
	ReasonStack   = "stack"
	ReasonTrap    = "trap"
	ReasonOutput  = "output"
	ReasonInit    = "init"
	ReasonInput   = "input"
	ReasonMissing = "missing"
	// ReasonTimeout: the call ran past Limits.Timeout.
	ReasonTimeout = "timeout"
	// ReasonCanceled: the caller's context ended, or the Host closed,
	// while the call ran.
	ReasonCanceled = "canceled"
)

// Errors of Compile. ErrInvalidModule maps to 400, ErrModuleTooLarge to 413.
var (
	ErrInvalidModule  = errors.New("invalid resolver module")
	ErrModuleTooLarge = errors.New("resolver module too large")
	ErrClosed         = errors.New("wasm host closed")
	// errTimeout is the cause of a call's context when Limits.Timeout ends it.
	errTimeout = errors.New("resolver call timed out")
	// errStackOverflow is wazero's own stack overflow, past the depth
	// limit of the metering (frames heavier than their weight).
	errStackOverflow = errors.New("call stack overflow")
	// errCompileTimeout is the cause when Limits.CompileTimeout ends a compile.
	errCompileTimeout = errors.New("compile timed out")
)

// CallError is a failed call: Reason is one of the Reason constants.
type CallError struct {
	Reason string
	Err    error
}

func (e *CallError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *CallError) Unwrap() error { return e.Err }

func callErr(reason string, format string, args ...any) *CallError {
	return &CallError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Limits bound every module and call. Zero fields take the defaults.
type Limits struct {
	Fuel        int64  // per call
	InitFuel    int64  // for _initialize
	MemoryPages uint32 // 64 KiB pages a guest's memory may reach
	ModuleBytes int    // size of an uploaded module
	InputBytes  int    // size of one call's input
	OutputBytes int    // size of one call's output
	// Timeout bounds the wall-clock time of one call (and of an instance's
	// _initialize): a last resort behind fuel, which bounds the work.
	Timeout time.Duration
	// CompileTimeout bounds the compilation of an uploaded module.
	CompileTimeout time.Duration
}

// Defaults (resolvers/ABI.md).
const (
	DefaultFuel        = 50_000_000
	DefaultInitFuel    = 500_000_000
	DefaultMemoryPages = 1024 // 64 MiB
	DefaultModuleBytes = 32 << 20
	DefaultInputBytes  = 16 << 20
	DefaultOutputBytes = 4 << 20
	DefaultTimeout     = 2 * time.Second
	// DefaultCompileTimeout leaves room, within the 10 s in which an
	// upload is answered, for _initialize (bounded by DefaultTimeout) and
	// storing the module.
	DefaultCompileTimeout = 6 * time.Second
	// compileWorkers compile one module's functions in parallel; wazero
	// checks for cancellation between functions only when there is more
	// than one.
	compileWorkers = 2
	// maxLogBytes of a call's stdout and stderr are kept.
	maxLogBytes = 4 << 10
)

func (l Limits) withDefaults() Limits {
	if l.Fuel <= 0 {
		l.Fuel = DefaultFuel
	}
	if l.InitFuel <= 0 {
		l.InitFuel = DefaultInitFuel
	}
	if l.MemoryPages == 0 {
		l.MemoryPages = DefaultMemoryPages
	}
	if l.ModuleBytes <= 0 {
		l.ModuleBytes = DefaultModuleBytes
	}
	if l.InputBytes <= 0 {
		l.InputBytes = DefaultInputBytes
	}
	if l.OutputBytes <= 0 {
		l.OutputBytes = DefaultOutputBytes
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.CompileTimeout <= 0 {
		l.CompileTimeout = DefaultCompileTimeout
	}
	return l
}

// Config configures a Host.
type Config struct {
	// CacheDir holds wazero's compilation cache; "" compiles in memory only.
	CacheDir string
	Limits   Limits
	// Instances is the most idle instances kept per module (default
	// GOMAXPROCS).
	Instances int
}

// Host is a process's wasm runtime.
type Host struct {
	cfg    Config
	limits Limits
	rt     wazero.Runtime
	cache  wazero.CompilationCache
	wasi   map[string]bool // the WASI functions a guest may import

	// base ends when the Host closes: a compile's context derives from it.
	base   context.Context
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	closed bool
	calls  sync.WaitGroup // running calls and compiles

	closeOnce sync.Once
	closeErr  error
	running   map[*guest]struct{} // the instances running a call
	// unmetered skips fuel instrumentation: only for measuring what metering
	// costs (export_test.go); such a host has no fuel limit.
	unmetered bool
}

// New creates a Host.
func New(ctx context.Context, cfg Config) (*Host, error) {
	h := &Host{cfg: cfg, limits: cfg.Limits.withDefaults(), running: map[*guest]struct{}{}}
	if h.cfg.Instances <= 0 {
		h.cfg.Instances = runtime.GOMAXPROCS(0)
	}
	h.base, h.cancel = context.WithCancelCause(context.Background())
	// A call whose context ends (its timeout, or Close) is stopped through
	// the metering's stop flag (guest.watch), not by wazero's
	// WithCloseOnContextDone: that calls out of the guest's code into Go at
	// every loop iteration, and made a tight loop 70 times slower; the
	// metering leaves the guest's code once per meter.Slice of fuel.
	rc := wazero.NewRuntimeConfigCompiler().WithMemoryLimitPages(h.limits.MemoryPages).WithCloseOnContextDone(false).
		WithDebugInfoEnabled(false) // instrumented code makes DWARF offsets stale
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		h.cache = c
		rc = rc.WithCompilationCache(c)
	}
	h.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	wasi, err := instantiateWASI(ctx, h.rt)
	if err != nil {
		_ = h.rt.Close(ctx)
		return nil, fmt.Errorf("wasi: %w", err)
	}
	h.wasi = wasi
	return h, nil
}

// Limits returns the limits in force.
func (h *Host) Limits() Limits { return h.limits }

// Close stops the calls that are running (they fail with reason
// canceled), waits for them, and releases the runtime and every module.
// Closing again returns what the first Close did.
func (h *Host) Close(ctx context.Context) error {
	h.closeOnce.Do(func() { h.closeErr = h.close(ctx) })
	return h.closeErr
}

func (h *Host) close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	for g := range h.running {
		go g.stop(g.current(), ErrClosed)
	}
	h.mu.Unlock()
	h.cancel(ErrClosed)
	waited := make(chan struct{})
	go func() { h.calls.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		return fmt.Errorf("close wasm host: calls still running: %w", ctx.Err())
	}
	err := h.rt.Close(ctx)
	if h.cache != nil {
		err = errors.Join(err, h.cache.Close(ctx))
	}
	return err
}

// enter registers a compile, whose context ends at timeout or when the
// Host closes; done ends it.
func (h *Host) enter(ctx context.Context, timeout time.Duration, cause error) (context.Context, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ctx, nil, ErrClosed
	}
	h.calls.Add(1)
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(h.base, func() { cancel(ErrClosed) })
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, timeout, cause)
	return ctx, func() {
		cancelTimeout()
		stop()
		cancel(nil)
		h.calls.Done()
	}, nil
}

// Module is a compiled resolver with its pool of live instances.
type Module struct {
	h        *Host
	compiled wazero.CompiledModule
	idle     chan *instance
	stats    stats
	closed   chan struct{}
	once     sync.Once
}

// Compile validates wasm as an ABI v1 resolver, instruments and compiles
// it, and creates a first instance (running _initialize), so that a module
// that cannot start is refused here and not at its first conflict.
func (h *Host) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	if len(wasm) > h.limits.ModuleBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrModuleTooLarge, len(wasm), h.limits.ModuleBytes)
	}
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, fmt.Errorf("%w: not a WebAssembly binary (no \\0asm header)", ErrInvalidModule)
	}
	metered, err := meter.Instrument(wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	if h.unmetered {
		metered = wasm
	}
	cctx, done, err := h.enter(ctx, h.limits.CompileTimeout, errCompileTimeout)
	if err != nil {
		return nil, err
	}
	cm, err := h.rt.CompileModule(experimental.WithCompilationWorkers(cctx, compileWorkers), metered)
	cause := context.Cause(cctx)
	done()
	switch {
	case err == nil:
	case errors.Is(cause, errCompileTimeout):
		return nil, fmt.Errorf("%w: compiling took longer than %v (--resolver-compile-timeout)", ErrInvalidModule, h.limits.CompileTimeout)
	case cause != nil:
		return nil, fmt.Errorf("compile: %w", cause)
	default:
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	if err := h.checkABI(cm); err != nil {
		_ = cm.Close(ctx)
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	m := &Module{h: h, compiled: cm, idle: make(chan *instance, h.cfg.Instances), closed: make(chan struct{})}
	inst, err := m.newInstance(ctx)
	if err != nil {
		_ = cm.Close(ctx)
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	m.put(ctx, inst)
	return m, nil
}

// checkABI checks the imports and exports against resolvers/ABI.md.
func (h *Host) checkABI(cm wazero.CompiledModule) error {
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != wasiModule || !h.wasi[name] {
			return fmt.Errorf("forbidden import %s.%s: a resolver may import only %s functions", mod, name, wasiModule)
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		return fmt.Errorf("forbidden import %s.%s: a resolver must define and export its own memory", mod, name)
	}
	fns := cm.ExportedFunctions()
	if _, ok := fns["_start"]; ok {
		return errors.New("module exports _start: build a reactor, not a command (Go: -buildmode=c-shared; clang: -mexec-model=reactor)")
	}
	if _, ok := fns[ABIMarker]; !ok {
		var other []string
		for name := range fns {
			if strings.HasPrefix(name, abiPrefix) {
				other = append(other, name)
			}
		}
		if len(other) > 0 {
			return fmt.Errorf("wrong ABI version: module exports %s, this hub speaks %s", strings.Join(other, ", "), ABIMarker)
		}
		return fmt.Errorf("missing export %s: not an edgesync resolver (see resolvers/ABI.md)", ABIMarker)
	}
	want := []struct {
		name    string
		params  []api.ValueType
		results []api.ValueType
	}{
		{ABIMarker, nil, nil},
		{exportInput, []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
		{exportCall, []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}},
	}
	for _, w := range want {
		f, ok := fns[w.name]
		if !ok {
			return fmt.Errorf("missing export %s (see resolvers/ABI.md)", w.name)
		}
		if !sameTypes(f.ParamTypes(), w.params) || !sameTypes(f.ResultTypes(), w.results) {
			return fmt.Errorf("export %s has type %s, want %s", w.name, sig(f.ParamTypes(), f.ResultTypes()), sig(w.params, w.results))
		}
	}
	if f, ok := fns[exportInit]; ok && (len(f.ParamTypes()) > 0 || len(f.ResultTypes()) > 0) {
		return fmt.Errorf("export %s has type %s, want func()", exportInit, sig(f.ParamTypes(), f.ResultTypes()))
	}
	if _, ok := cm.ExportedMemories()[exportMemory]; !ok {
		return fmt.Errorf("missing export %q (the module's memory)", exportMemory)
	}
	return nil
}

func sameTypes(a, b []api.ValueType) bool { return bytes.Equal(a, b) }

func sig(params, results []api.ValueType) string {
	name := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ", ")
	}
	return "func(" + name(params) + ") -> (" + name(results) + ")"
}

// instance is one live instance of a module.
type instance struct {
	mod     api.Module
	mem     api.Memory
	input   api.Function
	resolve api.Function
	log     *boundedBuffer
	guest   *guest
	ctx     context.Context // carries guest, for the WASI functions
	stack   [1]uint64
	buf     []byte // the host's input buffer, reused
}

// fuelUsed is what a call given limit fuel used.
func (inst *instance) fuelUsed(limit int64) int64 {
	left, _ := inst.guest.fuelLeftNow()
	// A call out of fuel used all of it (the global is negative).
	return min(limit, limit-left)
}

// begin starts a call (or _initialize) with n fuel: it has until the
// timeout, or until ctx ends or the Host closes, whichever comes first, and
// is then interrupted. end ends it.
func (h *Host) begin(ctx context.Context, g *guest, n int64) (end func(), err error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	h.running[g] = struct{}{}
	h.calls.Add(1)
	h.mu.Unlock()
	gen := g.begin(n)
	unwatch := g.watch(ctx, gen, h.limits.Timeout)
	ended := false
	return func() { // idempotent
		if ended {
			return
		}
		ended = true
		unwatch()
		g.end()
		h.mu.Lock()
		delete(h.running, g)
		h.mu.Unlock()
		h.calls.Done()
	}, nil
}

// guestMemory allocates the linear memory of every instance (nil: wazero's
// own Go slices).
var guestMemory = memoryAllocator()

func (m *Module) newInstance(ctx context.Context) (*instance, error) {
	log := &boundedBuffer{max: maxLogBytes}
	g := newGuest(log)
	// The guest's calls run under gctx, which carries its WASI state; the
	// caller's ctx ends them through watch.
	gctx := withGuest(context.Background(), g)
	mc := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	ictx := gctx
	if guestMemory != nil {
		ictx = experimental.WithMemoryAllocator(ictx, guestMemory)
	}
	mod, err := m.h.rt.InstantiateModule(ictx, m.compiled, mc)
	if err != nil {
		return nil, callErr(ReasonInit, "instantiate: %v", err)
	}
	inst := &instance{mod: mod, mem: mod.ExportedMemory(exportMemory), input: mod.ExportedFunction(exportInput),
		resolve: mod.ExportedFunction(exportCall), log: log, guest: g, ctx: gctx}
	fuel, ok := mod.ExportedGlobal(meter.GlobalName).(api.MutableGlobal)
	if m.h.unmetered {
		fuel, ok = nil, true
	}
	if !ok || inst.mem == nil || inst.input == nil || inst.resolve == nil {
		_ = mod.Close(ctx)
		return nil, callErr(ReasonInit, "instance lacks its exports")
	}
	g.mu.Lock()
	if fuel != nil {
		g.bind(mod)
		if g.fuel == nil {
			g.mu.Unlock()
			_ = mod.Close(ctx)
			return nil, callErr(ReasonInit, "instance lacks its metering globals")
		}
	} else {
		g.fuel = nil
	}
	g.mu.Unlock()
	if init := mod.ExportedFunction(exportInit); init != nil {
		end, err := m.h.begin(ctx, g, m.h.limits.InitFuel)
		if err != nil {
			_ = mod.Close(gctx)
			return nil, err
		}
		err = init.CallWithStack(gctx, nil)
		end()
		if err != nil {
			cerr := m.h.classify(inst, err)
			_ = mod.Close(ctx)
			return nil, &CallError{Reason: ReasonInit, Err: fmt.Errorf("_initialize: %s: %v%s", cerr.Reason, cerr.Err, logSuffix(log))}
		}
	}
	return inst, nil
}

func logSuffix(b *boundedBuffer) string {
	if b.Len() == 0 {
		return ""
	}
	return " (guest output: " + strings.TrimSpace(b.String()) + ")"
}

// classify turns a failed guest call into a CallError.
func (h *Host) classify(inst *instance, err error) *CallError {
	var exit *sys.ExitError
	left, cause := inst.guest.fuelLeftNow()
	switch {
	case errors.Is(cause, errTimeout):
		return callErr(ReasonTimeout, "the call ran longer than %v (--resolver-timeout)", h.limits.Timeout)
	case cause != nil:
		return callErr(ReasonCanceled, "the call was stopped: %v", cause)
	case left < 0:
		return callErr(ReasonFuel, "out of fuel (limit %d)", h.limits.Fuel)
	case inst.guest.tooDeep():
		return callErr(ReasonStack, "call stack over its limit (calls nested %d deep in frame weight)", meter.MaxDepth)
	case inst.mem.Size() >= uint32(h.limits.MemoryPages)*65536-65536:
		return callErr(ReasonMemory, "memory limit of %d MiB reached: %v", h.limits.MemoryPages/16, err)
	case strings.Contains(err.Error(), "stack overflow"):
		return &CallError{Reason: ReasonStack, Err: errStackOverflow}
	case errors.As(err, &exit):
		return callErr(ReasonTrap, "guest exited with code %d", exit.ExitCode())
	}
	return callErr(ReasonTrap, "%v", firstLine(err.Error()))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (m *Module) get(ctx context.Context) (*instance, error) {
	select {
	case inst := <-m.idle:
		return inst, nil
	default:
	}
	select {
	case <-m.closed:
		return nil, ErrClosed
	case <-m.h.base.Done():
		return nil, ErrClosed
	default:
	}
	return m.newInstance(ctx)
}

// put returns a healthy instance to the pool; one that grew past half the
// memory limit, or that finds the pool full, is closed.
func (m *Module) put(ctx context.Context, inst *instance) {
	if inst.mem.Size() > uint32(m.h.limits.MemoryPages)*65536/2 {
		_ = inst.mod.Close(ctx)
		return
	}
	select {
	case <-m.closed:
		_ = inst.mod.Close(ctx)
		return
	default:
	}
	select {
	case m.idle <- inst:
	default:
		_ = inst.mod.Close(ctx)
	}
}

// Close closes the module's instances and its compiled code.
func (m *Module) Close(ctx context.Context) error {
	m.once.Do(func() { close(m.closed) })
	for {
		select {
		case inst := <-m.idle:
			_ = inst.mod.Close(ctx)
		default:
			return m.compiled.Close(ctx)
		}
	}
}

// Result is what a call measured.
type Result struct {
	Output   []byte        // the guest's output, copied out of its memory
	FuelUsed int64         // fuel the call consumed
	Memory   uint32        // bytes of guest memory after the call
	Duration time.Duration // wall time of the call
	Log      string        // the first 4 KiB the guest wrote to stdout/stderr
}

// Call runs the resolver on one input (the JSON of resolvers/ABI.md, built by
// the caller) and returns its raw output. A failed call returns a
// *CallError; the instance it ran in is discarded.
func (m *Module) Call(ctx context.Context, input []byte) (Result, error) {
	return m.call(ctx, func(dst []byte) []byte { return append(dst, input...) })
}

// call builds the input with build (appending to a reused buffer) and runs
// the resolver.
func (m *Module) call(ctx context.Context, build func(dst []byte) []byte) (Result, error) {
	start := time.Now()
	res, err := m.run(ctx, build)
	res.Duration = time.Since(start)
	reason := ""
	var ce *CallError
	if errors.As(err, &ce) {
		reason = ce.Reason
	}
	m.stats.record(res.Duration, reason)
	return res, err
}

func (m *Module) run(ctx context.Context, build func(dst []byte) []byte) (Result, error) {
	var res Result
	inst, err := m.get(ctx)
	if err != nil {
		return res, err
	}
	inst.log.Reset()
	inst.buf = build(inst.buf[:0])
	n := len(inst.buf)
	if n > m.h.limits.InputBytes {
		m.put(ctx, inst)
		return res, callErr(ReasonInput, "input of %d bytes over the limit of %d", n, m.h.limits.InputBytes)
	}
	end, err := m.h.begin(ctx, inst.guest, m.h.limits.Fuel)
	if err != nil {
		_ = inst.mod.Close(inst.ctx)
		return res, err
	}
	defer end()
	fail := func(err error) (Result, error) {
		end()
		res.Log = inst.log.String()
		res.FuelUsed = inst.fuelUsed(m.h.limits.Fuel)
		_ = inst.mod.Close(inst.ctx)
		if errors.Is(err, errStackOverflow) {
			// wazero grew the stack to its limit (about 100 MiB, with
			// copies): give it back now, not at the collector's pace.
			debug.FreeOSMemory()
		}
		return res, err
	}
	inst.stack[0] = uint64(uint32(n))
	if err := inst.input.CallWithStack(inst.ctx, inst.stack[:]); err != nil {
		return fail(m.h.classify(inst, err))
	}
	ptr := uint32(inst.stack[0])
	if ptr == 0 {
		return fail(callErr(ReasonMemory, "%s(%d) returned 0: the guest could not allocate its input buffer", exportInput, n))
	}
	if !inst.mem.Write(ptr, inst.buf) {
		return fail(callErr(ReasonOutput, "%s returned %#x: a buffer of %d bytes there is outside the guest's memory", exportInput, ptr, n))
	}
	inst.stack[0] = uint64(uint32(n))
	if err := inst.resolve.CallWithStack(inst.ctx, inst.stack[:]); err != nil {
		return fail(m.h.classify(inst, err))
	}
	res.FuelUsed = inst.fuelUsed(m.h.limits.Fuel)
	res.Memory = inst.mem.Size()
	out := inst.stack[0]
	optr, olen := uint32(out>>32), uint32(out)
	if int64(olen) > int64(m.h.limits.OutputBytes) {
		return fail(callErr(ReasonOutput, "output of %d bytes over the limit of %d", olen, m.h.limits.OutputBytes))
	}
	view, ok := inst.mem.Read(optr, olen)
	if !ok {
		return fail(callErr(ReasonOutput, "output at %#x (%d bytes) is outside the guest's memory (%d bytes)", optr, olen, inst.mem.Size()))
	}
	res.Output = bytes.Clone(view)
	res.Log = inst.log.String()
	end()
	if _, cause := inst.guest.fuelLeftNow(); cause != nil {
		// The answer came as the call was stopped: it stands, the
		// instance (its fuel emptied) goes.
		_ = inst.mod.Close(inst.ctx)
		return res, nil
	}
	m.put(inst.ctx, inst)
	return res, nil
}

// boundedBuffer keeps the first max bytes written to it.
type boundedBuffer struct {
	bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// CompileTimed is Compile, also returning how long it took.
func CompileTimed(ctx context.Context, h *Host, wasm []byte) (*Module, time.Duration, error) {
	start := time.Now()
	m, err := h.Compile(ctx, wasm)
	return m, time.Since(start), err
}
