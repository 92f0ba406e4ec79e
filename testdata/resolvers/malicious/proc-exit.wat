;; Part of the hostile corpus of the resolver host's tests (wasmhost): each
;; module is a valid ABI v1 resolver (resolvers/ABI.md) but for one thing.
;; Built by resolvers/build.sh into the .wasm next to it.
;;
;; proc-exit: edgesync_resolve calls proc_exit(0) instead of returning. An
;; exit is not an answer, even with code 0: the call fails (reason "trap")
;; and the instance, closed by the exit, is discarded.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
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
    (call $proc_exit (i32.const 0))
    (i64.const 0)))
