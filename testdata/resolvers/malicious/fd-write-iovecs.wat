;; Part of the hostile corpus of the resolver host's tests (wasmhost): each
;; module is a valid ABI v1 resolver (resolvers/ABI.md) but for one thing.
;; Built by resolvers/build.sh into the .wasm next to it.
;;
;; fd-write-iovecs: edgesync_resolve calls fd_write on stdout, in a loop,
;; with two million empty iovecs (16 MiB of them) per call. The host walks
;; every iovec it is given: fuel must be charged per iovec before the walk,
;; or the loop (a few instructions of guest fuel per call) holds the hub for
;; hours (reason "fuel").
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 256)
  (func (export "edgesync_abi_v1"))
  ;; A correct input buffer at 64 KiB (the memory grows to fit the input).
  (func (export "edgesync_input") (param $len i32) (result i32)
    (local $missing i32)
    (local.set $missing
      (i32.sub
        (i32.add (i32.const 1)
          (i32.shr_u (i32.add (local.get $len) (i32.const 65535)) (i32.const 16)))
        (memory.size)))
    (if (i32.gt_s (local.get $missing) (i32.const 0))
      (then
        (if (i32.eq (memory.grow (local.get $missing)) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 65536))
  (func (export "edgesync_resolve") (param $len i32) (result i64)
    (loop $again
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 2000000) (i32.const 0)))
      (br $again))
    (unreachable)))
