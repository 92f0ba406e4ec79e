package wasmhost

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/edgesync/edgesync/wasmhost/meter"
)

// The host's wasi_snapshot_preview1 is its own, not wazero's: every function
// charges the calling guest's fuel for the work it is asked to do, before
// doing it, so that fuel bounds host calls as it bounds guest code (a guest
// that asks fd_write to walk millions of iovecs, or random_get to fill
// 48 MiB, runs out of fuel instead of holding the hub for hours).
//
// It offers every function of the preview1 module, with the signatures of
// wazero's, and gives a guest nothing: stdin is empty, stdout and stderr go
// to the call's bounded log, no other descriptor is open, there are no
// arguments or environment variables, the clocks are fake (they start at
// 2022-01-01 and the monotonic clock at 0, and each reading advances them by
// 1 ms) and random_get returns a fixed pseudo-random sequence. Functions that
// would need a file or a socket return ENOSYS.

// Fuel charged by host functions (resolvers/ABI.md, "Limits and failures").
const (
	// HostCallFuel is what every host call costs, whatever it does.
	HostCallFuel = 100
	// IovecFuel is what fd_write and fd_read charge per iovec, and
	// poll_oneoff per subscription, on top of HostCallFuel.
	IovecFuel = 10
	// ByteFuel is what fd_write and random_get charge per byte.
	ByteFuel = 1
)

// WASI errno values.
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoNosys   = 52
)

// fakeEpoch is the first reading of the fake wall clock (2022-01-01 UTC).
const fakeEpoch = 1640995200 * int64(1e9)

// randSeed seeds every instance's random_get sequence.
var randSeed = [32]byte([]byte("edgesync resolver random_get v1."))

// errOutOfFuel is the panic of a host function whose charge overdraws the
// fuel: the guest's call fails, and its fuel global is negative.
var errOutOfFuel = errors.New("out of fuel in a host call")

// guest is the WASI state of one instance, and its fuel.
type guest struct {
	log  *boundedBuffer
	rand *rand.ChaCha8
	wall int64 // the next readings of the fake clocks
	mono int64

	// mu orders the host's reads and writes of the instance's globals:
	// the call's goroutine charges host calls, another stops the call.
	// (The guest's own code reads and writes them too, on the call's
	// goroutine.)
	mu          sync.Mutex
	fuel        api.MutableGlobal // nil on an unmetered host
	reserve     api.MutableGlobal // meter.ReserveGlobalName
	stopFlag    api.MutableGlobal // meter.StopGlobalName
	depth       api.MutableGlobal // the stack weight of the calls under way (meter.DepthGlobalName)
	running     bool              // a call (or _initialize) is running
	gen         uint64            // counts the calls
	interrupted bool
	cause       error // why the call was interrupted
	fuelLeft    int64 // the fuel left when it was
}

func newGuest(log *boundedBuffer) *guest {
	return &guest{log: log, rand: rand.NewChaCha8(randSeed), wall: fakeEpoch}
}

type guestKey struct{}

// withGuest gives the WASI functions called under ctx the instance's state.
func withGuest(ctx context.Context, g *guest) context.Context {
	return context.WithValue(ctx, guestKey{}, g)
}

func guestOf(ctx context.Context) *guest {
	if g, ok := ctx.Value(guestKey{}).(*guest); ok {
		return g
	}
	return newGuest(&boundedBuffer{max: maxLogBytes}) // not reached: every call sets one
}

// charge takes units of fuel from the calling guest, or makes the call fail
// out of fuel.
func (g *guest) charge(mod api.Module, units uint64) {
	g.mu.Lock()
	if g.fuel == nil {
		// A start function runs before the host has the instance.
		g.bind(mod)
		if g.fuel == nil {
			g.mu.Unlock()
			return // an unmetered host
		}
	}
	left := int64(g.fuel.Get()) - int64(min(units, 1<<62))
	if left >= 0 {
		g.fuel.Set(uint64(left))
		g.mu.Unlock()
		return
	}
	// Refill from the reserve as the guest does (meter.Slice).
	total := left + int64(g.reserve.Get())
	inFuel := min(total, meter.Slice)
	g.fuel.Set(uint64(inFuel))
	g.reserve.Set(uint64(total - inFuel))
	g.mu.Unlock()
	if total < 0 {
		panic(errOutOfFuel)
	}
}

// bind finds the instance's metering globals (nil on an unmetered host);
// g.mu is held.
func (g *guest) bind(mod api.Module) {
	g.fuel, _ = mod.ExportedGlobal(meter.GlobalName).(api.MutableGlobal)
	g.reserve, _ = mod.ExportedGlobal(meter.ReserveGlobalName).(api.MutableGlobal)
	g.stopFlag, _ = mod.ExportedGlobal(meter.StopGlobalName).(api.MutableGlobal)
	g.depth, _ = mod.ExportedGlobal(meter.DepthGlobalName).(api.MutableGlobal)
	if g.reserve == nil || g.stopFlag == nil || g.depth == nil {
		g.fuel = nil
	}
}

// begin starts a call with n fuel and returns its number.
func (g *guest) begin(n int64) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gen++
	g.running, g.interrupted, g.cause = true, false, nil
	if g.fuel != nil {
		inFuel := min(n, meter.Slice)
		g.fuel.Set(uint64(inFuel))
		g.reserve.Set(uint64(n - inFuel))
		g.stopFlag.Set(0)
		g.depth.Set(0)
	}
	return g.gen
}

// tooDeep reports whether the call trapped for going over the stack depth.
func (g *guest) tooDeep() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.depth != nil && api.DecodeI32(g.depth.Get()) > meter.MaxDepth
}

// current is the number of the call running, or of the last.
func (g *guest) current() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gen
}

// end ends the call begin started: interrupts stop landing.
func (g *guest) end() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running = false
}

// fuelLeftNow is the fuel left (0 on an unmetered host), or, if the call
// was interrupted, what was left then, and why it was.
func (g *guest) fuelLeftNow() (left int64, cause error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.interrupted {
		return g.fuelLeft, g.cause
	}
	if g.fuel != nil {
		left = g.left()
	}
	return left, nil
}

// left is the fuel left: in the fuel global and in the reserve (g.mu is
// held, g.fuel is not nil).
func (g *guest) left() int64 {
	return int64(g.fuel.Get()) + int64(g.reserve.Get())
}

// interruptFuel is what stop leaves in the fuel global: the guest goes
// to refill it at its next charge, and finds the stop flag set.
const interruptFuel int64 = -1 << 62

// stop makes call gen, if it still runs, stop at its next refill: within
// a meter.Slice of fuel, which the guest spends in about a millisecond.
// It sets the stop flag, which the guest only reads; it also empties the
// fuel so that the call stops at its next charge instead, unless the
// guest's own write of a charge, under way, undoes that (the flag stays).
// The guest leaves its code for the Go runtime at every refill, so that
// this goroutine gets to run even with GOMAXPROCS 1 or while a garbage
// collection stops the world.
func (g *guest) stop(gen uint64, cause error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.running || g.gen != gen || g.fuel == nil || g.interrupted {
		return
	}
	g.interrupted, g.cause, g.fuelLeft = true, cause, g.left()
	g.stopFlag.Set(1)
	empty := interruptFuel
	g.fuel.Set(uint64(empty))
}

// watch stops call gen when timeout has passed or ctx ends, and returns
// the function that ends the watch.
func (g *guest) watch(ctx context.Context, gen uint64, timeout time.Duration) (unwatch func()) {
	t := time.AfterFunc(timeout, func() { g.stop(gen, errTimeout) })
	if ctx.Done() == nil {
		return func() { t.Stop() }
	}
	stop := context.AfterFunc(ctx, func() { g.stop(gen, context.Cause(ctx)) })
	return func() { t.Stop(); stop() }
}

// wasiFunc is one host function: it returns the errno (ignored for
// functions without a result).
type wasiFunc func(ctx context.Context, mod api.Module, g *guest, p []uint64) uint32

// wasiFuncs are the functions that do something; every other preview1
// function returns ENOSYS.
var wasiFuncs = map[string]wasiFunc{
	"args_get":            func(context.Context, api.Module, *guest, []uint64) uint32 { return errnoSuccess },
	"environ_get":         func(context.Context, api.Module, *guest, []uint64) uint32 { return errnoSuccess },
	"args_sizes_get":      zeroSizes,
	"environ_sizes_get":   zeroSizes,
	"clock_res_get":       clockResGet,
	"clock_time_get":      clockTimeGet,
	"fd_write":            fdWrite,
	"fd_read":             fdRead,
	"fd_close":            stdioOnly(errnoSuccess),
	"fd_fdstat_set_flags": stdioOnly(errnoSuccess),
	"fd_fdstat_get":       fdFdstatGet,
	"fd_prestat_get":      func(context.Context, api.Module, *guest, []uint64) uint32 { return errnoBadf },
	"fd_prestat_dir_name": func(context.Context, api.Module, *guest, []uint64) uint32 { return errnoBadf },
	"poll_oneoff":         pollOneoff,
	"proc_exit":           procExit,
	"sched_yield":         func(context.Context, api.Module, *guest, []uint64) uint32 { return errnoSuccess },
	"random_get":          randomGet,
}

// instantiateWASI instantiates the host's wasi_snapshot_preview1 in rt and
// returns the names of its functions.
func instantiateWASI(ctx context.Context, rt wazero.Runtime) (map[string]bool, error) {
	// wazero's module gives the names and signatures.
	ref, err := wasi_snapshot_preview1.NewBuilder(rt).Compile(ctx)
	if err != nil {
		return nil, err
	}
	defs := ref.ExportedFunctions()
	if err := ref.Close(ctx); err != nil {
		return nil, err
	}
	b := rt.NewHostModuleBuilder(wasiModule)
	names := map[string]bool{}
	for name, def := range defs {
		fn := wasiFuncs[name]
		if fn == nil {
			fn = func(context.Context, api.Module, *guest, []uint64) uint32 { return errnoNosys }
		}
		results := def.ResultTypes()
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			g := guestOf(ctx)
			g.charge(mod, HostCallFuel)
			errno := fn(ctx, mod, g, stack)
			if len(results) > 0 {
				stack[0] = uint64(errno)
			}
		}), def.ParamTypes(), results).WithParameterNames(def.ParamNames()...).Export(name)
		names[name] = true
	}
	for name := range wasiFuncs {
		if !names[name] {
			return nil, fmt.Errorf("wazero's %s has no function %s", wasiModule, name)
		}
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return nil, err
	}
	return names, nil
}

func zeroSizes(_ context.Context, mod api.Module, _ *guest, p []uint64) uint32 {
	mem := mod.Memory()
	if mem == nil || !mem.WriteUint32Le(uint32(p[0]), 0) || !mem.WriteUint32Le(uint32(p[1]), 0) {
		return errnoFault
	}
	return errnoSuccess
}

// stdioOnly is a function that succeeds, doing nothing, on descriptors 0
// to 2 (its first parameter) and fails with EBADF on any other.
func stdioOnly(errno uint32) wasiFunc {
	return func(_ context.Context, _ api.Module, _ *guest, p []uint64) uint32 {
		if uint32(p[0]) > 2 {
			return errnoBadf
		}
		return errno
	}
}

func clockResGet(_ context.Context, mod api.Module, _ *guest, p []uint64) uint32 {
	if uint32(p[0]) > 1 {
		return errnoInval
	}
	mem := mod.Memory()
	if mem == nil || !mem.WriteUint64Le(uint32(p[1]), 1e6) {
		return errnoFault
	}
	return errnoSuccess
}

func clockTimeGet(_ context.Context, mod api.Module, g *guest, p []uint64) uint32 {
	var t *int64
	switch uint32(p[0]) {
	case 0: // realtime
		t = &g.wall
	case 1: // monotonic
		t = &g.mono
	default:
		return errnoInval
	}
	mem := mod.Memory()
	if mem == nil || !mem.WriteUint64Le(uint32(p[2]), uint64(*t)) {
		return errnoFault
	}
	*t += 1e6
	return errnoSuccess
}

// fdWrite writes to stdout and stderr (the call's log, which keeps the
// first 4 KiB). It charges every iovec and every byte, also those past what
// the log keeps.
func fdWrite(_ context.Context, mod api.Module, g *guest, p []uint64) uint32 {
	fd, iovs, n, resultPtr := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	if fd != 1 && fd != 2 {
		return errnoBadf
	}
	g.charge(mod, uint64(n)*IovecFuel)
	mem := mod.Memory()
	if mem == nil || uint64(n)*8 >= 1<<32 {
		return errnoFault
	}
	vec, ok := mem.Read(iovs, n*8)
	if !ok {
		return errnoFault
	}
	var total uint64
	for i := range n {
		total += uint64(binary.LittleEndian.Uint32(vec[i*8+4:]))
	}
	g.charge(mod, total*ByteFuel)
	for i := range n {
		ptr, size := binary.LittleEndian.Uint32(vec[i*8:]), binary.LittleEndian.Uint32(vec[i*8+4:])
		b, ok := mem.Read(ptr, size)
		if !ok {
			return errnoFault
		}
		_, _ = g.log.Write(b)
	}
	if total > 1<<32-1 || !mem.WriteUint32Le(resultPtr, uint32(total)) {
		return errnoFault
	}
	return errnoSuccess
}

// fdRead reads from stdin, which is empty.
func fdRead(_ context.Context, mod api.Module, g *guest, p []uint64) uint32 {
	if uint32(p[0]) != 0 {
		return errnoBadf
	}
	g.charge(mod, uint64(uint32(p[2]))*IovecFuel)
	mem := mod.Memory()
	if mem == nil || !mem.WriteUint32Le(uint32(p[3]), 0) {
		return errnoFault
	}
	return errnoSuccess
}

// fdFdstatGet describes descriptors 0 to 2 as character devices with every
// right.
func fdFdstatGet(_ context.Context, mod api.Module, _ *guest, p []uint64) uint32 {
	if uint32(p[0]) > 2 {
		return errnoBadf
	}
	var stat [24]byte
	stat[0] = 2 // character device
	binary.LittleEndian.PutUint64(stat[8:], 1<<30-1)
	binary.LittleEndian.PutUint64(stat[16:], 1<<30-1)
	mem := mod.Memory()
	if mem == nil || !mem.Write(uint32(p[1]), stat[:]) {
		return errnoFault
	}
	return errnoSuccess
}

// pollOneoff answers every subscription at once: a clock has expired (the
// clocks are fake: nothing sleeps), stdin is readable (and empty), stdout
// and stderr are writable, any other descriptor is EBADF.
func pollOneoff(_ context.Context, mod api.Module, g *guest, p []uint64) uint32 {
	in, out, n, resultPtr := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	if n == 0 {
		return errnoInval
	}
	g.charge(mod, uint64(n)*IovecFuel)
	mem := mod.Memory()
	if mem == nil || uint64(n)*48 >= 1<<32 {
		return errnoFault
	}
	subs, ok := mem.Read(in, n*48)
	if !ok {
		return errnoFault
	}
	events, ok := mem.Read(out, n*32)
	if !ok {
		return errnoFault
	}
	for i := range n {
		sub, ev := subs[i*48:i*48+48], events[i*32:i*32+32]
		var e [32]byte
		copy(e[:8], sub[:8]) // userdata
		tag := sub[8]
		e[10] = tag
		switch tag {
		case 0: // clock
		case 1, 2: // fd_read, fd_write
			fd := binary.LittleEndian.Uint32(sub[16:])
			if tag == 1 && fd != 0 || tag == 2 && fd != 1 && fd != 2 {
				binary.LittleEndian.PutUint16(e[8:], errnoBadf)
			}
		default:
			binary.LittleEndian.PutUint16(e[8:], errnoInval)
		}
		copy(ev, e[:])
	}
	if !mem.WriteUint32Le(resultPtr, n) {
		return errnoFault
	}
	return errnoSuccess
}

// procExit ends the instance: the call fails with the exit code, and the
// instance is discarded.
func procExit(ctx context.Context, mod api.Module, _ *guest, p []uint64) uint32 {
	code := uint32(p[0])
	_ = mod.CloseWithExitCode(ctx, code)
	panic(sys.NewExitError(code))
}

// randomGet fills a buffer from the instance's fixed pseudo-random
// sequence, charging every byte first.
func randomGet(_ context.Context, mod api.Module, g *guest, p []uint64) uint32 {
	buf, n := uint32(p[0]), uint32(p[1])
	g.charge(mod, uint64(n)*ByteFuel)
	mem := mod.Memory()
	if mem == nil {
		return errnoFault
	}
	b, ok := mem.Read(buf, n)
	if !ok {
		return errnoFault
	}
	_, _ = g.rand.Read(b)
	return errnoSuccess
}
