;; Part of the hostile corpus of the resolver host's tests (wasmhost): each
;; module is a valid ABI v1 resolver (resolvers/ABI.md) but for one thing.
;; Built by resolvers/build.sh into the .wasm next to it.
;;
;; endless-fill: edgesync_resolve grows its memory to 4 MiB (or as far as
;; it may) and fills all of it, with one memory.fill, in a loop without end:
;; a few instructions for a millisecond of work each (uncharged, a slice of
;; fuel is minutes of it). Fuel stops it (reason "fuel"); with fuel to
;; spare, the wall-clock bound must.
(module
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
    (drop (memory.grow (i32.sub (i32.const 64) (memory.size))))
    (loop $again
      (memory.fill (i32.const 0) (i32.const 7) (i32.shl (memory.size) (i32.const 16)))
      (br $again))
    (unreachable))
)
