;; Functions whose fuel costs are counted by hand in TestInstrument_Cost.
(module
  ;; No instructions: the minimum charge of 1.
  (func (export "empty"))

  ;; i32.const i32.const i32.add drop: 4.
  (func (export "straight")
    (drop (i32.add (i32.const 1) (i32.const 2))))

  ;; Entry: loop = 1. Loop: local.get i32.const i32.sub local.tee br_if = 5
  ;; per iteration, n iterations.
  (func (export "count") (param $n i32)
    (loop $l
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))

  ;; Entry: block loop = 2.
  ;; $outer, n+1 iterations: local.get i32.eqz br_if (3), i32.const if nop
  ;; nop nop (5), loop (1), local.get i32.const i32.sub local.set (4), br (1) = 14.
  ;; $inner, n iterations: nop nop = 2.
  (func (export "shape") (param $n i32)
    (block $done
      (loop $outer
        (br_if $done (i32.eqz (local.get $n)))
        (if (i32.const 1) (then (nop)) (else (nop) (nop)))
        (loop $inner (nop) (nop))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $outer)))))
