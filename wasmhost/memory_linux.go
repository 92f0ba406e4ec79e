package wasmhost

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mappedMemory backs a guest's linear memory with an anonymous private
// mapping of its maximum size, made once when the instance starts. The
// kernel hands out zeroed pages as the guest first touches them, so growing
// the memory is a reslice: no copy, no clearing, and no garbage for the Go
// collector. wazero's default backs it with a Go slice that every
// memory.grow reallocates and copies: a module growing to the 64 MiB
// default limit in steps copied ~130 MiB and held the calling goroutine in
// memmove for over a second, stalling the collector with it (the
// malicious/memory-bomb.wasm test module). The mapping is released when the
// instance closes.
type mappedMemory struct{ buf []byte }

// maxMapped bounds one mapping (the largest memory a module may declare
// is 4 GiB; the host's limit is far lower).
const maxMapped = 4 << 30

func memoryAllocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
		if max == 0 || max > maxMapped {
			return &sliceMemory{}
		}
		buf, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
		if err != nil {
			return &sliceMemory{}
		}
		return &mappedMemory{buf: buf}
	})
}

func (m *mappedMemory) Reallocate(size uint64) []byte {
	if m.buf == nil || size > uint64(len(m.buf)) {
		return nil // past the maximum: memory.grow fails
	}
	return m.buf[:size:size]
}

func (m *mappedMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}
