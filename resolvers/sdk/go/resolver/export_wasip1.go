//go:build wasip1

package resolver

import (
	"runtime"
	"runtime/debug"
	"unsafe"
)

// The exports of ABI v1 (resolvers/ABI.md). The SDK keeps one input buffer
// and one output buffer, reused across calls; the output stays valid until
// the next call, as the ABI requires.
var (
	inBuf  []byte
	outBuf []byte
	calls  int
	state  runState
)

// gcEvery bounds the Go heap between calls: after this many calls the SDK
// collects garbage, so that the instance's linear memory stops growing; the
// runtime's own collector (and the heapSoftLimit soft limit) covers a call
// that allocates a lot. A collection costs about 1 ms even with an almost
// empty heap (the runtime's roots and spans), and the examples allocate
// about 2 KiB a call: every 1,024 calls it is 5% of their time and 2 MiB of
// heap, where every 256 calls it was 14% (BenchmarkResolve, wasmhost).
const (
	gcEvery       = 1024
	heapSoftLimit = 16 << 20
)

func init() {
	debug.SetMemoryLimit(heapSoftLimit)
}

//go:wasmexport edgesync_abi_v1
func abiV1() {}

//go:wasmexport edgesync_input
func input(n int32) int32 {
	if n < 0 {
		return 0
	}
	if size := max(int(n), 1); cap(inBuf) < size {
		inBuf = make([]byte, size)
	}
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(inBuf))))
}

//go:wasmexport edgesync_resolve
func resolve(n int32) int64 {
	fn := registered
	if fn == nil {
		fn = func(*Input) Output { return Defer("resolver registered no function (call resolver.Register in init)") }
	}
	if n < 0 || int(n) > cap(inBuf) {
		n = 0
	}
	outBuf = appendRun(outBuf[:0], fn, inBuf[:n], &state)
	calls++
	if calls%gcEvery == 0 {
		runtime.GC()
	}
	if len(outBuf) == 0 {
		return 0
	}
	return int64(uintptr(unsafe.Pointer(&outBuf[0])))<<32 | int64(len(outBuf))
}
