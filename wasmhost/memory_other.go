//go:build !linux

package wasmhost

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator is nil off Linux: wazero backs guest memory with Go
// slices (see memory_linux.go for what the mapping saves).
func memoryAllocator() experimental.MemoryAllocator { return nil }
