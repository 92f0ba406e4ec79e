#!/usr/bin/env bash
# Rebuilds every WebAssembly module under testdata/resolvers/ from its source:
#
#   C    resolvers/examples/<name>/c/*.c + resolvers/sdk/c/edgesync.c
#        -> testdata/resolvers/<name>-c.wasm        (clang, lld, wasi-libc)
#   WAT  resolvers/examples/{prefer-incoming,noop}/*.wat
#        -> testdata/resolvers/<name>.wasm          (wabt)
#        testdata/resolvers/*.wat, testdata/resolvers/malicious/*.wat
#        -> the .wasm next to each source
#   Go   resolvers/examples/<name>/go -> testdata/resolvers/<name>.wasm
#   AS   resolvers/examples/counter/assemblyscript -> testdata/resolvers/counter-as.wasm
#
# plus testdata/resolvers/malicious/garbage.wasm (bytes that are not wasm).
# The largest hostile modules (millions of blocks, functions or br_table
# targets) are not files: the tests build them with resolvertest.Hostile
# (wasmhost/resolvertest/hostile.go); malicious/expect.json lists them under
# "generated".
# The output is deterministic: the same tools give byte-identical files on
# every run, so CI can rebuild and fail on a diff. Run it from anywhere.
#
# Environment: CLANG (default clang), WAT2WASM (default wat2wasm),
# WASI_SYSROOT (only if clang does not find wasi-libc by itself).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out=testdata/resolvers
CLANG="${CLANG:-clang}"
WAT2WASM="${WAT2WASM:-wat2wasm}"

die() {
	echo "resolvers/build.sh: $*" >&2
	exit 1
}

# need checks for a command and names the apt package that provides it.
need() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install -y $2"
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# built prints what was written.
built() {
	printf '  %-52s %7d bytes\n' "$1" "$(wc -c <"$1")"
}

# Every tool is checked before anything is built.
need "$CLANG" clang
need wasm-ld lld
need "$WAT2WASM" wabt
mkdir -p "$out/malicious"

# ---- C (resolvers/sdk/c) ---------------------------------------------------
#
# A WASI reactor (-mexec-model=reactor: crt1-reactor.o, exports _initialize,
# no _start), optimised for speed, without debug info, names or producers
# (--strip-all), so that nothing in it depends on paths or the machine.
# -nodefaultlibs -lc links wasi-libc without compiler-rt's wasm32 builtins
# (libclang_rt.builtins-wasm32.a, Debian package libclang-rt-14-dev-wasm32,
# which the clang package does not pull in): the examples need none of it.
# -mbulk-memory turns memcpy and memset into single memory.copy/memory.fill
# instructions (far cheaper in fuel than libc's loops); clang 14 then needs
# -ftls-model=local-exec (wasi-libc's errno is thread-local).
sysroot=()
if [[ -n "${WASI_SYSROOT:-}" ]]; then
	sysroot=(--sysroot="$WASI_SYSROOT")
fi
cflags=(--target=wasm32-wasi ${sysroot[@]+"${sysroot[@]}"} -O2 -mbulk-memory -ftls-model=local-exec
	-mexec-model=reactor -std=c11 -Wall -Wextra -Werror -nodefaultlibs -Iresolvers/sdk/c)
ldflags=(-lc -Wl,--strip-all)

printf '#include <stdlib.h>\nint x(void) { return abs(-1); }\n' >"$tmp/probe.c"
if ! "$CLANG" "${cflags[@]}" "$tmp/probe.c" "${ldflags[@]}" -o "$tmp/probe.wasm" 2>"$tmp/probe.log"; then
	cat "$tmp/probe.log" >&2
	die "clang cannot build a wasm32-wasi reactor: apt-get install -y wasi-libc lld (or set WASI_SYSROOT)"
fi

# build_c NAME SOURCES...: testdata/resolvers/NAME-c.wasm
build_c() {
	local name="$1"
	shift
	"$CLANG" "${cflags[@]}" resolvers/sdk/c/edgesync.c "$@" "${ldflags[@]}" -o "$tmp/$name.wasm"
	mv "$tmp/$name.wasm" "$out/$name-c.wasm"
	built "$out/$name-c.wasm"
}

echo "C:"
build_c counter resolvers/examples/counter/c/counter.c
build_c cart-merge resolvers/examples/cart-merge/c/cart.c

# ---- WAT -------------------------------------------------------------------
#
# wat2wasm writes no names section (no --debug-names) and no timestamps.

# build_wat SOURCE OUTPUT
build_wat() {
	"$WAT2WASM" "$1" -o "$tmp/out.wasm"
	mv "$tmp/out.wasm" "$2"
	built "$2"
}

echo "WAT:"
build_wat resolvers/examples/prefer-incoming/prefer-incoming.wat "$out/prefer-incoming.wasm"
build_wat resolvers/examples/noop/noop.wat "$out/noop.wasm"
for src in "$out"/*.wat "$out"/malicious/*.wat; do
	[[ -e "$src" ]] || continue
	build_wat "$src" "${src%.wat}.wasm"
done

# Not WebAssembly at all: the magic number is wrong.
printf 'this is not WebAssembly\n' >"$out/malicious/garbage.wasm"
built "$out/malicious/garbage.wasm"

# ---- Go (resolvers/sdk/go) -------------------------------------------------
#
# A reactor (-buildmode=c-shared exports _initialize, no _start). -trimpath
# and -buildvcs=false keep paths and VCS stamps out, so the bytes depend only
# on the source and the Go version (go.mod's toolchain line pins it).
need go golang
echo "Go:"
for name in counter cart-merge; do
	GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
		go build -buildmode=c-shared -trimpath -ldflags=-buildid= -o "$tmp/$name.wasm" "./resolvers/examples/$name/go"
	mv "$tmp/$name.wasm" "$out/$name.wasm"
	built "$out/$name.wasm"
done
go env GOVERSION >"$out/go-version.txt"

# ---- AssemblyScript (resolvers/sdk/assemblyscript) -------------------------
#
# Needs node and npm (the compiler is pinned in its package-lock.json).
# SKIP_ASSEMBLYSCRIPT=1 leaves counter-as.wasm as it is (no network).
if [[ -z "${SKIP_ASSEMBLYSCRIPT:-}" ]]; then
	need npm npm
	echo "AssemblyScript:"
	resolvers/sdk/assemblyscript/build.sh >/dev/null
	built "$out/counter-as.wasm"
fi

echo "done: resolvers/build.sh"
