;; A counted loop, a memory.fill and a memory.grow, for the tests of the
;; reserve, the stop flag and the charges of bulk and grow instructions.
(module
  (memory (export "memory") 1)
  (func (export "count") (param $n i32) (result i32)
    (local $i i32)
    (loop $again
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func (export "fill") (param $n i32)
    (memory.fill (i32.const 0) (i32.const 1) (local.get $n)))
  (func (export "grow") (param $n i32) (result i32)
    (memory.grow (local.get $n))))
