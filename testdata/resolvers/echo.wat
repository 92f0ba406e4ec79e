;; echo: returns its input as its output. Not a resolver anyone would
;; upload: the host's fuzz test uses it to feed arbitrary bytes through the
;; whole output path (resolvers/ABI.md).
(module
  (memory (export "memory") 2 256)
  (func (export "edgesync_abi_v1"))
  ;; The input buffer starts at 64 KiB and grows the memory as needed.
  (func (export "edgesync_input") (param $len i32) (result i32)
    (local $need i32)
    (local.set $need
      (i32.sub
        (i32.shr_u (i32.add (i32.add (local.get $len) (i32.const 65536)) (i32.const 65535)) (i32.const 16))
        (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then
        (if (i32.lt_s (memory.grow (local.get $need)) (i32.const 0))
          (then (return (i32.const 0))))))
    (i32.const 65536))
  (func (export "edgesync_resolve") (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.const 65536) (i64.const 32))
      (i64.extend_i32_u (local.get $len)))))
