;; Exercises the instructions whose encoding the instrumenter must decode:
;; every export returns a value that depends on its arguments, so that the
;; results can be compared before and after instrumenting.
(module
  (type $pair (func (param i32 i32) (result i32 i32)))
  (type $unop (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $counter (mut i32) (i32.const 0))
  (table 3 funcref)
  (elem (i32.const 0) $double $square $negate)
  (func $double (type $unop) (i32.shl (local.get 0) (i32.const 1)))
  (func $square (type $unop) (i32.mul (local.get 0) (local.get 0)))
  (func $negate (type $unop) (i32.sub (i32.const 0) (local.get 0)))

  ;; Nested loops, blocks, if/else, br_table, calls and call_indirect.
  (func (export "nested") (param $n i32) (result i64)
    (local $i i32) (local $j i32) (local $acc i64)
    (block $outer_done
      (loop $outer
        (br_if $outer_done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (loop $inner
          (block $b3 (block $b2 (block $b1 (block $b0
            (br_table $b0 $b1 $b2 $b3 (i32.rem_u (i32.add (local.get $i) (local.get $j)) (i32.const 4))))
            ;; 0
            (local.set $acc (i64.add (local.get $acc) (i64.const 1)))
            (br $b3))
            ;; 1
            (if (i32.and (local.get $j) (i32.const 1))
              (then (local.set $acc (i64.mul (local.get $acc) (i64.const 3))))
              (else (local.set $acc (i64.sub (local.get $acc) (i64.const 7)))))
            (br $b3))
            ;; 2
            (local.set $acc
              (i64.add (local.get $acc)
                (i64.extend_i32_s
                  (call_indirect (type $unop) (local.get $j) (i32.rem_u (local.get $i) (i32.const 3)))))))
          ;; 3 and everything
          (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
          (br_if $inner
            (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (i32.const 7))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (i64.add (local.get $acc) (i64.extend_i32_u (global.get $counter))))

  ;; Multi-value blocks (with a type index as block type) and a loop that
  ;; returns from the function from inside.
  (func (export "multi") (param $a i32) (param $b i32) (result i32)
    (local $x i32) (local $y i32)
    (local.get $a) (local.get $b)
    (block (type $pair)
      (local.set $y) (local.set $x)
      (local.get $y) (local.get $x))
    (local.set $x) (local.set $y)
    (local.get $y)
    (loop $l (param i32) (result i32)
      (local.set $x (i32.add (local.get $x) (i32.const 3)))
      (if (i32.gt_s (local.get $x) (i32.const 100))
        (then (return (i32.add (local.get $x) (local.get $y)))))
      (i32.add (i32.const 1))
      (br $l (i32.add (local.get $x))))
    (i32.sub (local.get $y)))

  ;; Early exit from a loop with br_if to the function's label.
  (func (export "find") (param $n i32) (result i32)
    (local $i i32)
    (loop $l
      (br_if 1 (i32.mul (local.get $i) (i32.const 1000))
        (i32.ge_u (i32.mul (local.get $i) (local.get $i)) (local.get $n)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))
    (i32.const -1))

  ;; SIMD: v128.const, i32x4.add, i32x4.mul, lanes, shuffle, splat, loads and stores.
  (func (export "simd") (param $x i32) (result i32)
    (local $v v128) (local $k i32)
    (local.set $v (v128.const i32x4 1 2 3 4))
    (loop $l
      (local.set $v
        (i32x4.add (local.get $v) (i32x4.mul (i32x4.splat (local.get $x)) (v128.const i32x4 5 6 7 8))))
      (local.set $v (i8x16.shuffle 4 5 6 7 8 9 10 11 12 13 14 15 0 1 2 3 (local.get $v) (local.get $v)))
      (local.set $v (i32x4.replace_lane 2 (local.get $v) (i32.add (i32x4.extract_lane 1 (local.get $v)) (local.get $k))))
      (v128.store offset=16 (i32.const 0) (local.get $v))
      (local.set $v (v128.load32_lane offset=20 3 (i32.const 0) (local.get $v)))
      (local.set $v (i16x8.abs (local.get $v)))
      (br_if $l (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 1))) (i32.const 5))))
    (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $v)) (i32x4.extract_lane 1 (local.get $v)))
      (i32.add (i32x4.extract_lane 2 (local.get $v)) (i32x4.extract_lane 3 (local.get $v)))))

  ;; Bulk memory, sign extension, typed select, saturating truncation, ref.null/ref.is_null.
  (func (export "bulk") (param $n i32) (result i32)
    (local $i i32) (local $sum i32)
    (memory.fill (i32.const 1024) (local.get $n) (i32.const 64))
    (memory.copy (i32.const 2048) (i32.const 1024) (i32.const 64))
    (loop $l
      (local.set $sum
        (i32.add (local.get $sum)
          (select (result i32)
            (i32.extend8_s (i32.load8_u (i32.add (i32.const 2048) (local.get $i))))
            (i32.extend16_s (i32.const 0x8001))
            (i32.and (local.get $i) (i32.const 1)))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 64))))
    (i32.add (local.get $sum)
      (i32.add
        (i32.trunc_sat_f64_s (f64.const 1e30))
        (ref.is_null (ref.null func)))))

  ;; Recursion with a base case.
  (func $fib (export "fib") (param $n i32) (result i64)
    (if (result i64) (i32.lt_u (local.get $n) (i32.const 2))
      (then (i64.extend_i32_u (local.get $n)))
      (else
        (i64.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2))))))))
