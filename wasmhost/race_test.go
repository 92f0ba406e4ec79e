//go:build race

package wasmhost_test

// raceEnabled: the race detector slows the Go code of wazero (a stack
// overflow's stack copies) by ten times and more.
const raceEnabled = true
