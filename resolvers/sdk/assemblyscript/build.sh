#!/usr/bin/env bash
# Builds the AssemblyScript example resolvers (resolvers/examples/*/assemblyscript)
# to testdata/resolvers/<name>-as.wasm with the SDK in this directory, or one
# resolver of yours with the same flags:
#
#   resolvers/sdk/assemblyscript/build.sh                          # the examples
#   resolvers/sdk/assemblyscript/build.sh my-resolver.ts out.wasm  # one file
#
# It works from any directory. EDGESYNC_AS_RUNTIME=minimal (or incremental)
# builds with AssemblyScript's garbage collector instead of the stub runtime
# (see README.md: for resolvers that allocate on every call).
# It installs the pinned compiler (package-lock.json) with `npm ci` the first
# time. The output is deterministic: the same sources give the same bytes.
set -euo pipefail

sdk="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$sdk/../../.." && pwd)"

runtime="${EDGESYNC_AS_RUNTIME:-stub}"
case "$runtime" in
  stub | minimal | incremental) ;;
  *) echo "build.sh: EDGESYNC_AS_RUNTIME must be stub, minimal or incremental" >&2; exit 2 ;;
esac

if [[ $# -ne 0 && $# -ne 2 ]]; then
  echo "usage: $0 [SOURCE.ts OUT.wasm]" >&2
  exit 2
fi
if [[ $# -eq 2 ]]; then # paths relative to where we were called from
  src_arg="$(realpath --relative-to="$root" "$1")"
  out_arg="$(realpath -m "$2")"
fi

if [[ ! -x "$sdk/node_modules/.bin/asc" ]]; then
  (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# asc names files by their path relative to the working directory (the abort
# handler's messages quote it), so build from the repository root with
# relative paths: the bytes then do not depend on where the repository is.
cd "$root"

# build SOURCE OUT: compile one resolver.
#   -O3 --converge         optimize for speed
#   --runtime stub         a bump allocator that never frees: the SDK itself
#                          does not allocate per call (with minimal or
#                          incremental, the SDK collects after every call)
#   --enable simd          the SDK scans strings 16 bytes at a time (the hub's
#                          wazero and metering accept WebAssembly 2.0 SIMD)
#   --exportStart          the top level (where the resolver registers) runs in
#                          _initialize, a WASI reactor; there is no _start
#   --use abort=...        abort writes to stderr and traps instead of importing
#                          env.abort, which the hub refuses
build() {
  local src="$1" out="$2"
  local tmp="$out.tmp.$$"
  if ! "$sdk/node_modules/.bin/asc" "$src" \
    --outFile "$tmp" \
    -O3 --converge \
    --runtime "$runtime" \
    --enable simd \
    --exportStart _initialize \
    --use abort=abortResolver \
    --noColors; then
    rm -f "$tmp"
    echo "build.sh: asc failed for $src" >&2
    exit 1
  fi
  mv -f "$tmp" "$out"
  echo "built $out ($(wc -c <"$out" | tr -d ' ') bytes)"
}

if [[ $# -eq 2 ]]; then
  build "$src_arg" "$out_arg"
  exit 0
fi

mkdir -p testdata/resolvers
build resolvers/examples/counter/assemblyscript/counter.ts testdata/resolvers/counter-as.wasm
