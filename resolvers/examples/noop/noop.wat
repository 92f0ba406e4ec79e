;; noop: the cheapest module that speaks ABI v1 (resolvers/ABI.md). It keeps
;; the existing version of every conflict without reading its input. The
;; benchmarks call it the same way as the real resolvers, as a baseline for
;; the cost of the host's side of a call.
;;
;; Build: resolvers/build.sh (testdata/resolvers/noop.wasm)
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "{\"action\":\"existing\"}")  ;; 21 bytes
  (func (export "edgesync_abi_v1"))
  ;; The input buffer is at 64 KiB; the memory grows when an input does not
  ;; fit (see prefer-incoming.wat).
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
    (i64.const 0x10_0000_0015)))  ;; address 16, length 21
