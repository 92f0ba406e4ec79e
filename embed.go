// Package edgesync carries the example resolver modules that "cloudhub
// demo" installs, so that an installed binary has them wherever it runs.
// The code of edgesync is in its sub-packages: replica (the edge and hub
// engines), wasmhost (the resolver sandbox), web (the HTTP APIs) and the
// commands under cmd.
package edgesync

import "embed"

// DemoResolvers holds testdata/resolvers/cart-merge-c.wasm and
// counter-c.wasm: the C builds of resolvers/examples/cart-merge and
// counter, which resolvers/build.sh writes (and CI checks byte for byte).
//
//go:embed testdata/resolvers/cart-merge-c.wasm testdata/resolvers/counter-c.wasm
var DemoResolvers embed.FS
