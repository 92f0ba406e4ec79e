package wasmhost

import (
	"bytes"
	"testing"

	"github.com/tetratelabs/wazero/experimental"
)

// TestLinearMemories grows each kind of linear memory the host uses and
// checks what wazero relies on: the length asked for, earlier bytes kept,
// new bytes zero, and no growth past the maximum for the mapping.
func TestLinearMemories(t *testing.T) {
	const page, max = 65536, 4 * 65536
	mems := map[string]experimental.LinearMemory{"slice": &sliceMemory{}}
	if alloc := memoryAllocator(); alloc != nil {
		mems["mapped"] = alloc.Allocate(page, max)
	}
	for name, m := range mems {
		t.Run(name, func(t *testing.T) {
			defer m.Free()
			b := m.Reallocate(page)
			if len(b) != page {
				t.Fatalf("Reallocate(%d): len %d", page, len(b))
			}
			copy(b, "hello")
			b = m.Reallocate(3 * page)
			if len(b) != 3*page || string(b[:5]) != "hello" || !bytes.Equal(b[page:], make([]byte, 2*page)) {
				t.Fatalf("after growing: len %d, start %q, new bytes zero: %v", len(b), b[:5], bytes.Equal(b[page:], make([]byte, 2*page)))
			}
			if name == "mapped" && m.Reallocate(max+page) != nil {
				t.Fatal("the mapping grew past its maximum")
			}
		})
	}
}
